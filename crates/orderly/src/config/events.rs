//! `[events]`: the outbox relayed to NATS JetStream, and the stream it is relayed to.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::SecretUrl;
use super::bounds::{Bounded, check, within};

/// The outbox relayed to NATS JetStream.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    /// The NATS server (`nats://host:4222`); empty relays nothing.
    pub nats_url: SecretUrl,
    /// Each event is published to `<subject_prefix>.<type>`.
    pub subject_prefix: String,
    /// The JetStream stream, created when missing with the settings below.
    pub stream: String,
    /// `limits`, `interest` or `workqueue`.
    pub retention: StreamRetention,
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
    #[serde(with = "humantime_serde")]
    pub duplicate_window: Duration,
    /// Publishes awaiting the server's acknowledgement at once.
    pub max_in_flight: usize,
    /// Readiness reports the relay `degraded` when the oldest event not yet relayed is
    /// older than this (or the relay is failing).
    #[serde(with = "humantime_serde")]
    pub lag_threshold: Duration,
}

/// The JetStream stream's retention policy, as NATS names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamRetention {
    Limits,
    Interest,
    Workqueue,
}

/// A NATS name: letters, digits, `-` and `_`.
fn nats_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl EventsConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let nats = self.nats_url.expose();
        check(
            nats.is_empty() || nats.starts_with("nats://") || nats.starts_with("tls://"),
            "events.nats_url",
            self.nats_url.redacted(),
            "must be empty or a nats:// or tls:// URL",
        )?;
        check(
            self.subject_prefix.split('.').all(nats_name),
            "events.subject_prefix",
            &self.subject_prefix,
            "must be dot-separated names of letters, digits, - and _",
        )?;
        check(
            nats_name(&self.stream),
            "events.stream",
            &self.stream,
            "must be letters, digits, - and _",
        )?;
        check(
            !self.duplicate_window.is_zero() && self.duplicate_window <= self.max_age,
            "events.duplicate_window",
            self.duplicate_window.written(),
            "must be above zero and at most events.max_age",
        )?;
        within("events.max_in_flight", self.max_in_flight, 1..=10_000)
    }
}
