//! Claiming jobs under limits (`limits.rs`), in one transaction: take the queue's turn (on
//! PostgreSQL an advisory lock per queue, on SQLite the write lock), count what runs across
//! the fleet, then claim due jobs in order, skipping kinds and partitions that cannot start,
//! and give back (in the same transaction, so no one sees them taken) those the [`Planner`]
//! refuses: with limits not reached, that is one statement for the jobs, as without limits. A partition that fills during the look is skipped
//! by the next look, a few looks at most, so one endpoint with a deep backlog does not starve
//! the others behind it.
//!
//! A queue with no limits is claimed by the single statement of `Queue::fetch_jobs`, which
//! takes no turn.

use std::future::Future;
use std::time::Duration;

use orderly_db::{Db, Timestamp, WritePool};
use sqlx::{PgConnection, SqliteConnection};
use time::OffsetDateTime;

use crate::limits::{Planner, QueueLimits, Slot};
use crate::sql::{self, JobRow};
use crate::{Job, QueueError};

/// How often a fetch loop held back by a concurrency limit looks again (a slot may free in
/// another process, which does not tell this one).
pub const LIMIT_POLL: Duration = Duration::from_millis(100);

/// Looks at the due jobs at most this many times per claim.
const LOOKS: usize = 4;

/// What a claim got, and when to look again for what limits held back.
#[derive(Debug, Default)]
pub struct Claim {
    pub jobs: Vec<Job>,
    /// When jobs were held back by a limit: the soonest one of them may start (a rate's next
    /// start, or [`LIMIT_POLL`] from now for a slot to free).
    pub held_until: Option<OffsetDateTime>,
}

/// The statements a limited claim runs, per backend.
trait ClaimSql {
    fn running(
        &mut self,
        queue: &str,
        now: Timestamp,
    ) -> impl Future<Output = sqlx::Result<Vec<(String, String, i64)>>> + Send;
    /// Claims the due jobs `look` finds, in one statement.
    fn take_due(
        &mut self,
        look: Look<'_>,
    ) -> impl Future<Output = sqlx::Result<Vec<JobRow>>> + Send;
    fn buckets(
        &mut self,
        keys: Vec<String>,
    ) -> impl Future<Output = sqlx::Result<Vec<(String, Timestamp)>>> + Send;
    /// Whether any job of the queue is due, whatever the limits.
    fn any_due(
        &mut self,
        queue: &str,
        now: Timestamp,
    ) -> impl Future<Output = sqlx::Result<bool>> + Send;
    /// Returns jobs this transaction claimed and the planner refused, as they were.
    fn give_back(&mut self, ids: Vec<i64>) -> impl Future<Output = sqlx::Result<()>> + Send;
    fn save_bucket(
        &mut self,
        key: &str,
        tat: Timestamp,
        admitted: i64,
    ) -> impl Future<Output = sqlx::Result<()>> + Send;
}

/// One look at the due jobs, for `worker` to hold until `lease_until`.
struct Look<'a> {
    queue: &'a str,
    now: Timestamp,
    limit: i64,
    worker: &'a str,
    lease_until: Timestamp,
    blocked_kinds: Vec<String>,
    /// Each as `kind`, unit separator, `partition`.
    blocked_partitions: Vec<String>,
}

const RUNNING: &str = "SELECT kind, partition_key, COUNT(*) FROM jobs \
     WHERE state = 'running' AND queue = $1 AND locked_until > $2 GROUP BY kind, partition_key";
const ANY_DUE: &str = "SELECT EXISTS (SELECT 1 FROM jobs WHERE state = 'available' \
     AND queue = $1 AND run_at <= $2)";
const SAVE_BUCKET: &str = "INSERT INTO job_rate_limits (key, tat, admitted) VALUES ($1, $2, $3) \
     ON CONFLICT (key) DO UPDATE SET tat = excluded.tat, \
     admitted = job_rate_limits.admitted + excluded.admitted";

/// Implements [`ClaimSql`] for a backend's connection: the statements are one text where the
/// dialects agree; `$list` binds a list (PostgreSQL: an array; SQLite: a JSON array, read
/// with `json_each`).
macro_rules! impl_claim_sql {
    ($conn:ty, take_due: $take_due:expr, buckets: $buckets:expr, give_back: $give_back:expr, list: $list:expr) => {
        impl ClaimSql for $conn {
            async fn running(
                &mut self,
                queue: &str,
                now: Timestamp,
            ) -> sqlx::Result<Vec<(String, String, i64)>> {
                sqlx::query_as(RUNNING)
                    .bind(queue)
                    .bind(now)
                    .fetch_all(self)
                    .await
            }

            async fn take_due(&mut self, look: Look<'_>) -> sqlx::Result<Vec<JobRow>> {
                sqlx::query_as($take_due)
                    .bind(look.queue)
                    .bind(look.now)
                    .bind(look.limit)
                    .bind($list(look.blocked_kinds))
                    .bind($list(look.blocked_partitions))
                    .bind(look.worker)
                    .bind(look.lease_until)
                    .fetch_all(self)
                    .await
            }

            async fn buckets(
                &mut self,
                keys: Vec<String>,
            ) -> sqlx::Result<Vec<(String, Timestamp)>> {
                sqlx::query_as($buckets)
                    .bind($list(keys))
                    .fetch_all(self)
                    .await
            }

            async fn any_due(&mut self, queue: &str, now: Timestamp) -> sqlx::Result<bool> {
                sqlx::query_scalar(ANY_DUE)
                    .bind(queue)
                    .bind(now)
                    .fetch_one(self)
                    .await
            }

            async fn give_back(&mut self, ids: Vec<i64>) -> sqlx::Result<()> {
                sqlx::query($give_back)
                    .bind($list(ids))
                    .execute(self)
                    .await
                    .map(drop)
            }

            async fn save_bucket(
                &mut self,
                key: &str,
                tat: Timestamp,
                admitted: i64,
            ) -> sqlx::Result<()> {
                sqlx::query(SAVE_BUCKET)
                    .bind(key)
                    .bind(tat)
                    .bind(admitted)
                    .execute(self)
                    .await
                    .map(drop)
            }
        }
    };
}

/// SQLite has no arrays: lists are bound as JSON and read with `json_each`.
fn json_list<T: serde::Serialize>(items: Vec<T>) -> String {
    serde_json::to_string(&items).unwrap_or_else(|_| "[]".into())
}

/// PostgreSQL binds a list as an array.
fn array<T>(items: Vec<T>) -> Vec<T> {
    items
}

impl_claim_sql!(
    PgConnection,
    take_due: sql::TAKE_DUE_POSTGRES,
    buckets: "SELECT key, tat FROM job_rate_limits WHERE key = ANY($1::text[]) FOR UPDATE",
    give_back: sql::GIVE_BACK_POSTGRES,
    list: array
);
impl_claim_sql!(
    SqliteConnection,
    take_due: sql::TAKE_DUE_SQLITE,
    buckets: "SELECT key, tat FROM job_rate_limits WHERE key IN (SELECT value FROM json_each($1))",
    give_back: sql::GIVE_BACK_SQLITE,
    list: json_list
);

/// Claims up to `wanted` due jobs of `queue` for `worker` under `limits`.
pub(crate) async fn claim(
    db: &Db,
    queue: &str,
    worker: &str,
    wanted: i64,
    lease_until: OffsetDateTime,
    limits: &QueueLimits,
) -> Result<Claim, QueueError> {
    let claim = match db {
        Db::Sqlite(pool) => {
            let mut tx = pool.begin_write().await?;
            let claim = claim_in(&mut *tx, queue, worker, wanted, lease_until, limits).await?;
            tx.commit().await?;
            claim
        }
        Db::Postgres(pool) => {
            let mut tx = pool.begin_with(take_turn_postgres(queue)).await?;
            let claim = claim_in(&mut *tx, queue, worker, wanted, lease_until, limits).await?;
            tx.commit().await?;
            claim
        }
    };
    Ok(claim)
}

/// Begins a claim's transaction on PostgreSQL with the queue's turn (an advisory lock per
/// queue, held until the transaction ends), in the round trip that begins it (each round trip
/// counts: the claims are the drain's critical path). It also plans the transaction's
/// statements for their values (a generic plan of the claim, made once for any list of kinds
/// and partitions to skip, took 7.8 ms a claim of 250 jobs against 5.0 ms planned each time,
/// measured), and keeps its reads of running jobs off bitmap scans: the lease index holds an
/// entry for every job that ran in the last lease (an update leaves the old one until vacuum),
/// and a bitmap scan visits them all each time (10 ms with 100,000 jobs done, measured), where
/// an index scan marks the dead ones as it passes, so the next claim skips them (0.7 ms on the
/// same table).
fn take_turn_postgres(queue: &str) -> sqlx::AssertSqlSafe<String> {
    // The lock's key is a hash of the queue's name made here (FNV-1a), so that the statement
    // holds only digits of ours: it is sent as a simple query, with no parameters.
    let key = format!("orderly_jobs_claim:{queue}")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        }) as i64;
    sqlx::AssertSqlSafe(format!(
        "BEGIN; SELECT set_config('enable_bitmapscan', 'off', true), \
         set_config('plan_cache_mode', 'force_custom_plan', true), pg_advisory_xact_lock({key})"
    ))
}

async fn claim_in<C: ClaimSql + Send>(
    conn: &mut C,
    queue: &str,
    worker: &str,
    wanted: i64,
    lease_until: OffsetDateTime,
    limits: &QueueLimits,
) -> sqlx::Result<Claim> {
    let now = orderly_domain::now();
    let running = conn.running(queue, Timestamp::new(now)).await?;
    let mut planner = Planner::new(
        limits,
        now,
        running
            .into_iter()
            .map(|(kind, partition, n)| ((kind, partition), n)),
    );
    let mut jobs = Vec::new();
    for _ in 0..LOOKS {
        let missing = wanted - jobs.len() as i64;
        if missing <= 0 {
            break;
        }
        // With the queue full, one look says whether anything waits for a slot.
        let limit = missing.min(i64::from(planner.room().max(1)));
        let mut taken = sql::jobs(
            conn.take_due(Look {
                queue,
                now: Timestamp::new(now),
                limit,
                worker,
                lease_until: Timestamp::new(lease_until),
                blocked_kinds: planner.blocked_kinds.iter().cloned().collect(),
                blocked_partitions: planner
                    .blocked_partitions
                    .iter()
                    .map(|(kind, partition)| format!("{kind}\u{1f}{partition}"))
                    .collect(),
            })
            .await?,
        );
        if taken.is_empty() {
            break;
        }
        // In the order the queue gives them (`RETURNING` does not keep it).
        taken.sort_by_key(|job| (job.priority, job.run_at, job.id));
        let slots: Vec<Slot> = taken
            .iter()
            .map(|job| (job.kind.clone(), job.partition.clone()))
            .collect();
        let unread = planner.unread_buckets(&slots);
        if !unread.is_empty() {
            let stored = conn.buckets(unread.clone()).await?;
            for key in unread {
                let tat = stored
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map_or(now, |(_, t)| t.get());
                planner.read_bucket(key, tat);
            }
        }
        let (admitted, refused): (Vec<Job>, Vec<Job>) = taken
            .into_iter()
            .partition(|job| planner.admit(&job.kind, &job.partition));
        let all_admitted = refused.is_empty();
        if !all_admitted {
            conn.give_back(refused.iter().map(|job| job.id).collect())
                .await?;
        }
        jobs.extend(admitted);
        if all_admitted || planner.room() == 0 {
            break;
        }
    }
    for (key, tat, admitted) in planner.moved_buckets() {
        conn.save_bucket(key, Timestamp::new(tat), i64::from(admitted))
            .await?;
    }
    // Nothing taken past what is full from the start: whether a job waits for it.
    let skipped = !planner.blocked_kinds.is_empty() || !planner.blocked_partitions.is_empty();
    if (jobs.len() as i64) < wanted && !planner.held_for_slot && skipped {
        planner.held_for_slot = conn.any_due(queue, Timestamp::new(now)).await?;
    }
    let slot_poll = planner.held_for_slot.then(|| now + LIMIT_POLL);
    let held_until = match (slot_poll, planner.next_start) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Ok(Claim { jobs, held_until })
}
