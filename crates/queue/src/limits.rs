//! Fleet-wide limits on the jobs that run: how many at once per queue, per kind and per
//! partition of a kind (a webhook delivery's endpoint), and how many may start per unit of time
//! per kind and per partition.
//!
//! They hold across every worker process because each claim counts what the whole fleet runs
//! (the jobs `running` under a lease that has not run out) inside one transaction that claims
//! of the same queue take in turn (see `claim.rs`); a job fetched ahead counts as running. A
//! slot held by a worker that died is free again once its lease runs out. A rate is a GCRA
//! bucket in `job_rate_limits`, moved by the claim that takes from it.
//!
//! Each process claims under the limits it was configured with. While processes with
//! different limits run side by side (a rolling deploy), each claim obeys its own process's
//! limits against the fleet's count, so the fleet never runs more than the largest limit any
//! of them has.
//!
//! [`Planner`] decides, from what runs and the buckets, which due jobs may start; it does no
//! I/O, so its rules are tested here.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use crate::kinds::{DEFAULT_QUEUE, KindInfo};

/// At most `jobs` starts per `per`, with bursts of up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub jobs: u32,
    pub per: Duration,
    pub burst: u32,
}

impl Rate {
    /// `jobs` per `per`, letting a tenth of a second's worth (at least one) start at once, so
    /// that claims a little late do not lose their turn.
    pub fn new(jobs: u32, per: Duration) -> Self {
        let jobs = jobs.max(1);
        let per_second = f64::from(jobs) / per.as_secs_f64().max(1e-3);
        Self {
            jobs,
            per,
            burst: ((per_second / 10.0).round() as u32).max(1),
        }
    }

    /// Jobs per second.
    pub fn per_second(&self) -> f64 {
        f64::from(self.jobs) / self.per.as_secs_f64()
    }

    /// The time between two starts.
    fn interval(&self) -> time::Duration {
        time::Duration::try_from(self.per / self.jobs.max(1)).unwrap_or(time::Duration::SECOND)
    }

    /// How far ahead of now a bucket may run: the burst, less the start that is now.
    fn tolerance(&self) -> time::Duration {
        self.interval() * (self.burst.max(1) - 1)
    }
}

/// A rate written as `N/s`, `N/min` or `N/h`.
#[derive(Debug, thiserror::Error)]
#[error("a rate is a count of jobs per s, min or h, such as 50/s (got {0:?})")]
pub struct BadRate(String);

impl FromStr for Rate {
    type Err = BadRate;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BadRate(text.to_owned());
        let (jobs, unit) = text.trim().split_once('/').ok_or_else(bad)?;
        let jobs: u32 = jobs.trim().parse().map_err(|_| bad())?;
        let per = match unit.trim() {
            "s" => Duration::from_secs(1),
            "min" => Duration::from_secs(60),
            "h" => Duration::from_secs(3_600),
            _ => return Err(bad()),
        };
        if jobs == 0 {
            return Err(bad());
        }
        Ok(Self::new(jobs, per))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.per.as_secs() {
            60 => "min",
            3_600 => "h",
            _ => "s",
        };
        write!(f, "{}/{unit}", self.jobs)
    }
}

/// The limits on one kind of job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KindLimits {
    /// Jobs of the kind running at once.
    pub concurrency: Option<u32>,
    /// Jobs of one partition of the kind running at once. A job with no partition is held
    /// only by the kind's and the queue's limits.
    pub per_partition: Option<u32>,
    /// Starts of the kind.
    pub rate: Option<Rate>,
    /// Starts of one partition of the kind.
    pub partition_rate: Option<Rate>,
}

impl KindLimits {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The limits that bear on claims from one queue: its own, and those of the kinds it runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueLimits {
    pub concurrency: Option<u32>,
    pub kinds: BTreeMap<String, KindLimits>,
}

/// Every configured limit, by the queue whose claims it bears on.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    queues: BTreeMap<String, Arc<QueueLimits>>,
}

/// A kind's queue: the one it declares, or the default queue for a kind only configuration
/// names.
pub fn queue_of(kind: &str) -> &'static str {
    KindInfo::named(kind).map_or(DEFAULT_QUEUE, |k| k.queue)
}

impl Limits {
    /// `queues`: jobs at once per queue; `kinds`: each kind's limits, applied on the queue the
    /// kind runs on (a job of the kind enqueued on another queue is held by that queue's
    /// limits only).
    pub fn new(queues: &BTreeMap<String, u32>, kinds: &BTreeMap<String, KindLimits>) -> Self {
        let mut by_queue: BTreeMap<String, QueueLimits> = BTreeMap::new();
        for (queue, limit) in queues {
            by_queue.entry(queue.clone()).or_default().concurrency = Some(*limit);
        }
        for (kind, limits) in kinds.iter().filter(|(_, l)| !l.is_empty()) {
            by_queue
                .entry(queue_of(kind).to_owned())
                .or_default()
                .kinds
                .insert(kind.clone(), limits.clone());
        }
        Self {
            queues: by_queue
                .into_iter()
                .map(|(queue, limits)| (queue, Arc::new(limits)))
                .collect(),
        }
    }

    /// `limits` on `queue` alone: for tools that make queues of their own.
    pub fn on(queue: &str, limits: QueueLimits) -> Self {
        Self {
            queues: [(queue.to_owned(), Arc::new(limits))].into(),
        }
    }

    /// The limits on claims from `queue`; `None` when nothing limits them.
    pub fn on_queue(&self, queue: &str) -> Option<&QueueLimits> {
        self.queues.get(queue).map(AsRef::as_ref)
    }

    /// Every queue with limits, and its limits.
    pub fn queues(&self) -> impl Iterator<Item = (&str, &QueueLimits)> {
        self.queues.iter().map(|(q, l)| (q.as_str(), l.as_ref()))
    }
}

/// A job's place in the counts: its kind and partition.
pub(crate) type Slot = (String, String);

/// One rate bucket as a claim found and left it.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// GCRA's theoretical arrival time of the next start.
    tat: OffsetDateTime,
    /// Starts this claim let through.
    admitted: u32,
}

/// Decides which due jobs of one queue may start now, given what runs across the fleet.
#[derive(Debug)]
pub(crate) struct Planner<'a> {
    limits: &'a QueueLimits,
    now: OffsetDateTime,
    total: u32,
    by_kind: HashMap<String, u32>,
    by_partition: HashMap<Slot, u32>,
    buckets: HashMap<String, Bucket>,
    /// Kinds none of which may start now: the next look at the queue skips them.
    pub(crate) blocked_kinds: BTreeSet<String>,
    /// Partitions none of which may start now.
    pub(crate) blocked_partitions: BTreeSet<Slot>,
    /// Whether a job was held back by a concurrency limit (a slot must free).
    pub(crate) held_for_slot: bool,
    /// The soonest a job held back by a rate may start.
    pub(crate) next_start: Option<OffsetDateTime>,
}

fn kind_bucket(kind: &str) -> String {
    format!("kind:{kind}")
}

fn partition_bucket(kind: &str, partition: &str) -> String {
    format!("partition:{kind}:{partition}")
}

impl<'a> Planner<'a> {
    /// `running`: the jobs of the queue running now under a live lease, counted by kind and
    /// partition.
    pub(crate) fn new(
        limits: &'a QueueLimits,
        now: OffsetDateTime,
        running: impl IntoIterator<Item = (Slot, i64)>,
    ) -> Self {
        let mut planner = Self {
            limits,
            now,
            total: 0,
            by_kind: HashMap::new(),
            by_partition: HashMap::new(),
            buckets: HashMap::new(),
            blocked_kinds: BTreeSet::new(),
            blocked_partitions: BTreeSet::new(),
            held_for_slot: false,
            next_start: None,
        };
        for ((kind, partition), n) in running {
            let n = u32::try_from(n).unwrap_or(u32::MAX);
            planner.total = planner.total.saturating_add(n);
            *planner.by_kind.entry(kind.clone()).or_default() += n;
            *planner.by_partition.entry((kind, partition)).or_default() += n;
        }
        // What is full already is skipped from the first look at the due jobs.
        for (kind, limits) in &limits.kinds {
            let running = planner.by_kind.get(kind).copied().unwrap_or(0);
            if limits.concurrency.is_some_and(|limit| running >= limit) {
                planner.blocked_kinds.insert(kind.clone());
            }
            if let Some(limit) = limits.per_partition {
                let full = planner
                    .by_partition
                    .iter()
                    .filter(|((k, p), n)| k == kind && !p.is_empty() && **n >= limit)
                    .map(|(slot, _)| slot.clone());
                planner.blocked_partitions.extend(full);
            }
        }
        planner
    }

    /// How many more jobs the queue's own limit lets start.
    pub(crate) fn room(&self) -> u32 {
        self.limits
            .concurrency
            .map_or(u32::MAX, |limit| limit.saturating_sub(self.total))
    }

    /// The buckets `candidates` need that this planner has not read yet.
    pub(crate) fn unread_buckets<'c>(
        &self,
        candidates: impl IntoIterator<Item = &'c Slot>,
    ) -> Vec<String> {
        let mut keys = BTreeSet::new();
        for (kind, partition) in candidates {
            let Some(limits) = self.limits.kinds.get(kind) else {
                continue;
            };
            if limits.rate.is_some() {
                keys.insert(kind_bucket(kind));
            }
            if limits.partition_rate.is_some() && !partition.is_empty() {
                keys.insert(partition_bucket(kind, partition));
            }
        }
        keys.retain(|key| !self.buckets.contains_key(key));
        keys.into_iter().collect()
    }

    /// A bucket as stored; one never stored (or not read) starts full.
    pub(crate) fn read_bucket(&mut self, key: String, tat: OffsetDateTime) {
        self.buckets.insert(key, Bucket { tat, admitted: 0 });
    }

    /// Whether a job of `kind` in `partition` may start now; if it may, it is counted.
    pub(crate) fn admit(&mut self, kind: &str, partition: &str) -> bool {
        if self.room() == 0 {
            self.held_for_slot = true;
            return false;
        }
        let slot = (kind.to_owned(), partition.to_owned());
        let Some(limits) = self.limits.kinds.get(kind) else {
            self.count(slot);
            return true;
        };
        let partitioned = !partition.is_empty();
        let kind_running = self.by_kind.get(kind).copied().unwrap_or(0);
        if limits
            .concurrency
            .is_some_and(|limit| kind_running >= limit)
        {
            self.held_for_slot = true;
            self.blocked_kinds.insert(slot.0);
            return false;
        }
        let partition_running = self.by_partition.get(&slot).copied().unwrap_or(0);
        if partitioned && limits.per_partition.is_some_and(|l| partition_running >= l) {
            self.held_for_slot = true;
            self.blocked_partitions.insert(slot);
            return false;
        }
        let kind_rate = limits.rate.map(|rate| (kind_bucket(kind), rate));
        let partition_rate = limits
            .partition_rate
            .filter(|_| partitioned)
            .map(|rate| (partition_bucket(kind, partition), rate));
        if let Some((key, rate)) = &kind_rate
            && let Err(at) = self.conforms(key, rate)
        {
            self.later(at);
            self.blocked_kinds.insert(slot.0);
            return false;
        }
        if let Some((key, rate)) = &partition_rate
            && let Err(at) = self.conforms(key, rate)
        {
            self.later(at);
            self.blocked_partitions.insert(slot);
            return false;
        }
        for (key, rate) in kind_rate.iter().chain(partition_rate.iter()) {
            self.take(key, rate);
        }
        self.count(slot);
        true
    }

    /// The buckets this claim moved: key, new arrival time, starts let through.
    pub(crate) fn moved_buckets(&self) -> impl Iterator<Item = (&str, OffsetDateTime, u32)> {
        self.buckets
            .iter()
            .filter(|(_, b)| b.admitted > 0)
            .map(|(key, b)| (key.as_str(), b.tat, b.admitted))
    }

    fn count(&mut self, slot: Slot) {
        self.total += 1;
        *self.by_kind.entry(slot.0.clone()).or_default() += 1;
        *self.by_partition.entry(slot).or_default() += 1;
    }

    fn later(&mut self, at: OffsetDateTime) {
        self.next_start = Some(self.next_start.map_or(at, |next| next.min(at)));
    }

    /// `Ok` when the bucket `key` has a start for now; else the soonest it will.
    fn conforms(&self, key: &str, rate: &Rate) -> Result<(), OffsetDateTime> {
        let tat = self
            .buckets
            .get(key)
            .map_or(self.now, |b| b.tat.max(self.now));
        let allowed_at = tat - rate.tolerance();
        if allowed_at <= self.now {
            Ok(())
        } else {
            Err(allowed_at)
        }
    }

    fn take(&mut self, key: &str, rate: &Rate) {
        let now = self.now;
        let bucket = self.buckets.entry(key.to_owned()).or_insert(Bucket {
            tat: now,
            admitted: 0,
        });
        bucket.tat = bucket.tat.max(now) + rate.interval();
        bucket.admitted += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(kind: &str, limits: KindLimits) -> QueueLimits {
        QueueLimits {
            concurrency: None,
            kinds: [(kind.to_owned(), limits)].into(),
        }
    }

    fn slot(kind: &str, partition: &str) -> Slot {
        (kind.to_owned(), partition.to_owned())
    }

    #[test]
    fn rates_read_as_written() {
        let rate: Rate = "50/s".parse().unwrap();
        assert_eq!(
            (rate.jobs, rate.per, rate.burst),
            (50, Duration::from_secs(1), 5)
        );
        assert_eq!(rate.to_string(), "50/s");
        let rate: Rate = "600/min".parse().unwrap();
        assert_eq!((rate.per_second(), rate.burst), (10.0, 1));
        for bad in ["", "50", "0/s", "-1/s", "50/day", "x/s", "50/ s/"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_partition_gets_no_more_than_its_slots_counting_the_fleet() {
        let limits = queue(
            "deliver_webhook",
            KindLimits {
                per_partition: Some(4),
                ..KindLimits::default()
            },
        );
        let now = OffsetDateTime::now_utc();
        let full = Planner::new(&limits, now, [(slot("deliver_webhook", "a"), 4)]);
        assert!(
            full.blocked_partitions
                .contains(&slot("deliver_webhook", "a")),
            "skipped from the first look"
        );
        let mut planner = Planner::new(&limits, now, [(slot("deliver_webhook", "a"), 3)]);
        assert!(planner.blocked_partitions.is_empty());
        assert!(planner.admit("deliver_webhook", "a"));
        assert!(!planner.admit("deliver_webhook", "a"));
        assert!(planner.held_for_slot);
        assert!(
            planner
                .blocked_partitions
                .contains(&slot("deliver_webhook", "a"))
        );
        // Another endpoint, and a job with no partition, are not held by it.
        for _ in 0..4 {
            assert!(planner.admit("deliver_webhook", "b"));
        }
        assert!(planner.admit("deliver_webhook", ""));
        assert!(planner.blocked_kinds.is_empty());
    }

    #[test]
    fn queue_and_kind_limits_count_what_runs() {
        let mut limits = queue(
            "send_receipt",
            KindLimits {
                concurrency: Some(2),
                ..KindLimits::default()
            },
        );
        limits.concurrency = Some(4);
        let now = OffsetDateTime::now_utc();
        let mut planner = Planner::new(&limits, now, [(slot("noop", ""), 1)]);
        assert_eq!(planner.room(), 3);
        assert!(planner.admit("send_receipt", ""));
        assert!(planner.admit("send_receipt", ""));
        assert!(!planner.admit("send_receipt", ""));
        assert!(planner.blocked_kinds.contains("send_receipt"));
        assert!(
            planner.admit("noop", ""),
            "another kind takes the queue's last slot"
        );
        assert_eq!(planner.room(), 0);
        assert!(!planner.admit("noop", ""));
    }

    #[test]
    fn a_rate_lets_its_burst_through_then_one_start_per_interval() {
        let limits = queue(
            "send_receipt",
            KindLimits {
                rate: Some("50/s".parse().unwrap()),
                ..KindLimits::default()
            },
        );
        let now = OffsetDateTime::now_utc();
        let mut planner = Planner::new(&limits, now, []);
        let admitted = (0..20)
            .filter(|_| planner.admit("send_receipt", ""))
            .count();
        assert_eq!(admitted, 5, "the burst");
        // The sixth start is due one interval after the burst's first.
        assert_eq!(
            planner.next_start,
            Some(now + time::Duration::milliseconds(20))
        );
        let (key, tat, n) = planner.moved_buckets().next().unwrap();
        assert_eq!((key, n), ("kind:send_receipt", 5));
        assert_eq!(tat, now + time::Duration::milliseconds(100));

        // Over a simulated second of claims every 10 ms, 50 start (plus the burst).
        let mut tat = tat;
        let mut started = 0;
        for step in 1..=100 {
            let at = now + time::Duration::milliseconds(10 * step);
            let mut planner = Planner::new(&limits, at, []);
            planner.read_bucket("kind:send_receipt".into(), tat);
            while planner.admit("send_receipt", "") {
                started += 1;
            }
            if let Some((_, moved, _)) = planner.moved_buckets().next() {
                tat = moved;
            }
        }
        assert_eq!(started, 50);
    }

    #[test]
    fn a_partition_rate_holds_each_partition_apart() {
        let limits = queue(
            "deliver_webhook",
            KindLimits {
                partition_rate: Some("1/s".parse().unwrap()),
                ..KindLimits::default()
            },
        );
        let now = OffsetDateTime::now_utc();
        let mut planner = Planner::new(&limits, now, []);
        let candidates = [slot("deliver_webhook", "a"), slot("deliver_webhook", "b")];
        assert_eq!(
            planner.unread_buckets(&candidates),
            ["partition:deliver_webhook:a", "partition:deliver_webhook:b"]
        );
        assert!(planner.admit("deliver_webhook", "a"));
        assert!(!planner.admit("deliver_webhook", "a"));
        assert!(planner.admit("deliver_webhook", "b"));
        assert_eq!(planner.next_start, Some(now + time::Duration::SECOND));
    }

    #[test]
    fn kind_limits_apply_on_the_queue_the_kind_runs_on() {
        let limits = Limits::new(
            &[("bench".to_owned(), 7)].into(),
            &[
                (
                    "deliver_webhook".to_owned(),
                    KindLimits {
                        per_partition: Some(4),
                        ..KindLimits::default()
                    },
                ),
                ("noop".to_owned(), KindLimits::default()),
            ]
            .into(),
        );
        assert_eq!(limits.on_queue("bench").unwrap().concurrency, Some(7));
        assert!(
            limits
                .on_queue("webhooks")
                .unwrap()
                .kinds
                .contains_key("deliver_webhook")
        );
        assert!(
            limits.on_queue("default").is_none(),
            "no limit given for noop"
        );
    }
}
