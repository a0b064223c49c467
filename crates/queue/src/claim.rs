//! Claiming jobs under limits (`limits.rs`), in one transaction: take the queue's turn (on
//! PostgreSQL an advisory lock per queue, on SQLite the write lock), count what runs across
//! the fleet, then look at due jobs in order, skipping kinds and partitions that cannot start,
//! and claim those the [`Planner`] admits. A partition that fills during the look is skipped
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

/// A due job as the claim first sees it.
type Candidate = (i64, String, String);

/// The statements a limited claim runs, per backend.
trait ClaimSql {
    fn take_turn(&mut self, queue: &str) -> impl Future<Output = sqlx::Result<()>> + Send;
    fn running(
        &mut self,
        queue: &str,
        now: Timestamp,
    ) -> impl Future<Output = sqlx::Result<Vec<(String, String, i64)>>> + Send;
    fn candidates(
        &mut self,
        look: Look<'_>,
    ) -> impl Future<Output = sqlx::Result<Vec<Candidate>>> + Send;
    fn buckets(
        &mut self,
        keys: Vec<String>,
    ) -> impl Future<Output = sqlx::Result<Vec<(String, Timestamp)>>> + Send;
    fn take(
        &mut self,
        ids: Vec<i64>,
        worker: &str,
        lease_until: Timestamp,
    ) -> impl Future<Output = sqlx::Result<Vec<JobRow>>> + Send;
    fn save_bucket(
        &mut self,
        key: &str,
        tat: Timestamp,
        admitted: i64,
    ) -> impl Future<Output = sqlx::Result<()>> + Send;
}

/// One look at the due jobs.
struct Look<'a> {
    queue: &'a str,
    now: Timestamp,
    limit: i64,
    blocked_kinds: Vec<String>,
    /// Each as `kind`, unit separator, `partition`.
    blocked_partitions: Vec<String>,
}

const RUNNING: &str = "SELECT kind, partition_key, COUNT(*) FROM jobs \
     WHERE state = 'running' AND queue = $1 AND locked_until > $2 GROUP BY kind, partition_key";
const SAVE_BUCKET: &str = "INSERT INTO job_rate_limits (key, tat, admitted) VALUES ($1, $2, $3) \
     ON CONFLICT (key) DO UPDATE SET tat = excluded.tat, \
     admitted = job_rate_limits.admitted + excluded.admitted";

impl ClaimSql for PgConnection {
    async fn take_turn(&mut self, queue: &str) -> sqlx::Result<()> {
        sqlx::query(
            "SELECT pg_advisory_xact_lock(hashtextextended('orderly_jobs_claim:' || $1, 0))",
        )
        .bind(queue)
        .execute(self)
        .await
        .map(drop)
    }

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

    async fn candidates(&mut self, look: Look<'_>) -> sqlx::Result<Vec<Candidate>> {
        sqlx::query_as(
            "SELECT id, kind, partition_key FROM jobs WHERE state = 'available' AND queue = $1 \
             AND run_at <= $2 AND NOT EXISTS (SELECT 1 FROM queue_pauses \
             WHERE queue_pauses.queue = $1) AND kind <> ALL($4::text[]) \
             AND (kind || chr(31) || partition_key) <> ALL($5::text[]) \
             ORDER BY priority, run_at, id LIMIT $3 FOR UPDATE SKIP LOCKED",
        )
        .bind(look.queue)
        .bind(look.now)
        .bind(look.limit)
        .bind(look.blocked_kinds)
        .bind(look.blocked_partitions)
        .fetch_all(self)
        .await
    }

    async fn buckets(&mut self, keys: Vec<String>) -> sqlx::Result<Vec<(String, Timestamp)>> {
        sqlx::query_as(
            "SELECT key, tat FROM job_rate_limits WHERE key = ANY($1::text[]) FOR UPDATE",
        )
        .bind(keys)
        .fetch_all(self)
        .await
    }

    async fn take(
        &mut self,
        ids: Vec<i64>,
        worker: &str,
        lease_until: Timestamp,
    ) -> sqlx::Result<Vec<JobRow>> {
        sqlx::query_as(sql::TAKE_POSTGRES)
            .bind(ids)
            .bind(worker)
            .bind(lease_until)
            .fetch_all(self)
            .await
    }

    async fn save_bucket(&mut self, key: &str, tat: Timestamp, admitted: i64) -> sqlx::Result<()> {
        sqlx::query(SAVE_BUCKET)
            .bind(key)
            .bind(tat)
            .bind(admitted)
            .execute(self)
            .await
            .map(drop)
    }
}

/// SQLite has no arrays: lists are bound as JSON and read with `json_each`.
fn json_list<T: serde::Serialize>(items: &[T]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

impl ClaimSql for SqliteConnection {
    /// The transaction's write lock is the turn.
    async fn take_turn(&mut self, _queue: &str) -> sqlx::Result<()> {
        Ok(())
    }

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

    async fn candidates(&mut self, look: Look<'_>) -> sqlx::Result<Vec<Candidate>> {
        sqlx::query_as(
            "SELECT id, kind, partition_key FROM jobs WHERE state = 'available' AND queue = $1 \
             AND run_at <= $2 AND NOT EXISTS (SELECT 1 FROM queue_pauses \
             WHERE queue_pauses.queue = $1) \
             AND kind NOT IN (SELECT value FROM json_each($4)) \
             AND (kind || char(31) || partition_key) NOT IN (SELECT value FROM json_each($5)) \
             ORDER BY priority, run_at, id LIMIT $3",
        )
        .bind(look.queue)
        .bind(look.now)
        .bind(look.limit)
        .bind(json_list(&look.blocked_kinds))
        .bind(json_list(&look.blocked_partitions))
        .fetch_all(self)
        .await
    }

    async fn buckets(&mut self, keys: Vec<String>) -> sqlx::Result<Vec<(String, Timestamp)>> {
        sqlx::query_as(
            "SELECT key, tat FROM job_rate_limits WHERE key IN (SELECT value FROM json_each($1))",
        )
        .bind(json_list(&keys))
        .fetch_all(self)
        .await
    }

    async fn take(
        &mut self,
        ids: Vec<i64>,
        worker: &str,
        lease_until: Timestamp,
    ) -> sqlx::Result<Vec<JobRow>> {
        sqlx::query_as(sql::TAKE_SQLITE)
            .bind(json_list(&ids))
            .bind(worker)
            .bind(lease_until)
            .fetch_all(self)
            .await
    }

    async fn save_bucket(&mut self, key: &str, tat: Timestamp, admitted: i64) -> sqlx::Result<()> {
        sqlx::query(SAVE_BUCKET)
            .bind(key)
            .bind(tat)
            .bind(admitted)
            .execute(self)
            .await
            .map(drop)
    }
}

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
            let mut tx = pool.begin_write().await?;
            let claim = claim_in(&mut *tx, queue, worker, wanted, lease_until, limits).await?;
            tx.commit().await?;
            claim
        }
    };
    Ok(claim)
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
    conn.take_turn(queue).await?;
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
        let candidates = conn
            .candidates(Look {
                queue,
                now: Timestamp::new(now),
                limit,
                blocked_kinds: planner.blocked_kinds.iter().cloned().collect(),
                blocked_partitions: planner
                    .blocked_partitions
                    .iter()
                    .map(|(kind, partition)| format!("{kind}\u{1f}{partition}"))
                    .collect(),
            })
            .await?;
        let slots: Vec<Slot> = candidates
            .iter()
            .map(|(_, k, p)| (k.clone(), p.clone()))
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
        let admitted: Vec<i64> = candidates
            .iter()
            .filter(|(_, kind, partition)| planner.admit(kind, partition))
            .map(|(id, _, _)| *id)
            .collect();
        let all_admitted = admitted.len() == candidates.len();
        if !admitted.is_empty() {
            let taken = conn
                .take(admitted, worker, Timestamp::new(lease_until))
                .await?;
            jobs.extend(sql::jobs(taken));
        }
        if all_admitted || planner.room() == 0 {
            break;
        }
    }
    for (key, tat, admitted) in planner.moved_buckets() {
        conn.save_bucket(key, Timestamp::new(tat), i64::from(admitted))
            .await?;
    }
    let slot_poll = planner.held_for_slot.then(|| now + LIMIT_POLL);
    let held_until = match (slot_poll, planner.next_start) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Ok(Claim { jobs, held_until })
}
