//! `[orders]`: idempotency, the group-commit writer and its queue, and how long an order may
//! wait for payment.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::bounds::{Bounded, above_zero, check, within};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OrdersConfig {
    /// How long an `Idempotency-Key` is remembered.
    #[serde(with = "humantime_serde")]
    pub idempotency_ttl: Duration,
    /// Most orders in one group-commit transaction.
    pub max_batch: usize,
    /// Most orders waiting for a writer.
    pub queue: usize,
    /// Parallel writer transactions on PostgreSQL.
    pub writers: usize,
    /// Longest an order may wait for a writer before it is shed.
    #[serde(with = "humantime_serde")]
    pub max_queue_wait: Duration,
    /// The wait above which a standing order queue sheds.
    #[serde(with = "humantime_serde")]
    pub queue_wait_target: Duration,
    /// How long every order must wait past the target for the queue to count as standing.
    #[serde(with = "humantime_serde")]
    pub queue_wait_interval: Duration,
    /// How long a pending order may wait for payment before it is expired.
    #[serde(with = "humantime_serde")]
    pub payment_timeout: Duration,
}

impl OrdersConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        within(
            "orders.idempotency_ttl",
            self.idempotency_ttl,
            Duration::from_secs(60)..=Duration::from_secs(30 * 86_400),
        )?;
        within("orders.max_batch", self.max_batch, 1..=1_000)?;
        within("orders.queue", self.queue, 1..=100_000)?;
        within("orders.writers", self.writers, 1..=64)?;
        let waits = Duration::from_millis(1)..=Duration::from_secs(60);
        within("orders.max_queue_wait", self.max_queue_wait, waits.clone())?;
        check(
            (Duration::from_millis(1)..=self.max_queue_wait).contains(&self.queue_wait_target),
            "orders.queue_wait_target",
            self.queue_wait_target.written(),
            "must be between 1ms and orders.max_queue_wait",
        )?;
        within(
            "orders.queue_wait_interval",
            self.queue_wait_interval,
            waits,
        )?;
        above_zero("orders.payment_timeout", self.payment_timeout)
    }
}
