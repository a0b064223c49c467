//! Per-endpoint concurrency slots: at most so many deliveries to one endpoint at once in this
//! process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

/// Per-endpoint concurrency slots. The map holds only endpoints with a delivery in flight in
/// this process, so it is bounded by the webhook queue's concurrency.
#[derive(Debug, Clone)]
pub(super) struct EndpointSlots {
    per_endpoint: usize,
    slots: Arc<Mutex<HashMap<Uuid, Arc<Semaphore>>>>,
}

impl EndpointSlots {
    pub(super) fn new(per_endpoint: usize) -> Self {
        Self {
            per_endpoint: per_endpoint.max(1),
            slots: Arc::default(),
        }
    }

    /// A slot for `endpoint`, waiting at most `wait`.
    pub(super) async fn acquire(
        &self,
        endpoint: Uuid,
        wait: Duration,
    ) -> Option<OwnedSemaphorePermit> {
        let semaphore = {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            // Forget endpoints nobody is using: only the map holds their semaphore.
            slots.retain(|_, s| Arc::strong_count(s) > 1);
            slots
                .entry(endpoint)
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_endpoint)))
                .clone()
        };
        tokio::time::timeout(wait, semaphore.acquire_owned())
            .await
            .ok()?
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_endpoint_gets_no_more_than_its_slots() {
        let slots = EndpointSlots::new(2);
        let endpoint = Uuid::now_v7();
        let first = slots.acquire(endpoint, Duration::from_millis(10)).await;
        let second = slots.acquire(endpoint, Duration::from_millis(10)).await;
        assert!(first.is_some() && second.is_some());
        assert!(
            slots
                .acquire(endpoint, Duration::from_millis(10))
                .await
                .is_none()
        );
        assert!(
            slots
                .acquire(Uuid::now_v7(), Duration::from_millis(10))
                .await
                .is_some()
        );
        drop(first);
        assert!(
            slots
                .acquire(endpoint, Duration::from_millis(10))
                .await
                .is_some()
        );
    }
}
