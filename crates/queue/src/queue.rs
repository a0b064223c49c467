//! [`Queue`]: the job table's reads and writes: enqueueing, fetching under leases, recording
//! outcomes, rescuing jobs whose leases ran out (the operators' reads and changes are in
//! `operations.rs`).

use std::sync::Arc;

use orderly_db::{Db, Timestamp, WritePool, with_pool};
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::enqueue::Enqueued;
use crate::sql::{self, JobRow};
use crate::{Completed, Finished, Job, NewJob, Outcome, QueueError};

/// The job queue in the service's database. Cheap to clone; clones share the pool and the
/// wake-up signal of this process's workers.
#[derive(Debug, Clone)]
pub struct Queue {
    db: Db,
    wake: Arc<Notify>,
    /// Told when an operator of this process asks a running job to stop.
    cancels: Arc<Notify>,
}

/// Records each finished run of `$runs` with its own statement inside the transaction `$tx`
/// (a macro: the transaction's type differs by backend), `$now` and `$worker` as
/// [`Queue::finish_jobs`] got them.
macro_rules! record_each {
    ($tx:expr, $runs:expr, $now:expr, $worker:expr, $completed:expr) => {
        for f in $runs {
            let (state, run_at, finished_at, error) = match &f.outcome {
                Outcome::Completed if $completed == Completed::Deleted => {
                    sqlx::query(sql::COMPLETE_DELETE_SQLITE)
                        .bind(f.id)
                        .bind(f.attempt)
                        .bind($worker)
                        .execute(&mut *$tx)
                        .await?;
                    continue;
                }
                Outcome::Completed => ("completed", None, Some($now), None),
                Outcome::Retry { at, error } => ("available", Some(*at), None, Some(error)),
                Outcome::Discard { error } => ("discarded", None, Some($now), Some(error)),
                Outcome::Cancelled { error } => ("cancelled", None, Some($now), Some(error)),
                Outcome::Snooze { at } => {
                    sqlx::query(sql::SNOOZE)
                        .bind(f.id)
                        .bind(f.attempt)
                        .bind(Timestamp::new(*at))
                        .bind($worker)
                        .bind(Timestamp::new($now))
                        .execute(&mut *$tx)
                        .await?;
                    continue;
                }
            };
            sqlx::query(sql::FINISH)
                .bind(f.id)
                .bind(f.attempt)
                .bind(state)
                .bind(run_at.map(Timestamp::new))
                .bind(finished_at.map(Timestamp::new))
                .bind(error)
                .bind($worker)
                .bind(Timestamp::new($now))
                .execute(&mut *$tx)
                .await?;
        }
    };
}

/// The channel job inserts notify.
const JOBS_CHANNEL: &str = "orderly_jobs";
/// The channel requests to stop a running job notify (the payload is the job's id).
const CANCELS_CHANNEL: &str = "orderly_job_cancels";

/// Notifications of jobs inserted, and of running jobs asked to stop, by any process
/// (PostgreSQL `LISTEN orderly_jobs` and `orderly_job_cancels`).
#[derive(Debug)]
pub struct JobListener {
    pool: sqlx::PgPool,
    /// `None` after an error: the next [`JobListener::recv`] listens on a new connection.
    listener: Option<sqlx::postgres::PgListener>,
}

/// What a [`JobListener`] heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// A job was inserted.
    Job,
    /// An operator asked a running job to stop.
    Cancel,
    /// The connection was lost and is listening again on a new one: notifications sent in
    /// between were missed, so look for work once.
    Reconnected,
}

impl JobListener {
    async fn listen(pool: &sqlx::PgPool) -> Result<sqlx::postgres::PgListener, QueueError> {
        let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
        listener.listen_all([JOBS_CHANNEL, CANCELS_CHANNEL]).await?;
        Ok(listener)
    }

    /// Waits for the next notification, or for the connection to be lost and made again.
    /// After an error (the connection broke in a way sqlx's listener does not recover from,
    /// such as the server's `FATAL` before it closes, or the database cannot be reached) the
    /// listener is dropped and the next call listens on a new connection.
    pub async fn recv(&mut self) -> Result<Heard, QueueError> {
        let listener = match &mut self.listener {
            Some(listener) => listener,
            None => {
                self.listener = Some(Self::listen(&self.pool).await?);
                return Ok(Heard::Reconnected);
            }
        };
        match listener.try_recv().await {
            Ok(Some(n)) if n.channel() == CANCELS_CHANNEL => Ok(Heard::Cancel),
            Ok(Some(_)) => Ok(Heard::Job),
            Ok(None) => Ok(Heard::Reconnected),
            Err(e) => {
                self.listener = None;
                Err(e.into())
            }
        }
    }
}

impl Queue {
    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    /// Wakes the workers of this process and, on PostgreSQL, of every other (as an insert
    /// does): jobs they could not take a moment ago can be taken now.
    pub(crate) async fn wake_every_worker(&self) -> Result<(), QueueError> {
        self.wake.notify_waiters();
        if let Db::Postgres(pool) = self.db() {
            sqlx::query("SELECT pg_notify('orderly_jobs', '')")
                .execute(pool)
                .await?;
        }
        Ok(())
    }

    /// The queue in `db`.
    pub fn new(db: Db) -> Self {
        Self {
            db,
            wake: Arc::default(),
            cancels: Arc::default(),
        }
    }

    /// A listener for job notifications from every process; `None` on SQLite, where only
    /// this process's commits ([`Queue::jobs_signal`]) can wake workers.
    pub async fn listen_for_jobs(&self) -> Result<Option<JobListener>, QueueError> {
        match &self.db {
            Db::Sqlite(_) => Ok(None),
            Db::Postgres(pool) => Ok(Some(JobListener {
                pool: pool.clone(),
                listener: Some(JobListener::listen(pool).await?),
            })),
        }
    }

    /// Tells this process's workers, and on PostgreSQL every other's, that an operator asked
    /// a running job to stop: each looks whether it holds one ([`Queue::cancel_requests`]).
    pub(crate) async fn announce_cancel(&self, id: i64) -> Result<(), QueueError> {
        self.cancels.notify_waiters();
        if let Db::Postgres(pool) = self.db() {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CANCELS_CHANNEL)
                .bind(id.to_string())
                .execute(pool)
                .await?;
        }
        Ok(())
    }

    /// Resolves when an operator of this process asks a running job to stop.
    pub(crate) fn cancels_signal(&self) -> Arc<Notify> {
        self.cancels.clone()
    }

    /// Of the running jobs `ids`, those an operator asked to stop.
    pub(crate) async fn cancel_requests(&self, ids: &[i64]) -> Result<Vec<i64>, QueueError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(with_pool!(&self.db, pool => {
            let mut query = sqlx::QueryBuilder::new(
                "SELECT id FROM jobs WHERE state = 'running' AND cancel_requested_at IS NOT NULL \
                 AND id IN (");
            let mut list = query.separated(", ");
            for id in ids {
                list.push_bind(*id);
            }
            query.push(")");
            query.build_query_scalar::<i64>().persistent(false).fetch_all(pool).await
        })?)
    }

    /// Resolves when a commit in this process enqueued jobs (register before checking for
    /// work: `notified()` does not see wake-ups from before it was created).
    pub fn jobs_signal(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// What must follow a commit that enqueued jobs: wake this process's workers (other
    /// processes hear PostgreSQL's `NOTIFY`), count the jobs.
    pub fn after_commit(&self, enqueued: Enqueued) {
        if enqueued.inserted > 0 {
            self.wake.notify_waiters();
        }
        for (kind, n) in enqueued.kinds {
            metrics::counter!("jobs_enqueued_total", "kind" => kind).increment(n);
        }
    }

    /// Enqueues jobs in one transaction; returns the ids of the jobs inserted (a job whose
    /// unique key exists already is skipped).
    #[tracing::instrument(name = "db", skip_all, fields(op = "enqueue"))]
    pub async fn enqueue(&self, jobs: &[NewJob]) -> Result<Vec<i64>, QueueError> {
        let now = orderly_domain::now();
        let ids = match &self.db {
            Db::Sqlite(pool) => {
                // One transaction, so a batch costs one commit rather than one per job.
                let mut tx = pool.begin_write().await?;
                let ids = sql::insert_jobs_sqlite(&mut tx, jobs, now).await?;
                tx.commit().await?;
                ids
            }
            Db::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                sql::insert_jobs_postgres(&mut conn, jobs, now).await?
            }
        };
        self.after_commit(Enqueued::new(jobs, ids.len()));
        Ok(ids)
    }

    /// Takes up to `limit` available jobs of `queue` for `worker`, leased until `lease_until`.
    #[tracing::instrument(name = "db", skip_all, fields(op = "fetch_jobs"))]
    pub async fn fetch_jobs(
        &self,
        queue: &str,
        worker: &str,
        limit: i64,
        lease_until: OffsetDateTime,
    ) -> Result<Vec<Job>, QueueError> {
        let now = Timestamp::new(orderly_domain::now());
        let statement = match self.db {
            Db::Sqlite(_) => sql::FETCH_SQLITE,
            Db::Postgres(_) => sql::FETCH_POSTGRES,
        };
        let rows = with_pool!(&self.db, pool => sqlx::query_as::<_, JobRow>(statement)
            .bind(queue)
            .bind(now)
            .bind(limit)
            .bind(worker)
            .bind(Timestamp::new(lease_until))
            .fetch_all(pool)
            .await)?;
        Ok(sql::jobs(rows))
    }

    /// Claims up to `limit` due jobs of `queue` for `worker` under `limits`: by the plain
    /// fetch when nothing limits the queue, else counting what the fleet runs (`claim.rs`).
    #[tracing::instrument(name = "db", skip_all, fields(op = "claim_jobs"))]
    pub async fn claim_jobs(
        &self,
        queue: &str,
        worker: &str,
        limit: i64,
        lease_until: OffsetDateTime,
        limits: &crate::limits::Limits,
    ) -> Result<crate::Claim, QueueError> {
        match limits.on_queue(queue) {
            None => Ok(crate::Claim {
                jobs: self.fetch_jobs(queue, worker, limit, lease_until).await?,
                held_until: None,
            }),
            Some(limits) => {
                crate::claim::claim(&self.db, queue, worker, limit, lease_until, limits).await
            }
        }
    }

    /// Records finished runs in one transaction; `completed` says whether completed jobs are
    /// kept or deleted.
    #[tracing::instrument(name = "db", skip_all, fields(op = "finish_jobs"))]
    pub async fn finish_jobs(
        &self,
        worker: &str,
        finished: &[Finished],
        completed: Completed,
    ) -> Result<(), QueueError> {
        let now = orderly_domain::now();
        match &self.db {
            // One writer holds the lock: one statement a run, one commit for all.
            Db::Sqlite(pool) => {
                let mut tx = pool.begin_write().await?;
                record_each!(tx, finished, now, worker, completed);
                tx.commit().await?;
            }
            // Every completion in one statement, the rest one by one.
            Db::Postgres(pool) => {
                let (done, failed): (Vec<&Finished>, Vec<&Finished>) = finished
                    .iter()
                    .partition(|f| f.outcome == Outcome::Completed);
                if failed.is_empty() {
                    // The usual batch, all completed: one statement is atomic on its own, so
                    // one round trip instead of three (BEGIN, UPDATE, COMMIT).
                    sql::complete_postgres(
                        done.iter().map(|f| f.id).collect(),
                        done.iter().map(|f| f.attempt).collect(),
                        now,
                        worker,
                        completed,
                    )
                    .execute(pool)
                    .await?;
                    return Ok(());
                }
                let mut tx = pool.begin_write().await?;
                // Rows locked in id order, as the heartbeat's lease extension locks them: in
                // the order of the batch, a batch of many give-backs deadlocked with it, the
                // leases lapsed and their jobs ran twice (measured in the rolling restart).
                let mut ids: Vec<i64> = finished.iter().map(|f| f.id).collect();
                ids.sort_unstable();
                sqlx::query("SELECT id FROM jobs WHERE id = ANY($1) ORDER BY id FOR UPDATE")
                    .bind(ids)
                    .execute(&mut *tx)
                    .await?;
                if !done.is_empty() {
                    sql::complete_postgres(
                        done.iter().map(|f| f.id).collect(),
                        done.iter().map(|f| f.attempt).collect(),
                        now,
                        worker,
                        completed,
                    )
                    .execute(&mut *tx)
                    .await?;
                }
                record_each!(tx, failed, now, worker, completed);
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// Extends the leases of the jobs `worker` is running.
    pub async fn extend_leases(
        &self,
        worker: &str,
        ids: &[i64],
        until: OffsetDateTime,
    ) -> Result<u64, QueueError> {
        self.update_held(sql::EXTEND_SQLITE, sql::EXTEND_POSTGRES, worker, ids, until)
            .await
    }

    /// Gives back jobs `worker` took but will not run (it is shutting down): they become
    /// available at once and the attempt does not count.
    pub async fn release_jobs(&self, worker: &str, ids: &[i64]) -> Result<u64, QueueError> {
        let now = orderly_domain::now();
        let released = self
            .update_held(sql::RELEASE_SQLITE, sql::RELEASE_POSTGRES, worker, ids, now)
            .await?;
        if released > 0 {
            self.wake.notify_waiters();
        }
        Ok(released)
    }

    /// Runs a statement over jobs `worker` holds, binding (ids, worker, time): on PostgreSQL
    /// once with the id array, on SQLite once per id in one transaction.
    async fn update_held(
        &self,
        sqlite: &'static str,
        postgres: &'static str,
        worker: &str,
        ids: &[i64],
        at: OffsetDateTime,
    ) -> Result<u64, QueueError> {
        let at = Timestamp::new(at);
        let changed = match &self.db {
            Db::Sqlite(pool) => {
                let mut tx = pool.begin_write().await?;
                let mut changed = 0;
                for id in ids {
                    changed += sqlx::query(sqlite)
                        .bind(id)
                        .bind(worker)
                        .bind(at)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                tx.commit().await?;
                changed
            }
            Db::Postgres(pool) => sqlx::query(postgres)
                .bind(ids)
                .bind(worker)
                .bind(at)
                .execute(pool)
                .await?
                .rows_affected(),
        };
        Ok(changed)
    }

    /// Returns running jobs whose lease has run out to the queue (or discards them when they
    /// have no attempts left). Returns how many were rescued.
    pub async fn rescue_expired_jobs(&self) -> Result<u64, QueueError> {
        let now = Timestamp::new(orderly_domain::now());
        let rescued = with_pool!(&self.db, pool => sqlx::query(sql::RESCUE)
            .bind(now)
            .bind(sql::LEASE_EXPIRED)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        if rescued > 0 {
            self.wake.notify_waiters();
        }
        Ok(rescued)
    }

    /// When the next available job of `queue` becomes due, if any.
    pub async fn next_job_due(&self, queue: &str) -> Result<Option<OffsetDateTime>, QueueError> {
        let next: Option<Timestamp> = with_pool!(&self.db, pool => sqlx::query_scalar(sql::NEXT_DUE)
            .bind(queue)
            .fetch_one(pool)
            .await)?;
        Ok(next.map(Timestamp::get))
    }
}
