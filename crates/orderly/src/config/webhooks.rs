//! `[webhooks]`: how events are delivered to endpoints: timeouts, retries, concurrency, and
//! when a failing endpoint's breaker opens, and when it is disabled.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::bounds::{Bounded, above_zero, at_most, check, within};
use super::values::text;
use super::{ConfigError, RetrySchedule};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    pub allow_private: bool,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Waits between attempts, such as `5s 5m 2h`.
    #[serde(with = "text")]
    pub retry_schedule: RetrySchedule,
    pub per_endpoint_concurrency: usize,
    #[serde(with = "humantime_serde")]
    pub disable_after: Duration,
    /// Consecutive failed attempts that open an endpoint's circuit breaker.
    pub breaker_failures: u32,
    /// How long an open breaker rests before one delivery probes the endpoint.
    #[serde(with = "humantime_serde")]
    pub breaker_cool_down: Duration,
    pub response_excerpt_bytes: usize,
    #[serde(with = "humantime_serde")]
    pub rotation_grace: Duration,
    #[serde(with = "humantime_serde")]
    pub event_retention: Duration,
}

/// Waits a retry schedule may hold.
const WAITS: std::ops::RangeInclusive<usize> = 1..=20;

impl WebhooksConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let schedule = &self.retry_schedule.0;
        check(
            WAITS.contains(&schedule.len()),
            "webhooks.retry_schedule",
            self.retry_schedule.to_string(),
            &format!("must hold {} to {} waits", WAITS.start(), WAITS.end()),
        )?;
        let total: Duration = schedule.iter().sum();
        check(
            total < self.event_retention,
            "webhooks.event_retention",
            self.event_retention.written(),
            "must outlast the whole retry schedule",
        )?;
        within(
            "webhooks.timeout",
            self.timeout,
            Duration::from_secs(1)..=Duration::from_secs(120),
        )?;
        within(
            "webhooks.per_endpoint_concurrency",
            self.per_endpoint_concurrency,
            1..=100,
        )?;
        within(
            "webhooks.response_excerpt_bytes",
            self.response_excerpt_bytes,
            1..=65_536,
        )?;
        above_zero("webhooks.disable_after", self.disable_after)?;
        within(
            "webhooks.breaker_failures",
            self.breaker_failures,
            1..=1_000,
        )?;
        within(
            "webhooks.breaker_cool_down",
            self.breaker_cool_down,
            Duration::from_secs(1)..=Duration::from_secs(86_400),
        )?;
        // Beyond this, the old secret's end would not be a date.
        at_most(
            "webhooks.rotation_grace",
            self.rotation_grace,
            Duration::from_secs(365 * 86_400),
        )
    }
}
