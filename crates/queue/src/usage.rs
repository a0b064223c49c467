//! How much of each fleet-wide limit is in use, read from the database (so any process sees
//! the whole fleet's): for metrics, the console and `orderly queues`.

use std::collections::HashMap;

use orderly_db::{Timestamp, with_pool};

use crate::limits::{Limits, Rate};
use crate::{Queue, QueueError};

/// What a limit bears on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Jobs of a queue running at once.
    Queue,
    /// Jobs of a kind running at once.
    Kind,
    /// Jobs of one partition of a kind running at once (the busiest partition's count).
    Partition,
    /// Starts of a kind per second.
    KindRate,
    /// Starts of one partition of a kind per second.
    PartitionRate,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Queue => "queue",
            Scope::Kind => "kind",
            Scope::Partition => "partition",
            Scope::KindRate => "kind_rate",
            Scope::PartitionRate => "partition_rate",
        }
    }

    pub fn is_rate(self) -> bool {
        matches!(self, Scope::KindRate | Scope::PartitionRate)
    }
}

/// One limit and its use now.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitUse {
    /// The queue whose claims it bears on.
    pub queue: String,
    pub scope: Scope,
    /// The queue or kind it limits.
    pub name: String,
    /// Jobs at once, or (a rate) jobs per second.
    pub limit: f64,
    /// Jobs held under it now (for a partition limit, in its busiest partition); for a rate,
    /// the jobs it has let start so far (a counter: its change over time is the rate).
    pub in_use: f64,
    /// Due jobs that the limit holds back now.
    pub waiting: i64,
}

/// Every configured limit, unused: what metrics export before the first look.
pub fn each_limit(limits: &Limits) -> Vec<LimitUse> {
    let mut each = Vec::new();
    for (queue, on_queue) in limits.queues() {
        if let Some(limit) = on_queue.concurrency {
            each.push(unused(queue, Scope::Queue, queue, f64::from(limit)));
        }
        for (kind, l) in &on_queue.kinds {
            let pairs = [
                (Scope::Kind, l.concurrency.map(f64::from)),
                (Scope::Partition, l.per_partition.map(f64::from)),
                (Scope::KindRate, l.rate.as_ref().map(Rate::per_second)),
                (
                    Scope::PartitionRate,
                    l.partition_rate.as_ref().map(Rate::per_second),
                ),
            ];
            for (scope, limit) in pairs {
                if let Some(limit) = limit {
                    each.push(unused(queue, scope, kind, limit));
                }
            }
        }
    }
    each
}

fn unused(queue: &str, scope: Scope, name: &str, limit: f64) -> LimitUse {
    LimitUse {
        queue: queue.to_owned(),
        scope,
        name: name.to_owned(),
        limit,
        in_use: 0.0,
        waiting: 0,
    }
}

/// Jobs of one queue by kind and partition.
type Counts = Vec<(String, String, i64)>;

const RUNNING: &str = "SELECT kind, partition_key, COUNT(*) FROM jobs WHERE state = 'running' \
     AND queue = $1 AND locked_until > $2 GROUP BY kind, partition_key";
const DUE: &str = "SELECT kind, partition_key, COUNT(*) FROM jobs WHERE state = 'available' \
     AND queue = $1 AND run_at <= $2 GROUP BY kind, partition_key";
const BUCKETS: &str = "SELECT key, tat, admitted FROM job_rate_limits";

impl Queue {
    /// Each configured limit and its use across the fleet now.
    pub async fn limit_usage(&self, limits: &Limits) -> Result<Vec<LimitUse>, QueueError> {
        let now = orderly_domain::now();
        let buckets: Vec<(String, Timestamp, i64)> =
            with_pool!(self.db(), pool => sqlx::query_as(BUCKETS).fetch_all(pool).await)?;
        let mut usage = Vec::new();
        for (queue, on_queue) in limits.queues() {
            let read = |statement: &'static str| async move {
                with_pool!(self.db(), pool => sqlx::query_as::<_, (String, String, i64)>(statement)
                    .bind(queue)
                    .bind(Timestamp::new(now))
                    .fetch_all(pool)
                    .await)
            };
            let (running, due): (Counts, Counts) = (read(RUNNING).await?, read(DUE).await?);
            let mut each = each_limit(&Limits::new(
                &on_queue
                    .concurrency
                    .map(|c| (queue.to_owned(), c))
                    .into_iter()
                    .collect(),
                &on_queue.kinds,
            ));
            for limit in &mut each {
                measure(limit, &running, &due, &buckets, now);
            }
            usage.extend(each);
        }
        Ok(usage)
    }
}

/// Fills in `limit`'s use from the queue's `running` and `due` jobs and the rate `buckets`.
fn measure(
    limit: &mut LimitUse,
    running: &Counts,
    due: &Counts,
    buckets: &[(String, Timestamp, i64)],
    now: time::OffsetDateTime,
) {
    let of_kind = |counts: &Counts| -> i64 {
        counts
            .iter()
            .filter(|(k, _, _)| *k == limit.name)
            .map(|(_, _, n)| n)
            .sum()
    };
    let full = |held: i64| held as f64 >= limit.limit;
    match limit.scope {
        Scope::Queue => {
            let held: i64 = running.iter().map(|(_, _, n)| n).sum();
            limit.in_use = held as f64;
            limit.waiting = if full(held) {
                due.iter().map(|(_, _, n)| n).sum()
            } else {
                0
            };
        }
        Scope::Kind => {
            let held = of_kind(running);
            limit.in_use = held as f64;
            limit.waiting = if full(held) { of_kind(due) } else { 0 };
        }
        Scope::Partition => {
            let mut by_partition: HashMap<&str, i64> = HashMap::new();
            for (_, partition, n) in running
                .iter()
                .filter(|(k, p, _)| *k == limit.name && !p.is_empty())
            {
                *by_partition.entry(partition).or_default() += n;
            }
            limit.in_use = by_partition.values().copied().max().unwrap_or(0) as f64;
            limit.waiting = due
                .iter()
                .filter(|(k, p, _)| {
                    *k == limit.name && by_partition.get(p.as_str()).is_some_and(|h| full(*h))
                })
                .map(|(_, _, n)| n)
                .sum();
        }
        Scope::KindRate | Scope::PartitionRate => {
            let prefix = if limit.scope == Scope::KindRate {
                format!("kind:{}", limit.name)
            } else {
                format!("partition:{}:", limit.name)
            };
            let matching = |key: &String| {
                if limit.scope == Scope::KindRate {
                    *key == prefix
                } else {
                    key.starts_with(&prefix)
                }
            };
            limit.in_use = buckets
                .iter()
                .filter(|(key, _, _)| matching(key))
                .map(|(_, _, n)| *n as f64)
                .sum();
            // Held back when its bucket is spent past the next start.
            let ahead = |key: &String| {
                buckets
                    .iter()
                    .any(|(k, tat, _)| k == key && tat.get() > now)
            };
            limit.waiting = due
                .iter()
                .filter(|(k, p, _)| {
                    *k == limit.name
                        && if limit.scope == Scope::KindRate {
                            ahead(&prefix)
                        } else {
                            ahead(&format!("{prefix}{p}"))
                        }
                })
                .map(|(_, _, n)| n)
                .sum();
        }
    }
}
