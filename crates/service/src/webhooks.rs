//! Webhook endpoints' use cases that more than one adapter offers: sending a delivery again
//! (the API's `redeliver` and the console's button).

use orderly_queue::QueueError;
use orderly_storage::{StoreError, redelivery_job};
use uuid::Uuid;

use crate::Services;

/// A delivery queued again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redelivery {
    pub job_id: i64,
    pub event_id: Uuid,
}

/// Why a delivery was not queued again.
#[derive(Debug, thiserror::Error)]
pub enum RedeliveryError {
    #[error("no such webhook endpoint")]
    EndpointNotFound,
    #[error("the endpoint is disabled: enable it before sending events to it")]
    EndpointDisabled,
    #[error("no such delivery attempt of that endpoint")]
    AttemptNotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("the redelivery job was not queued")]
    NotQueued,
}

impl Services {
    /// Queues the event of attempt `attempt_id` to endpoint `endpoint_id` again, with a fresh
    /// retry schedule counted from the attempts the pair has had.
    pub async fn redeliver(
        &self,
        endpoint_id: Uuid,
        attempt_id: i64,
    ) -> Result<Redelivery, RedeliveryError> {
        let endpoint = self
            .store
            .webhook(endpoint_id)
            .await?
            .ok_or(RedeliveryError::EndpointNotFound)?;
        if endpoint.disabled_at.is_some() {
            return Err(RedeliveryError::EndpointDisabled);
        }
        let attempt = self
            .store
            .webhook_attempt(endpoint_id, attempt_id)
            .await?
            .ok_or(RedeliveryError::AttemptNotFound)?;
        let attempts_before = self
            .store
            .count_webhook_attempts(endpoint_id, attempt.event_id)
            .await?;
        let job = redelivery_job(attempt.event_id, endpoint_id, attempts_before);
        let ids = self.store.queue().enqueue(&[job]).await?;
        let job_id = ids.first().copied().ok_or(RedeliveryError::NotQueued)?;
        tracing::info!(%endpoint_id, event_id = %attempt.event_id, job_id, "webhook redelivery queued");
        Ok(Redelivery {
            job_id,
            event_id: attempt.event_id,
        })
    }
}
