//! Webhook endpoints, whoever asks (the API, the console): creating one, reading them and
//! their attempts, changing one (enabling and disabling included), rotating its secret with
//! the configured grace, deleting one. Each write is logged with the endpoint it touched.

use orderly_storage::{NewWebhook, StoreError, WebhookAttempt};
use uuid::Uuid;

pub use orderly_storage::{WebhookChange, WebhookEndpoint};

use crate::Services;

/// An endpoint with how its recent attempts went.
#[derive(Debug, Clone)]
pub struct EndpointHealth {
    pub endpoint: WebhookEndpoint,
    /// Of its last [`RECENT_ATTEMPTS`], how many succeeded.
    pub succeeded: i64,
    /// How many attempts that counts: fewer than [`RECENT_ATTEMPTS`] for a new endpoint.
    pub attempts: i64,
}

/// The attempts an endpoint's recent success counts.
pub const RECENT_ATTEMPTS: i64 = 100;

impl Services {
    /// Creates an endpoint; its secret is in the answer, and never again.
    pub async fn create_webhook(&self, new: &NewWebhook) -> Result<WebhookEndpoint, StoreError> {
        let endpoint = self.store.create_webhook(new).await?;
        tracing::info!(endpoint_id = %endpoint.id, url = %endpoint.url, "webhook endpoint created");
        Ok(endpoint)
    }

    /// Endpoint `id`, if there is one.
    pub async fn webhook(&self, id: Uuid) -> Result<Option<WebhookEndpoint>, StoreError> {
        self.store.webhook(id).await
    }

    /// A page of endpoints in creation order, after `after`.
    pub async fn list_webhooks(
        &self,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<WebhookEndpoint>, StoreError> {
        self.store.list_webhooks(after, limit).await
    }

    /// A page of endpoints, each with the success of its recent attempts.
    pub async fn webhooks_with_health(
        &self,
        limit: u32,
    ) -> Result<Vec<EndpointHealth>, StoreError> {
        let endpoints = self.store.list_webhooks(None, limit).await?;
        let mut found = Vec::with_capacity(endpoints.len());
        for endpoint in endpoints {
            found.push(self.endpoint_health(endpoint).await?);
        }
        Ok(found)
    }

    /// `endpoint` with the success of its recent attempts.
    pub async fn endpoint_health(
        &self,
        endpoint: WebhookEndpoint,
    ) -> Result<EndpointHealth, StoreError> {
        let (succeeded, attempts) = self
            .store
            .webhook_success(endpoint.id, RECENT_ATTEMPTS)
            .await?;
        Ok(EndpointHealth {
            endpoint,
            succeeded,
            attempts,
        })
    }

    /// A page of endpoint `id`'s attempts, newest first, older than `before`.
    pub async fn webhook_attempts(
        &self,
        id: Uuid,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<WebhookAttempt>, StoreError> {
        self.store.webhook_attempts(id, before, limit).await
    }

    /// Changes endpoint `id`; the endpoint as changed, `None` when there is none.
    pub async fn change_webhook(
        &self,
        id: Uuid,
        change: &WebhookChange,
    ) -> Result<Option<WebhookEndpoint>, StoreError> {
        let endpoint = self.store.update_webhook(id, change).await?;
        if let Some(endpoint) = &endpoint {
            tracing::info!(endpoint_id = %id, enabled = endpoint.disabled_at.is_none(), "webhook endpoint changed");
        }
        Ok(endpoint)
    }

    /// Gives endpoint `id` a new secret; the old one keeps signing beside it for
    /// `webhooks.rotation_grace`. The endpoint with its new secret, `None` when there is none.
    pub async fn rotate_webhook_secret(
        &self,
        id: Uuid,
    ) -> Result<Option<WebhookEndpoint>, StoreError> {
        let endpoint = self
            .store
            .rotate_webhook_secret(id, self.settings.webhook_rotation_grace)
            .await?;
        if endpoint.is_some() {
            tracing::info!(endpoint_id = %id, "webhook secret rotated");
        }
        Ok(endpoint)
    }

    /// Deletes endpoint `id` with its delivery record; whether there was one.
    pub async fn delete_webhook(&self, id: Uuid) -> Result<bool, StoreError> {
        let deleted = self.store.delete_webhook(id).await?;
        if deleted {
            tracing::info!(endpoint_id = %id, "webhook endpoint deleted");
        }
        Ok(deleted)
    }
}
