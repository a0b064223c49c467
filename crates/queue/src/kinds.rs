//! Every kind of job the service runs. Each names, in one place, its queue, the type of its
//! arguments and its attempt limit; enqueuers build jobs with [`NewJob::of`](crate::NewJob::of)
//! and handlers receive the arguments already parsed.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A kind of job.
pub trait JobKind: Send + Sync + 'static {
    /// Stored in `jobs.kind`; also how schedules in the configuration name the kind.
    const NAME: &'static str;
    /// The queue it runs on.
    const QUEUE: &'static str;
    /// Runs allowed before the job is discarded (configuration may change it per kind).
    const MAX_ATTEMPTS: i32;
    /// What a job of this kind carries, as JSON in `jobs.args`.
    type Args: Serialize + DeserializeOwned + Send + Sync + 'static;
}

/// The queue most work runs on.
pub const DEFAULT_QUEUE: &str = "default";

/// Sends an order's receipt.
#[derive(Debug)]
pub struct SendReceipt;

/// The order a job is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderArgs {
    pub order_id: Uuid,
}

impl JobKind for SendReceipt {
    const NAME: &'static str = "send_receipt";
    const QUEUE: &'static str = DEFAULT_QUEUE;
    const MAX_ATTEMPTS: i32 = 10;
    type Args = OrderArgs;
}

impl SendReceipt {
    /// The unique key of an order's receipt job: at most one per order.
    pub fn unique_key(order: impl std::fmt::Display) -> String {
        format!("{}:{order}", Self::NAME)
    }

    /// The job that sends the receipt of order `order_id`, under its unique key.
    pub fn job(order_id: Uuid) -> crate::NewJob {
        crate::NewJob::of::<Self>(&OrderArgs { order_id }).unique(Self::unique_key(order_id))
    }
}

/// Mails the customer about a change to their order: a shipment, units cancelled, a refund.
#[derive(Debug)]
pub struct NotifyCustomer;

/// The change a customer is told about: its event, as the outbox has it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerNoticeArgs {
    pub order_id: Uuid,
    /// The change's event: it names the message (`Message-ID`) and makes the job unique.
    pub event_id: Uuid,
    /// The event's type, such as `order.fulfillment_created`.
    pub kind: String,
    /// The event's data: what shipped with its tracking, what was cancelled, what refunded.
    pub data: serde_json::Value,
}

impl JobKind for NotifyCustomer {
    const NAME: &'static str = "notify_customer";
    const QUEUE: &'static str = DEFAULT_QUEUE;
    const MAX_ATTEMPTS: i32 = 10;
    type Args = CustomerNoticeArgs;
}

impl NotifyCustomer {
    /// The unique key of the mail about event `event`: one per change.
    pub fn unique_key(event: impl std::fmt::Display) -> String {
        format!("{}:{event}", Self::NAME)
    }

    /// The job that mails the customer about `args`' change, under its unique key.
    pub fn job(args: &CustomerNoticeArgs) -> crate::NewJob {
        crate::NewJob::of::<Self>(args).unique(Self::unique_key(args.event_id))
    }
}

/// Delivers one event to one webhook endpoint.
#[derive(Debug)]
pub struct DeliverWebhook;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryArgs {
    pub event_id: Uuid,
    pub endpoint_id: Uuid,
    /// Attempts the pair had when an operator asked for it again: the retry schedule counts
    /// from there.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts_before: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

impl DeliverWebhook {
    /// The unique key of the job delivering `event` to `endpoint`: one per pair, ever.
    pub fn unique_key(event: impl std::fmt::Display, endpoint: impl std::fmt::Display) -> String {
        format!("webhook:{event}:{endpoint}")
    }

    /// The job delivering `args`, counted in its endpoint's partition: the per-endpoint limit
    /// holds across every worker.
    pub fn job(args: &DeliveryArgs) -> crate::NewJob {
        crate::NewJob::of::<Self>(args).partition(args.endpoint_id)
    }
}

impl JobKind for DeliverWebhook {
    const NAME: &'static str = "deliver_webhook";
    /// Apart from receipts, so that a slow endpoint cannot hold up the mail.
    const QUEUE: &'static str = "webhooks";
    /// Above the longest retry schedule (20 waits, so 21 attempts), which the delivery handler
    /// follows and ends itself; the margin covers runs lost to a worker that died. Runs put off
    /// because the endpoint was busy do not count.
    const MAX_ATTEMPTS: i32 = 25;
    type Args = DeliveryArgs;
}

/// Mails a notice to the operators.
#[derive(Debug)]
pub struct NotifyOperators;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeArgs {
    /// Makes the notice unique and names its `Message-ID`.
    pub key: String,
    pub subject: String,
    pub text: String,
}

impl JobKind for NotifyOperators {
    const NAME: &'static str = "notify_operators";
    const QUEUE: &'static str = DEFAULT_QUEUE;
    const MAX_ATTEMPTS: i32 = 10;
    type Args = NoticeArgs;
}

/// Arguments of a scheduled chore: the tick it runs for (RFC 3339), when the scheduler
/// enqueued it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickArgs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tick: Option<String>,
}

/// Mails the operators the sales of the day before the tick.
#[derive(Debug)]
pub struct SalesSummary;

impl JobKind for SalesSummary {
    const NAME: &'static str = "sales_summary";
    const QUEUE: &'static str = DEFAULT_QUEUE;
    const MAX_ATTEMPTS: i32 = 5;
    type Args = TickArgs;
}

/// Expires orders left unpaid past the payment timeout.
#[derive(Debug)]
pub struct ExpireOrders;

impl JobKind for ExpireOrders {
    const NAME: &'static str = "expire_orders";
    const QUEUE: &'static str = DEFAULT_QUEUE;
    const MAX_ATTEMPTS: i32 = 5;
    type Args = TickArgs;
}

/// Deletes what is past its retention: finished jobs, expired idempotency records, old events.
#[derive(Debug)]
pub struct Prune;

impl JobKind for Prune {
    const NAME: &'static str = "prune";
    const QUEUE: &'static str = DEFAULT_QUEUE;
    const MAX_ATTEMPTS: i32 = 5;
    type Args = TickArgs;
}

/// Does nothing, optionally after sleeping or by failing: for benchmarks and drills (lease
/// expiry, retries, shutdown) without side effects.
#[derive(Debug)]
pub struct Noop;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoopArgs {
    /// Sleep this long first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sleep_ms: Option<u64>,
    /// Fail with this reason: transiently, or for good when `permanent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub permanent: bool,
}

impl JobKind for Noop {
    const NAME: &'static str = "noop";
    const QUEUE: &'static str = DEFAULT_QUEUE;
    const MAX_ATTEMPTS: i32 = 3;
    type Args = NoopArgs;
}

/// A no-op that knows when it was enqueued: `orderly bench queue` measures the queue with it.
#[derive(Debug)]
pub struct BenchProbe;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeArgs {
    /// When it was enqueued, in Unix microseconds; only the latency probes carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enqueued_us: Option<i64>,
}

impl JobKind for BenchProbe {
    const NAME: &'static str = "bench_noop";
    const QUEUE: &'static str = "bench";
    const MAX_ATTEMPTS: i32 = 1;
    type Args = ProbeArgs;
}

/// What every kind declares, readable without naming its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindInfo {
    pub name: &'static str,
    pub queue: &'static str,
    pub max_attempts: i32,
}

impl KindInfo {
    pub const fn of<K: JobKind>() -> Self {
        Self {
            name: K::NAME,
            queue: K::QUEUE,
            max_attempts: K::MAX_ATTEMPTS,
        }
    }

    /// The kind named `name`, if there is one.
    pub fn named(name: &str) -> Option<Self> {
        ALL.iter().copied().find(|kind| kind.name == name)
    }
}

/// Runs allowed to a job of a kind no one declared (one named only by configuration).
pub const DEFAULT_MAX_ATTEMPTS: i32 = 5;

/// How many runs a job of each kind gets: the configured number where configuration gives one
/// (`worker.max_attempts`), else the kind's own [`JobKind::MAX_ATTEMPTS`]. The one place that
/// decides it: whoever enqueues a job asks here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttemptLimits(std::collections::BTreeMap<String, i32>);

impl AttemptLimits {
    /// `configured`: runs per kind name, for the kinds whose own limit is overridden.
    pub fn new(configured: std::collections::BTreeMap<String, i32>) -> Self {
        Self(configured)
    }

    /// Runs allowed to a job of the kind named `kind`.
    pub fn named(&self, kind: &str) -> i32 {
        self.0.get(kind).copied().unwrap_or_else(|| {
            KindInfo::named(kind).map_or(DEFAULT_MAX_ATTEMPTS, |k| k.max_attempts)
        })
    }

    /// Runs allowed to a job of kind `K`.
    pub fn of<K: JobKind>(&self) -> i32 {
        self.0.get(K::NAME).copied().unwrap_or(K::MAX_ATTEMPTS)
    }
}

/// Every kind, for checking names given in configuration.
pub const ALL: &[KindInfo] = &[
    KindInfo::of::<SendReceipt>(),
    KindInfo::of::<NotifyCustomer>(),
    KindInfo::of::<DeliverWebhook>(),
    KindInfo::of::<NotifyOperators>(),
    KindInfo::of::<SalesSummary>(),
    KindInfo::of::<ExpireOrders>(),
    KindInfo::of::<Prune>(),
    KindInfo::of::<Noop>(),
    KindInfo::of::<BenchProbe>(),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_overrides_a_kinds_own_attempt_limit() {
        let limits = AttemptLimits::new([("send_receipt".to_owned(), 3)].into());
        assert_eq!(limits.of::<SendReceipt>(), 3);
        assert_eq!(limits.named("send_receipt"), 3);
        assert_eq!(limits.of::<DeliverWebhook>(), DeliverWebhook::MAX_ATTEMPTS);
        assert_eq!(limits.named("made_up"), DEFAULT_MAX_ATTEMPTS);
    }

    #[test]
    fn arguments_read_what_earlier_versions_stored() {
        let order: OrderArgs =
            serde_json::from_str(r#"{"order_id": "0193a1b2-0000-7000-8000-000000000001"}"#)
                .unwrap();
        assert_eq!(
            order.order_id.to_string(),
            "0193a1b2-0000-7000-8000-000000000001"
        );
        let delivery: DeliveryArgs = serde_json::from_value(serde_json::json!({
            "event_id": Uuid::nil().to_string(),
            "endpoint_id": Uuid::nil().to_string(),
        }))
        .unwrap();
        assert_eq!(delivery.attempts_before, 0);
        let scheduled: TickArgs =
            serde_json::from_str(r#"{"tick": "2026-12-02T07:00:00Z"}"#).unwrap();
        assert_eq!(scheduled.tick.as_deref(), Some("2026-12-02T07:00:00Z"));
        let noop: NoopArgs = serde_json::from_str(r#"{"fail": "x", "permanent": true}"#).unwrap();
        assert!(noop.permanent);
    }

    #[test]
    fn every_kind_has_its_own_name() {
        let mut names: Vec<_> = ALL.iter().map(|kind| kind.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
        assert_eq!(KindInfo::named("noop"), Some(KindInfo::of::<Noop>()));
    }
}
