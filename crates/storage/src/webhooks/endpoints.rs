//! Webhook endpoints and their subscriptions: created with a fresh secret, read, changed,
//! rotated, disabled and deleted.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use time::OffsetDateTime;
use uuid::Uuid;

use orderly_db::WritePool;
use orderly_domain::breaker::{Breaker, BreakerState};

use crate::{Store, StoreError, with_pool};

/// Every secret starts with this (the Standard Webhooks convention).
pub const SECRET_PREFIX: &str = "whsec_";

/// An endpoint as stored, secrets included (`Debug` leaves them out).
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    pub id: Uuid,
    pub url: String,
    pub description: String,
    /// Sorted, no repeats.
    pub event_types: Vec<String>,
    pub secret: String,
    /// The secret before the last rotation, still signing until `previous_expires_at`.
    pub previous_secret: Option<String>,
    pub previous_expires_at: Option<OffsetDateTime>,
    pub disabled_at: Option<OffsetDateTime>,
    pub disabled_reason: Option<String>,
    /// The first failure since the last success.
    pub failing_since: Option<OffsetDateTime>,
    /// Its circuit breaker, shared by every worker.
    pub breaker: Breaker,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl std::fmt::Debug for WebhookEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookEndpoint")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("event_types", &self.event_types)
            .field("secret", &"whsec_***")
            .field(
                "previous_secret",
                &self.previous_secret.as_ref().map(|_| "whsec_***"),
            )
            .field("previous_expires_at", &self.previous_expires_at)
            .field("disabled_at", &self.disabled_at)
            .field("disabled_reason", &self.disabled_reason)
            .field("failing_since", &self.failing_since)
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}

impl WebhookEndpoint {
    /// The secrets that sign a delivery made at `now`: the current one, and the previous one
    /// during its grace period.
    pub fn signing_secrets(&self, now: OffsetDateTime) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        if let (Some(old), Some(until)) = (&self.previous_secret, self.previous_expires_at)
            && until > now
        {
            secrets.push(old);
        }
        secrets
    }
}

/// A new endpoint, validated.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
}

/// A change to an endpoint, validated; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct WebhookChange {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    /// `Some(true)` re-enables a disabled endpoint (its failure record starts afresh);
    /// `Some(false)` disables it by hand.
    pub enabled: Option<bool>,
}

/// A fresh secret: `whsec_` and the base64 of 32 random bytes.
fn mint_secret() -> Result<String, StoreError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(StoreError::NoRandomness)?;
    Ok(format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes)))
}

type EndpointRow = (
    Uuid,
    String,
    String,
    String,
    Option<String>,
    Option<OffsetDateTime>,
    Option<OffsetDateTime>,
    Option<String>,
    Option<OffsetDateTime>,
    OffsetDateTime,
    OffsetDateTime,
    String,
    i32,
    Option<OffsetDateTime>,
    Option<OffsetDateTime>,
);

/// An endpoint's breaker columns.
pub(crate) type BreakerRow = (String, i32, Option<OffsetDateTime>, Option<OffsetDateTime>);

/// The breaker its columns describe (a state the `CHECK` constraint would refuse reads as
/// closed).
pub(crate) fn breaker_from_row((state, failures, opened_at, probe_at): BreakerRow) -> Breaker {
    Breaker {
        state: state.parse().unwrap_or(BreakerState::Closed),
        consecutive_failures: u32::try_from(failures).unwrap_or(0),
        opened_at,
        probe_at,
    }
}

/// The columns read into an [`EndpointRow`]; a macro so that `concat!` can build whole
/// statements at compile time.
macro_rules! endpoint_columns {
    () => {
        "id, url, description, secret, previous_secret, previous_expires_at, disabled_at, \
         disabled_reason, failing_since, created_at, updated_at, breaker_state, \
         consecutive_failures, breaker_opened_at, breaker_probe_at"
    };
}

impl Store {
    /// Creates an endpoint with a fresh secret.
    pub async fn create_webhook(&self, new: &NewWebhook) -> Result<WebhookEndpoint, StoreError> {
        let now = orderly_domain::now();
        let endpoint = WebhookEndpoint {
            id: Uuid::now_v7(),
            url: new.url.clone(),
            description: new.description.clone(),
            event_types: new.event_types.clone(),
            secret: mint_secret()?,
            previous_secret: None,
            previous_expires_at: None,
            disabled_at: None,
            disabled_reason: None,
            failing_since: None,
            breaker: Breaker::default(),
            created_at: now,
            updated_at: now,
        };
        with_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                "INSERT INTO webhook_endpoints (id, url, description, secret, created_at, \
                 updated_at) VALUES ($1, $2, $3, $4, $5, $5)")
                .bind(endpoint.id)
                .bind(&endpoint.url)
                .bind(&endpoint.description)
                .bind(&endpoint.secret)
                .bind(orderly_db::Timestamp::new(now))
                .execute(&mut *tx)
                .await?;
            for event_type in &endpoint.event_types {
                sqlx::query(
                    "INSERT INTO webhook_subscriptions (endpoint_id, event_type) VALUES ($1, $2)")
                    .bind(endpoint.id)
                    .bind(event_type)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(endpoint)
    }

    pub async fn webhook(&self, id: Uuid) -> Result<Option<WebhookEndpoint>, StoreError> {
        let sql = concat!(
            "SELECT ",
            endpoint_columns!(),
            " FROM webhook_endpoints WHERE id = $1"
        );
        let row: Option<EndpointRow> = with_pool!(self, pool => sqlx::query_as(sql)
            .bind(id)
            .fetch_optional(pool)
            .await)?;
        match row {
            Some(row) => Ok(Some(self.with_subscriptions(row).await?)),
            None => Ok(None),
        }
    }

    /// One page of endpoints in creation order.
    pub async fn list_webhooks(
        &self,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let sql = concat!(
            "SELECT ",
            endpoint_columns!(),
            " FROM webhook_endpoints WHERE id > $1 ORDER BY id LIMIT $2"
        );
        let rows: Vec<EndpointRow> = with_pool!(self, pool => sqlx::query_as(sql)
            .bind(after.unwrap_or(Uuid::nil()))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await)?;
        let mut endpoints = Vec::with_capacity(rows.len());
        for row in rows {
            endpoints.push(self.with_subscriptions(row).await?);
        }
        Ok(endpoints)
    }

    async fn with_subscriptions(&self, row: EndpointRow) -> Result<WebhookEndpoint, StoreError> {
        let (
            id,
            url,
            description,
            secret,
            previous_secret,
            previous_expires_at,
            disabled_at,
            disabled_reason,
            failing_since,
            created_at,
            updated_at,
            breaker_state,
            consecutive_failures,
            breaker_opened_at,
            breaker_probe_at,
        ) = row;
        let breaker = (
            breaker_state,
            consecutive_failures,
            breaker_opened_at,
            breaker_probe_at,
        );
        let event_types: Vec<String> = with_pool!(self, pool => sqlx::query_scalar(
            "SELECT event_type FROM webhook_subscriptions WHERE endpoint_id = $1 \
             ORDER BY event_type")
            .bind(id)
            .fetch_all(pool)
            .await)?;
        Ok(WebhookEndpoint {
            id,
            url,
            description,
            event_types,
            secret,
            previous_secret,
            previous_expires_at,
            disabled_at,
            disabled_reason,
            failing_since,
            breaker: breaker_from_row(breaker),
            created_at,
            updated_at,
        })
    }

    /// Applies `change`; `None` when there is no such endpoint.
    pub async fn update_webhook(
        &self,
        id: Uuid,
        change: &WebhookChange,
    ) -> Result<Option<WebhookEndpoint>, StoreError> {
        let now = orderly_domain::now();
        let (enable, disable) = match change.enabled {
            Some(true) => (true, false),
            Some(false) => (false, true),
            None => (false, false),
        };
        let found = with_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let found = sqlx::query(
                "UPDATE webhook_endpoints SET url = COALESCE($2, url), \
                 description = COALESCE($3, description), updated_at = $4, \
                 disabled_at = CASE WHEN $5 THEN NULL WHEN $6 THEN COALESCE(disabled_at, $4) \
                 ELSE disabled_at END, \
                 disabled_reason = CASE WHEN $5 THEN NULL WHEN $6 AND disabled_at IS NULL \
                 THEN 'disabled by an operator' ELSE disabled_reason END, \
                 failing_since = CASE WHEN $5 THEN NULL ELSE failing_since END, \
                 breaker_state = CASE WHEN $5 THEN 'closed' ELSE breaker_state END, \
                 consecutive_failures = CASE WHEN $5 THEN 0 ELSE consecutive_failures END, \
                 breaker_opened_at = CASE WHEN $5 THEN NULL ELSE breaker_opened_at END, \
                 breaker_probe_at = CASE WHEN $5 THEN NULL ELSE breaker_probe_at END \
                 WHERE id = $1")
                .bind(id)
                .bind(change.url.as_deref())
                .bind(change.description.as_deref())
                .bind(orderly_db::Timestamp::new(now))
                .bind(enable)
                .bind(disable)
                .execute(&mut *tx)
                .await?
                .rows_affected() == 1;
            if found && let Some(types) = &change.event_types {
                sqlx::query("DELETE FROM webhook_subscriptions WHERE endpoint_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                for event_type in types {
                    sqlx::query(
                        "INSERT INTO webhook_subscriptions (endpoint_id, event_type) \
                         VALUES ($1, $2)")
                        .bind(id)
                        .bind(event_type)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            tx.commit().await?;
            found
        });
        if !found {
            return Ok(None);
        }
        self.webhook(id).await
    }

    /// Replaces the secret; the old one keeps signing for `grace`. Returns the endpoint with
    /// its new secret, or `None` when there is no such endpoint.
    pub async fn rotate_webhook_secret(
        &self,
        id: Uuid,
        grace: time::Duration,
    ) -> Result<Option<WebhookEndpoint>, StoreError> {
        let now = orderly_domain::now();
        let found = with_pool!(self, pool => sqlx::query(
            "UPDATE webhook_endpoints SET previous_secret = secret, previous_expires_at = $3, \
             secret = $2, updated_at = $4 WHERE id = $1")
            .bind(id)
            .bind(mint_secret()?)
            .bind(orderly_db::Timestamp::new(now + grace))
            .bind(orderly_db::Timestamp::new(now))
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?
            == 1;
        if !found {
            return Ok(None);
        }
        self.webhook(id).await
    }

    /// Disables an enabled endpoint, saying why. `false` when it was not enabled.
    pub async fn disable_webhook(&self, id: Uuid, reason: &str) -> Result<bool, StoreError> {
        let now = orderly_domain::now();
        let done = with_pool!(self, pool => sqlx::query(
            "UPDATE webhook_endpoints SET disabled_at = $2, disabled_reason = $3, \
             updated_at = $2 WHERE id = $1 AND disabled_at IS NULL")
            .bind(id)
            .bind(orderly_db::Timestamp::new(now))
            .bind(reason)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }

    /// Deletes an endpoint with its subscriptions and attempts. Queued deliveries to it find
    /// it gone and end.
    pub async fn delete_webhook(&self, id: Uuid) -> Result<bool, StoreError> {
        let done = with_pool!(self, pool => sqlx::query(
            "DELETE FROM webhook_endpoints WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(done == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_shows_no_signing_secret() {
        let at = orderly_domain::now();
        let endpoint = WebhookEndpoint {
            id: Uuid::nil(),
            url: "https://shop.example/hooks".into(),
            description: String::new(),
            event_types: vec!["order.paid".into()],
            secret: "whsec_c2VjcmV0LXNpZ25pbmcta2V5".into(),
            previous_secret: Some("whsec_b2xkLXNpZ25pbmcta2V5".into()),
            previous_expires_at: Some(at),
            disabled_at: None,
            disabled_reason: None,
            failing_since: None,
            breaker: Breaker::default(),
            created_at: at,
            updated_at: at,
        };
        let printed = format!("{endpoint:?}");
        assert!(printed.contains("shop.example"), "{printed}");
        assert!(
            !printed.contains("c2VjcmV0") && !printed.contains("b2xk"),
            "{printed}"
        );
    }
}
