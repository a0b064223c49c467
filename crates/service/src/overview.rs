//! The figures of the operators' overview that come from the database: orders in the last
//! minute, jobs discarded in the last hour, webhook endpoints disabled, and the worker
//! processes' heartbeats.

use orderly_queue::WorkerBeat;
use orderly_storage::StoreError;
use time::OffsetDateTime;

use crate::Services;

/// The overview's figures at one instant.
#[derive(Debug, Clone)]
pub struct Overview {
    pub at: OffsetDateTime,
    pub orders_last_minute: i64,
    pub discarded_last_hour: i64,
    pub webhooks_disabled: i64,
    pub webhooks: i64,
    /// Every worker process that reported a heartbeat recently, alive or gone.
    pub workers: Vec<WorkerBeat>,
}

impl Overview {
    /// Worker processes whose heartbeat has not expired.
    pub fn workers_alive(&self) -> usize {
        self.workers.iter().filter(|b| b.is_alive(self.at)).count()
    }
}

impl Services {
    /// The overview's figures as of now.
    pub async fn overview(&self) -> Result<Overview, StoreError> {
        let at = orderly_domain::now();
        let orders_last_minute = self
            .store
            .count_orders_since(at - time::Duration::MINUTE)
            .await?;
        let discarded_last_hour = self
            .store
            .count_discarded_since(at - time::Duration::HOUR)
            .await?;
        let (webhooks_disabled, webhooks) = self.store.count_disabled_webhooks().await?;
        let workers = self.store.queue().worker_beats().await?;
        Ok(Overview {
            at,
            orders_last_minute,
            discarded_last_hour,
            webhooks_disabled,
            webhooks,
            workers,
        })
    }
}
