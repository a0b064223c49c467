//! The operators' reads and changes: one job, a filtered page of them, the jobs that belong
//! to something (an order's receipt and deliveries, by their unique keys), counts by state,
//! retrying or cancelling one job, sending every discarded job that matches a filter round
//! again, and pruning finished jobs.

use orderly_db::{Db, Timestamp, with_pool};
use time::OffsetDateTime;

use crate::sql::{self, JobRow};
use crate::{Job, JobChange, JobFilter, JobState, Queue, QueueError};

/// Most jobs one "retry all" sends round again; a larger set takes several.
pub const RETRY_ALL_LIMIT: i64 = 1_000;

/// Which discarded jobs a "retry all" takes.
#[derive(Debug, Clone, Default)]
pub struct DiscardedFilter {
    pub kind: Option<String>,
    pub queue: Option<String>,
    /// Only those whose last error contains this (case-insensitive).
    pub error_contains: Option<String>,
}

impl Queue {
    /// The jobs with these unique keys, newest first (each key at most once: the index is
    /// unique).
    pub async fn jobs_by_unique_keys(&self, keys: &[String]) -> Result<Vec<Job>, QueueError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let rows = with_pool!(self.db(), pool => {
            let mut query = sqlx::QueryBuilder::new(sql::BY_UNIQUE_KEYS);
            let mut list = query.separated(", ");
            for key in keys {
                list.push_bind(key.as_str());
            }
            query.push(") ORDER BY id DESC");
            query.build_query_as::<JobRow>().persistent(false).fetch_all(pool).await
        })?;
        Ok(sql::jobs(rows))
    }

    /// Sends up to [`RETRY_ALL_LIMIT`] discarded jobs matching `filter` round again, with
    /// fresh attempts; returns how many.
    pub async fn retry_discarded(&self, filter: &DiscardedFilter) -> Result<u64, QueueError> {
        let now = Timestamp::new(orderly_domain::now());
        let retried = with_pool!(self.db(), pool => {
            let mut query = sqlx::QueryBuilder::new(
                "UPDATE jobs SET state = 'available', attempt = 0, run_at = ",
            );
            query
                .push_bind(now)
                .push(
                    ", finished_at = NULL, locked_by = NULL, locked_until = NULL \
                     WHERE id IN (SELECT id FROM jobs WHERE state = 'discarded'",
                );
            sql::push_job_filters(
                &mut query,
                filter.kind.as_deref(),
                filter.queue.as_deref(),
                filter.error_contains.as_deref(),
            );
            query
                .push(" ORDER BY id LIMIT ")
                .push_bind(RETRY_ALL_LIMIT)
                .push(") AND state = 'discarded'");
            query
                .build()
                .persistent(false)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        if retried > 0 {
            self.wake_every_worker().await?;
        }
        Ok(retried)
    }
}

impl Queue {
    pub async fn job(&self, id: i64) -> Result<Option<Job>, QueueError> {
        let row = with_pool!(self.db(), pool => sqlx::query_as::<_, JobRow>(sql::BY_ID)
            .bind(id)
            .fetch_optional(pool)
            .await)?;
        Ok(row.map(|JobRow(job)| job))
    }

    /// One page of jobs, newest first.
    pub async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<Job>, QueueError> {
        // The statement names only the filters given, each combination prepared and planned
        // on its own (one statement with `($2 IS NULL OR state = $2)` gets one generic plan
        // for all). The state is written as a literal, one of five fixed words, so that
        // SQLite too can use the partial indexes of discarded and cancelled jobs, which are
        // few among millions of completed ones.
        let rows = with_pool!(self.db(), pool => {
            let mut query = sqlx::QueryBuilder::new(sql::LIST);
            query.push_bind(filter.before.unwrap_or(i64::MAX));
            if let Some(state) = filter.state {
                query.push(format_args!(" AND state = '{}'", state.as_str()));
            }
            sql::push_job_filters(
                &mut query,
                filter.kind.as_deref(),
                filter.queue.as_deref(),
                filter.error_contains.as_deref(),
            );
            query.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(filter.limit.get()));
            query.build_query_as::<JobRow>().fetch_all(pool).await
        })?;
        Ok(sql::jobs(rows))
    }

    /// Sends a discarded or cancelled job round again, with a fresh set of attempts.
    #[tracing::instrument(name = "db", skip_all, fields(op = "retry_job"))]
    pub async fn retry_job(&self, id: i64) -> Result<JobChange, QueueError> {
        let changed = self.change_job(sql::RETRY, id).await?;
        if changed.is_some() {
            self.wake_every_worker().await?;
        }
        self.job_change(id, changed).await
    }

    /// Cancels an available job; asks a running one to stop (it stays `running`, with
    /// `cancel_requested_at`, until its worker stops it or its side effect completes it), and
    /// tells the workers, which also look every [`crate::CANCEL_POLL`].
    #[tracing::instrument(name = "db", skip_all, fields(op = "cancel_job"))]
    pub async fn cancel_job(&self, id: i64) -> Result<JobChange, QueueError> {
        let changed = self.change_job(sql::CANCEL, id).await?;
        if let Some(job) = &changed
            && job.state == JobState::Running
        {
            self.announce_cancel(id).await?;
        }
        self.job_change(id, changed).await
    }

    /// Puts off the waiting jobs of one partition of `kind` (a delivery's endpoint whose
    /// breaker is open) until `until`, their attempts untouched: nobody claims them
    /// meanwhile. How many.
    pub async fn hold_partition(
        &self,
        kind: &str,
        partition: &str,
        until: OffsetDateTime,
    ) -> Result<u64, QueueError> {
        Ok(with_pool!(self.db(), pool => sqlx::query(
            "UPDATE jobs SET run_at = $3 WHERE state = 'available' AND run_at < $3 \
             AND kind = $1 AND partition_key = $2")
            .bind(kind)
            .bind(partition)
            .bind(Timestamp::new(until))
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?)
    }

    /// Brings the jobs [`Queue::hold_partition`] put off until `held_until` (or sooner)
    /// forward to now, and wakes the workers. How many.
    pub async fn release_partition(
        &self,
        kind: &str,
        partition: &str,
        held_until: OffsetDateTime,
    ) -> Result<u64, QueueError> {
        let now = orderly_domain::now();
        let released = with_pool!(self.db(), pool => sqlx::query(
            "UPDATE jobs SET run_at = $3 WHERE state = 'available' AND run_at > $3 \
             AND run_at <= $4 AND kind = $1 AND partition_key = $2")
            .bind(kind)
            .bind(partition)
            .bind(Timestamp::new(now))
            .bind(Timestamp::new(held_until))
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        if released > 0 {
            self.wake_every_worker().await?;
        }
        Ok(released)
    }

    /// The unfinished (available or running) jobs of `kind` in `partition` whose string
    /// argument `arg` is one of `values`: each one's id, that argument and state.
    pub async fn unfinished_by_arg(
        &self,
        kind: &str,
        partition: &str,
        arg: &str,
        values: &[String],
    ) -> Result<Vec<(i64, String, JobState)>, QueueError> {
        if values.is_empty() {
            return Ok(Vec::new());
        }
        // The one thing the dialects say differently: a text field of the JSON arguments.
        let (field, field_end) = match self.db() {
            Db::Sqlite(_) => ("json_extract(args, '$.' || ", ")"),
            Db::Postgres(_) => ("(args->>", ")"),
        };
        let rows: Vec<(i64, String, String)> = with_pool!(self.db(), pool => {
            let mut query = sqlx::QueryBuilder::new("SELECT id, ");
            query.push(field).push_bind(arg).push(field_end);
            query.push(", state FROM jobs WHERE state IN ('available', 'running') AND kind = ");
            query.push_bind(kind).push(" AND partition_key = ").push_bind(partition);
            query.push(" AND ").push(field).push_bind(arg).push(field_end).push(" IN (");
            let mut list = query.separated(", ");
            for value in values {
                list.push_bind(value.as_str());
            }
            query.push(")");
            query.build_query_as().persistent(false).fetch_all(pool).await
        })?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, value, state)| Some((id, value, state.parse().ok()?)))
            .collect())
    }

    /// Makes the available jobs `ids` due now (those waiting for a retry go at once), and
    /// wakes the workers. How many were waiting.
    pub async fn bring_forward(&self, ids: &[i64]) -> Result<u64, QueueError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let now = Timestamp::new(orderly_domain::now());
        let moved = with_pool!(self.db(), pool => {
            let mut query = sqlx::QueryBuilder::new("UPDATE jobs SET run_at = ");
            query.push_bind(now).push(" WHERE state = 'available' AND run_at > ").push_bind(now);
            query.push(" AND id IN (");
            let mut list = query.separated(", ");
            for id in ids {
                list.push_bind(*id);
            }
            query.push(")");
            query.build().persistent(false).execute(pool).await.map(|done| done.rows_affected())
        })?;
        self.wake_every_worker().await?;
        Ok(moved)
    }

    /// Runs an operator's change (`$1` the id, `$2` now) and returns the job it changed.
    async fn change_job(
        &self,
        statement: &'static str,
        id: i64,
    ) -> Result<Option<Job>, QueueError> {
        let now = Timestamp::new(orderly_domain::now());
        let row = with_pool!(self.db(), pool => sqlx::query_as::<_, JobRow>(statement)
            .bind(id)
            .bind(now)
            .fetch_optional(pool)
            .await)?;
        Ok(row.map(|JobRow(job)| job))
    }

    /// The job as the change left it, or why there was no change.
    async fn job_change(&self, id: i64, changed: Option<Job>) -> Result<JobChange, QueueError> {
        if let Some(job) = changed {
            return Ok(JobChange::Done(job));
        }
        Ok(match self.job(id).await? {
            None => JobChange::NotFound,
            Some(job) => JobChange::NotAllowed(job),
        })
    }

    /// Deletes completed, discarded and cancelled jobs that finished before `before`, in
    /// batches that leave the writers room, until `deadline` ([`orderly_db::delete_in_batches`]).
    pub async fn prune_jobs(
        &self,
        before: OffsetDateTime,
        deadline: std::time::Instant,
    ) -> Result<orderly_db::Deleted, QueueError> {
        let before = Timestamp::new(before);
        Ok(orderly_db::delete_in_batches(self.db(), sql::PRUNE, before, deadline).await?)
    }

    /// How long the oldest due, available job has been waiting (zero when none is due).
    pub async fn oldest_due_job_age(&self) -> Result<std::time::Duration, QueueError> {
        let now = orderly_domain::now();
        let oldest: Option<Timestamp> = with_pool!(self.db(), pool => sqlx::query_scalar(sql::OLDEST_DUE)
            .bind(Timestamp::new(now))
            .fetch_one(pool)
            .await)?;
        Ok(oldest
            .map(|t| std::time::Duration::try_from(now - t.get()).unwrap_or_default())
            .unwrap_or_default())
    }

    /// How many jobs of `queue` have not finished (available or running). Each state counted
    /// on its own partial index: `state IN (…)` would read every finished job on SQLite.
    pub async fn count_unfinished_jobs(&self, queue: &str) -> Result<i64, QueueError> {
        Ok(with_pool!(self.db(), pool => sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM jobs WHERE queue = $1 AND state = 'available') \
                  + (SELECT COUNT(*) FROM jobs WHERE queue = $1 AND state = 'running')")
            .bind(queue)
            .fetch_one(pool)
            .await)?)
    }

    /// How many jobs are in `state`. Completed jobs are counted by reading them all: for tests
    /// and tools, not for what runs often ([`Queue::count_jobs_by_state`] does not count them).
    pub async fn count_jobs_in(&self, state: JobState) -> Result<i64, QueueError> {
        Ok(with_pool!(self.db(), pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs WHERE state = $1")
            .bind(state.as_str())
            .fetch_one(pool)
            .await)?)
    }

    /// Brings the planner's statistics of the jobs table up to date, as an operator would after
    /// a bulk load (PostgreSQL: `VACUUM ANALYZE`; SQLite: `ANALYZE`): for benchmarks.
    pub async fn analyze(&self) -> Result<(), QueueError> {
        match self.db() {
            Db::Sqlite(pool) => sqlx::query("ANALYZE jobs").execute(pool).await.map(drop)?,
            Db::Postgres(pool) => sqlx::query("VACUUM ANALYZE jobs")
                .execute(pool)
                .await
                .map(drop)?,
        }
        Ok(())
    }

    /// How many jobs are available, running, discarded and cancelled, each counted on its
    /// partial index. Completed jobs are not counted: there are millions of them until
    /// pruned, a count would read them all every time a worker samples (`jobs_completed_total`
    /// tells how fast they come).
    pub async fn count_jobs_by_state(&self) -> Result<Vec<(JobState, i64)>, QueueError> {
        let (available, running, discarded, cancelled): (i64, i64, i64, i64) = with_pool!(self.db(), pool => sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM jobs WHERE state = 'available'), \
                        (SELECT COUNT(*) FROM jobs WHERE state = 'running'), \
                        (SELECT COUNT(*) FROM jobs WHERE state = 'discarded'), \
                        (SELECT COUNT(*) FROM jobs WHERE state = 'cancelled')")
                .fetch_one(pool)
                .await)?;
        Ok(vec![
            (JobState::Available, available),
            (JobState::Running, running),
            (JobState::Discarded, discarded),
            (JobState::Cancelled, cancelled),
        ])
    }
}
