//! `[worker.limits]`: fleet-wide limits on the jobs that run, per queue and per kind (at once,
//! per partition, per second). `webhooks.per_endpoint_concurrency` is the delivery kind's limit
//! per partition (its endpoint), set there and not here.

use std::collections::BTreeMap;

use orderly_queue::kinds::{self, DeliverWebhook, JobKind, KindInfo};
use orderly_queue::limits::{KindLimits, Limits, Rate};
use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::bounds::{check, invalid};
use super::values::text;

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Queue name → its jobs running at once across every worker process.
    pub queues: BTreeMap<String, u32>,
    /// Job kind → its limits.
    pub kinds: BTreeMap<String, KindLimitsConfig>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KindLimitsConfig {
    /// Jobs of the kind running at once.
    pub concurrency: Option<u32>,
    /// Jobs of one partition of the kind running at once.
    pub per_partition: Option<u32>,
    /// Starts of the kind, such as `50/s`.
    pub rate: Option<RateSetting>,
    /// Starts of one partition of the kind.
    pub partition_rate: Option<RateSetting>,
}

/// A rate as written in configuration: `50/s`, `600/min`, `1000/h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct RateSetting(#[serde(with = "text")] pub Rate);

/// Jobs a concurrency limit may allow.
const CONCURRENCY: std::ops::RangeInclusive<u32> = 1..=10_000;
/// Starts per second a rate may allow.
const PER_SECOND: std::ops::RangeInclusive<f64> = 0.0001..=100_000.0;

impl LimitsConfig {
    /// Checks every name and number: a queue must be one a worker runs or a kind runs on, a
    /// kind one that exists.
    pub(super) fn validate(
        &self,
        worker_queues: &BTreeMap<String, usize>,
    ) -> Result<(), ConfigError> {
        for (queue, limit) in &self.queues {
            let known = worker_queues.contains_key(queue)
                || kinds::ALL.iter().any(|kind| kind.queue == queue);
            check(
                known,
                "worker.limits.queues",
                format!("{queue} = {limit}"),
                "names no queue a worker runs or a kind runs on",
            )?;
            check(
                CONCURRENCY.contains(limit),
                "worker.limits.queues",
                format!("{queue} = {limit}"),
                &format!("must be {} to {}", CONCURRENCY.start(), CONCURRENCY.end()),
            )?;
        }
        for (kind, limits) in &self.kinds {
            check(
                KindInfo::named(kind).is_some(),
                "worker.limits.kinds",
                kind,
                "names no kind of job",
            )?;
            check(
                !(kind == DeliverWebhook::NAME && limits.per_partition.is_some()),
                "worker.limits.kinds",
                format!("{kind}.per_partition"),
                "is set by webhooks.per_endpoint_concurrency",
            )?;
            for (what, value) in [
                ("concurrency", limits.concurrency),
                ("per_partition", limits.per_partition),
            ] {
                if let Some(n) = value.filter(|n| !CONCURRENCY.contains(n)) {
                    return Err(invalid(
                        "worker.limits.kinds",
                        format!("{kind}.{what} = {n}"),
                        &format!("must be {} to {}", CONCURRENCY.start(), CONCURRENCY.end()),
                    ));
                }
            }
            for (what, rate) in [
                ("rate", limits.rate),
                ("partition_rate", limits.partition_rate),
            ] {
                if let Some(RateSetting(rate)) =
                    rate.filter(|r| !PER_SECOND.contains(&r.0.per_second()))
                {
                    return Err(invalid(
                        "worker.limits.kinds",
                        format!("{kind}.{what} = {rate}"),
                        "must allow at most 100000 jobs a second",
                    ));
                }
            }
        }
        Ok(())
    }

    /// The limits workers claim under, the deliveries' per-endpoint limit included.
    pub(super) fn limits(&self, per_endpoint: usize) -> Limits {
        let mut kinds: BTreeMap<String, KindLimits> = self
            .kinds
            .iter()
            .map(|(kind, l)| {
                let limits = KindLimits {
                    concurrency: l.concurrency,
                    per_partition: l.per_partition,
                    rate: l.rate.map(|r| r.0),
                    partition_rate: l.partition_rate.map(|r| r.0),
                };
                (kind.clone(), limits)
            })
            .collect();
        kinds
            .entry(DeliverWebhook::NAME.to_owned())
            .or_default()
            .per_partition = Some(u32::try_from(per_endpoint).unwrap_or(u32::MAX));
        Limits::new(&self.queues, &kinds)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::load;

    #[test]
    fn limits_load_from_the_environment_and_deliveries_always_have_theirs() {
        let config = load(&[
            ("ORDERLY_WORKER__LIMITS__QUEUES__WEBHOOKS", "40"),
            ("ORDERLY_WORKER__LIMITS__KINDS__SEND_RECEIPT__RATE", "50/s"),
            (
                "ORDERLY_WORKER__LIMITS__KINDS__DELIVER_WEBHOOK__PARTITION_RATE",
                "600/min",
            ),
            ("ORDERLY_WEBHOOKS__PER_ENDPOINT_CONCURRENCY", "2"),
        ])
        .unwrap();
        let limits = config.job_limits();
        let webhooks = limits.on_queue("webhooks").unwrap();
        assert_eq!(webhooks.concurrency, Some(40));
        let deliveries = &webhooks.kinds["deliver_webhook"];
        assert_eq!(deliveries.per_partition, Some(2));
        assert_eq!(deliveries.partition_rate.unwrap().to_string(), "600/min");
        let receipts = &limits.on_queue("default").unwrap().kinds["send_receipt"];
        assert_eq!(receipts.rate.unwrap().per_second(), 50.0);
        // With nothing configured, the endpoints' limit is there.
        let defaults = load(&[]).unwrap().job_limits();
        assert_eq!(
            defaults.on_queue("webhooks").unwrap().kinds["deliver_webhook"].per_partition,
            Some(4)
        );
        assert!(defaults.on_queue("default").is_none());
    }

    #[test]
    fn a_limit_on_nothing_known_or_out_of_range_names_the_key() {
        for (variable, value, says) in [
            (
                "ORDERLY_WORKER__LIMITS__QUEUES__MADE_UP",
                "4",
                "names no queue",
            ),
            (
                "ORDERLY_WORKER__LIMITS__QUEUES__WEBHOOKS",
                "0",
                "must be 1 to 10000",
            ),
            (
                "ORDERLY_WORKER__LIMITS__KINDS__SEND_EMAILS__RATE",
                "5/s",
                "names no kind",
            ),
            (
                "ORDERLY_WORKER__LIMITS__KINDS__NOOP__RATE",
                "5/day",
                "a rate is a count",
            ),
            (
                "ORDERLY_WORKER__LIMITS__KINDS__NOOP__RATE",
                "0/s",
                "a rate is a count",
            ),
            (
                "ORDERLY_WORKER__LIMITS__KINDS__NOOP__CONCURRENCY",
                "0",
                "must be 1 to 10000",
            ),
            (
                "ORDERLY_WORKER__LIMITS__KINDS__NOOP__BURST",
                "5",
                "unknown field",
            ),
            (
                "ORDERLY_WORKER__LIMITS__KINDS__DELIVER_WEBHOOK__PER_PARTITION",
                "8",
                "webhooks.per_endpoint_concurrency",
            ),
        ] {
            let message = load(&[(variable, value)]).unwrap_err().to_string();
            assert!(message.contains(says), "{variable}={value}: {message}");
        }
    }
}
