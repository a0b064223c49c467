//! `[worker]`: the queues a worker runs and how, its leases, timeouts, retries and retention;
//! its fleet-wide limits are `[worker.limits]` (`limits.rs`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::bounds::{Bounded, above_zero, check, within};
use super::limits::LimitsConfig;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// Whether the workers here may lead the scheduler.
    pub scheduler: bool,
    /// Where `orderly worker` serves `/healthz` and `/metrics`.
    pub metrics_listen: SocketAddr,
    /// Queue name → jobs of that queue run at once.
    pub queues: BTreeMap<String, usize>,
    /// Jobs held per queue, running or fetched ahead.
    pub local_queue: usize,
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    #[serde(with = "humantime_serde")]
    pub job_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub backoff_base: Duration,
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// Completed jobs kept for `retention` (true) or deleted as they complete (false).
    pub keep_completed: bool,
    /// Job kind → attempts before discarding, where it should differ from the kind's own.
    pub max_attempts: BTreeMap<String, i32>,
    /// Fleet-wide limits on what runs.
    #[serde(default)]
    pub limits: LimitsConfig,
}

/// Jobs one queue may run at once.
const CONCURRENCY: std::ops::RangeInclusive<usize> = 1..=1_000;
/// Runs a kind's configured attempt limit may allow.
const ATTEMPTS: std::ops::RangeInclusive<i32> = 1..=100;

impl WorkerConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        check(
            !self.queues.is_empty() && self.queues.values().all(|c| CONCURRENCY.contains(c)),
            "worker.queues",
            &self.queues,
            &format!(
                "must name at least one queue, each running {} to {} jobs at once",
                CONCURRENCY.start(),
                CONCURRENCY.end()
            ),
        )?;
        within("worker.local_queue", self.local_queue, 1..=10_000)?;
        within(
            "worker.lease",
            self.lease,
            Duration::from_secs(2)..=Duration::from_secs(3_600),
        )?;
        within(
            "worker.poll_interval",
            self.poll_interval,
            Duration::from_millis(10)..=Duration::from_secs(60),
        )?;
        above_zero("worker.job_timeout", self.job_timeout)?;
        above_zero("worker.backoff_base", self.backoff_base)?;
        check(
            self.backoff_max >= self.backoff_base,
            "worker.backoff_max",
            self.backoff_max.written(),
            "must be at least worker.backoff_base",
        )?;
        self.limits.validate(&self.queues)?;
        check(
            self.max_attempts.values().all(|n| ATTEMPTS.contains(n)),
            "worker.max_attempts",
            &self.max_attempts,
            &format!(
                "each must be between {} and {}",
                ATTEMPTS.start(),
                ATTEMPTS.end()
            ),
        )
    }
}
