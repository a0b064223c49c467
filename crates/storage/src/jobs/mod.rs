//! The durable job queue, in the same database as the orders so that an order and its
//! follow-up work commit together.
//!
//! A worker fetches available jobs (on PostgreSQL with `FOR UPDATE SKIP LOCKED`, so workers
//! never wait on each other), holds each under a lease that its heartbeat extends, and reports
//! outcomes in batches. A job whose lease runs out (its worker died) is rescued and runs
//! again: execution is at least once. Inserts wake workers: PostgreSQL notifies listeners on
//! commit (trigger `jobs_notify`); within one process [`Store::jobs_signal`] does.

/// The columns every job query returns, as a literal so `concat!` can build the statements.
macro_rules! columns {
    () => {
        "id, queue, kind, args, state, priority, attempt, max_attempts, run_at, locked_by, \
         locked_until, unique_key, last_error, created_at, finished_at, trace_context"
    };
}

/// The reads of single jobs and pages of jobs, the same on both backends but for the pool
/// type and the row decoder (`job_from_row` of the module that invokes this).
macro_rules! job_reads {
    ($pool:ty) => {
        pub(crate) async fn job(pool: &$pool, id: i64) -> Result<Option<Job>, StoreError> {
            let row = sqlx::query(super::BY_ID)
                .bind(id)
                .fetch_optional(pool)
                .await?;
            row.as_ref().map(job_from_row).transpose()
        }

        pub(crate) async fn list(pool: &$pool, filter: &JobFilter) -> Result<Vec<Job>, StoreError> {
            let rows = sqlx::query(super::LIST)
                .bind(filter.before.unwrap_or(i64::MAX))
                .bind(filter.state.map(JobState::as_str))
                .bind(filter.kind.as_deref())
                .bind(filter.queue.as_deref())
                .bind(i64::from(filter.limit.get()))
                .fetch_all(pool)
                .await?;
            jobs(rows)
        }
    };
}

pub(crate) mod postgres;
pub(crate) mod sqlite;

use std::sync::Arc;

use orderly_domain::PageLimit;
use orderly_domain::job::JobState;
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::{Backend, Store, StoreError};

/// A job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: i64,
    pub queue: String,
    pub kind: String,
    pub args: Value,
    pub state: JobState,
    /// 0 runs first, 9 last.
    pub priority: i32,
    /// Attempts started so far, this one included while running.
    pub attempt: i32,
    pub max_attempts: i32,
    /// Not before this time.
    pub run_at: OffsetDateTime,
    pub locked_by: Option<String>,
    pub locked_until: Option<OffsetDateTime>,
    pub unique_key: Option<String>,
    pub last_error: Option<String>,
    pub created_at: OffsetDateTime,
    pub finished_at: Option<OffsetDateTime>,
    /// The W3C `traceparent` of the request that enqueued the job.
    pub trace_context: Option<String>,
}

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub queue: String,
    pub kind: String,
    pub args: Value,
    pub priority: i32,
    pub max_attempts: i32,
    /// Run no earlier than this; now when `None`.
    pub run_at: Option<OffsetDateTime>,
    /// A second job with the same key is not enqueued.
    pub unique_key: Option<String>,
    /// The W3C `traceparent` of the enqueuing request, continued by the job's span.
    pub trace_context: Option<String>,
}

impl NewJob {
    /// A job of `kind` on the default queue, priority 5, up to `max_attempts` attempts.
    pub fn new(kind: impl Into<String>, args: Value, max_attempts: i32) -> Self {
        Self {
            queue: "default".into(),
            kind: kind.into(),
            args,
            priority: 5,
            max_attempts,
            run_at: None,
            unique_key: None,
            trace_context: None,
        }
    }
}

/// How one run of a job ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Completed,
    /// Failed; run again at `at`.
    Retry {
        at: OffsetDateTime,
        error: String,
    },
    /// Failed for good.
    Discard {
        error: String,
    },
    /// Not run after all (the handler found it could not start yet): available again at
    /// `at`, the attempt not counted.
    Snooze {
        at: OffsetDateTime,
    },
}

/// A finished run, reported by the worker that held it.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub id: i64,
    /// The attempt that ran: a stale report (the job was rescued and re-run) changes nothing.
    pub attempt: i32,
    pub outcome: Outcome,
}

/// Which jobs a listing returns, newest first.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub state: Option<JobState>,
    pub kind: Option<String>,
    pub queue: Option<String>,
    /// Jobs with ids below this (the previous page's last id).
    pub before: Option<i64>,
    pub limit: PageLimit,
}

/// How an operator's retry or cancel ended.
#[derive(Debug, Clone, PartialEq)]
pub enum JobChange {
    Done(Job),
    NotFound,
    NotAllowed(Job),
}

/// Wakes this process's workers after a commit that enqueued jobs.
#[derive(Debug, Clone, Default)]
pub(crate) struct JobsSignal(Arc<Notify>);

impl JobsSignal {
    pub(crate) fn wake(&self) {
        self.0.notify_waiters();
    }
}

/// Notifications of jobs inserted by any process (PostgreSQL `LISTEN orderly_jobs`).
#[derive(Debug)]
pub struct JobListener(sqlx::postgres::PgListener);

impl JobListener {
    /// Waits for the next notification. After an error the listener reconnects by itself on
    /// the next call.
    pub async fn recv(&mut self) -> Result<(), StoreError> {
        self.0.recv().await?;
        Ok(())
    }
}

impl Store {
    /// A listener for job notifications from every process; `None` on SQLite, where only
    /// this process's commits ([`Store::jobs_signal`]) can wake workers.
    pub async fn listen_for_jobs(&self) -> Result<Option<JobListener>, StoreError> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(None),
            Backend::Postgres(pool) => {
                let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
                listener.listen("orderly_jobs").await?;
                Ok(Some(JobListener(listener)))
            }
        }
    }

    /// Resolves when a commit in this process enqueued jobs (register before checking for
    /// work: `notified()` does not see wake-ups from before it was created).
    pub fn jobs_signal(&self) -> Arc<Notify> {
        self.jobs_signal.0.clone()
    }

    /// Enqueues jobs in one transaction; returns the ids of the jobs inserted (a job whose
    /// unique key exists already is skipped).
    #[tracing::instrument(name = "db", skip_all, fields(op = "enqueue"))]
    pub async fn enqueue(&self, jobs: &[NewJob]) -> Result<Vec<i64>, StoreError> {
        let now = orderly_domain::now();
        let ids = match &self.backend {
            Backend::Sqlite(pool) => {
                // One transaction, so a batch costs one commit rather than one per job.
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let ids = sqlite::insert_jobs(&mut tx, jobs, now).await?;
                tx.commit().await?;
                ids
            }
            Backend::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                postgres::insert_jobs(&mut conn, jobs, now).await?
            }
        };
        if !ids.is_empty() {
            self.jobs_signal.wake();
        }
        for job in jobs {
            metrics::counter!("jobs_enqueued_total", "kind" => job.kind.clone()).increment(1);
        }
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
    ) -> Result<Vec<Job>, StoreError> {
        let now = orderly_domain::now();
        match &self.backend {
            Backend::Sqlite(pool) => {
                sqlite::fetch(pool, queue, worker, limit, now, lease_until).await
            }
            Backend::Postgres(pool) => {
                postgres::fetch(pool, queue, worker, limit, now, lease_until).await
            }
        }
    }

    /// Records finished runs, completions in one statement.
    #[tracing::instrument(name = "db", skip_all, fields(op = "finish_jobs"))]
    pub async fn finish_jobs(&self, worker: &str, finished: &[Finished]) -> Result<(), StoreError> {
        let now = orderly_domain::now();
        match &self.backend {
            Backend::Sqlite(pool) => sqlite::finish(pool, worker, finished, now).await,
            Backend::Postgres(pool) => postgres::finish(pool, worker, finished, now).await,
        }
    }

    /// Extends the leases of the jobs `worker` is running.
    pub async fn extend_leases(
        &self,
        worker: &str,
        ids: &[i64],
        until: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        match &self.backend {
            Backend::Sqlite(pool) => sqlite::extend_leases(pool, worker, ids, until).await,
            Backend::Postgres(pool) => postgres::extend_leases(pool, worker, ids, until).await,
        }
    }

    /// Gives back jobs `worker` took but will not run (it is shutting down): they become
    /// available at once and the attempt does not count.
    pub async fn release_jobs(&self, worker: &str, ids: &[i64]) -> Result<u64, StoreError> {
        let now = orderly_domain::now();
        let released = match &self.backend {
            Backend::Sqlite(pool) => sqlite::release(pool, worker, ids, now).await?,
            Backend::Postgres(pool) => postgres::release(pool, worker, ids, now).await?,
        };
        if released > 0 {
            self.jobs_signal.wake();
        }
        Ok(released)
    }

    /// Returns running jobs whose lease has run out to the queue (or discards them when they
    /// have no attempts left). Returns how many were rescued.
    pub async fn rescue_expired_jobs(&self) -> Result<u64, StoreError> {
        let now = orderly_domain::now();
        let rescued = match &self.backend {
            Backend::Sqlite(pool) => sqlite::rescue(pool, now).await?,
            Backend::Postgres(pool) => postgres::rescue(pool, now).await?,
        };
        if rescued > 0 {
            self.jobs_signal.wake();
        }
        Ok(rescued)
    }

    /// When the next available job of `queue` becomes due, if any.
    pub async fn next_job_due(&self, queue: &str) -> Result<Option<OffsetDateTime>, StoreError> {
        match &self.backend {
            Backend::Sqlite(pool) => sqlite::next_due(pool, queue).await,
            Backend::Postgres(pool) => postgres::next_due(pool, queue).await,
        }
    }

    pub async fn job(&self, id: i64) -> Result<Option<Job>, StoreError> {
        match &self.backend {
            Backend::Sqlite(pool) => sqlite::job(pool, id).await,
            Backend::Postgres(pool) => postgres::job(pool, id).await,
        }
    }

    /// One page of jobs, newest first.
    pub async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<Job>, StoreError> {
        match &self.backend {
            Backend::Sqlite(pool) => sqlite::list(pool, filter).await,
            Backend::Postgres(pool) => postgres::list(pool, filter).await,
        }
    }

    /// Sends a discarded or cancelled job round again, with a fresh set of attempts.
    #[tracing::instrument(name = "db", skip_all, fields(op = "retry_job"))]
    pub async fn retry_job(&self, id: i64) -> Result<JobChange, StoreError> {
        let now = orderly_domain::now();
        let changed = match &self.backend {
            Backend::Sqlite(pool) => sqlite::retry(pool, id, now).await?,
            Backend::Postgres(pool) => postgres::retry(pool, id, now).await?,
        };
        if changed.is_some() {
            self.jobs_signal.wake();
        }
        self.job_change(id, changed).await
    }

    /// Cancels an available or running job. A running job's worker finishes its run, but its
    /// outcome is not recorded.
    #[tracing::instrument(name = "db", skip_all, fields(op = "cancel_job"))]
    pub async fn cancel_job(&self, id: i64) -> Result<JobChange, StoreError> {
        let now = orderly_domain::now();
        let changed = match &self.backend {
            Backend::Sqlite(pool) => sqlite::cancel(pool, id, now).await?,
            Backend::Postgres(pool) => postgres::cancel(pool, id, now).await?,
        };
        self.job_change(id, changed).await
    }

    /// The job as the change left it, or why there was no change.
    async fn job_change(&self, id: i64, changed: Option<Job>) -> Result<JobChange, StoreError> {
        if let Some(job) = changed {
            return Ok(JobChange::Done(job));
        }
        Ok(match self.job(id).await? {
            None => JobChange::NotFound,
            Some(job) => JobChange::NotAllowed(job),
        })
    }

    /// Deletes completed, discarded and cancelled jobs that finished before `before`.
    pub async fn prune_jobs(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        match &self.backend {
            Backend::Sqlite(pool) => sqlite::prune(pool, before).await,
            Backend::Postgres(pool) => postgres::prune(pool, before).await,
        }
    }

    /// How long the oldest due, available job has been waiting (zero when none is due).
    pub async fn oldest_due_job_age(&self) -> Result<std::time::Duration, StoreError> {
        let now = orderly_domain::now();
        let oldest = match &self.backend {
            Backend::Sqlite(pool) => sqlite::oldest_due(pool, now).await?,
            Backend::Postgres(pool) => postgres::oldest_due(pool, now).await?,
        };
        Ok(oldest
            .map(|t| std::time::Duration::try_from(now - t).unwrap_or_default())
            .unwrap_or_default())
    }

    /// How many jobs of `queue` have not finished (available or running).
    pub async fn count_unfinished_jobs(&self, queue: &str) -> Result<i64, StoreError> {
        Ok(crate::with_pool!(self, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs WHERE queue = $1 AND state IN ('available', 'running')")
            .bind(queue)
            .fetch_one(pool)
            .await)?)
    }

    /// How many jobs are in each state.
    pub async fn count_jobs_by_state(&self) -> Result<Vec<(JobState, i64)>, StoreError> {
        let rows: Vec<(String, i64)> = crate::with_pool!(self, pool => sqlx::query_as(
            "SELECT state, COUNT(*) FROM jobs GROUP BY state")
            .fetch_all(pool)
            .await)?;
        rows.into_iter()
            .map(|(state, n)| state.parse().map(|s| (s, n)).map_err(StoreError::Corrupt))
            .collect()
    }
}

// Statements whose text both backends share; they differ only in how times are bound
// (`timestamptz` on PostgreSQL, Unix microseconds on SQLite).
pub(crate) const BY_ID: &str = concat!("SELECT ", columns!(), " FROM jobs WHERE id = $1");
pub(crate) const LIST: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM jobs WHERE id < $1 AND ($2 IS NULL OR state = $2) AND ($3 IS NULL OR kind = $3) \
     AND ($4 IS NULL OR queue = $4) ORDER BY id DESC LIMIT $5"
);
/// A snoozed job goes back to the queue with its attempt given back.
pub(crate) const SNOOZE: &str = "UPDATE jobs SET state = 'available', attempt = attempt - 1, \
                                 run_at = $3, locked_by = NULL, locked_until = NULL \
                                 WHERE id = $1 AND attempt = $2 AND state = 'running' \
                                 AND locked_by = $4";

pub(crate) const RETRY: &str = concat!(
    "UPDATE jobs SET state = 'available', attempt = 0, run_at = $2, finished_at = NULL, \
     locked_by = NULL, locked_until = NULL WHERE id = $1 AND state IN ('discarded', 'cancelled') \
     RETURNING ",
    columns!()
);
pub(crate) const CANCEL: &str = concat!(
    "UPDATE jobs SET state = 'cancelled', finished_at = $2, locked_by = NULL, \
     locked_until = NULL WHERE id = $1 AND state IN ('available', 'running') RETURNING ",
    columns!()
);
pub(crate) const RESCUE: &str = "UPDATE jobs SET \
     state = CASE WHEN attempt >= max_attempts THEN 'discarded' ELSE 'available' END, \
     finished_at = CASE WHEN attempt >= max_attempts THEN $1 END, \
     run_at = $1, last_error = $2, locked_by = NULL, locked_until = NULL \
     WHERE state = 'running' AND locked_until < $1";
pub(crate) const PRUNE: &str = "DELETE FROM jobs \
     WHERE state IN ('completed', 'discarded', 'cancelled') AND finished_at < $1";
pub(crate) const NEXT_DUE: &str =
    "SELECT MIN(run_at) FROM jobs WHERE state = 'available' AND queue = $1";
pub(crate) const OLDEST_DUE: &str =
    "SELECT MIN(run_at) FROM jobs WHERE state = 'available' AND run_at <= $1";

/// The message kept on a job whose worker stopped holding it.
pub(crate) const LEASE_EXPIRED: &str = "lease expired: the worker stopped without finishing";
