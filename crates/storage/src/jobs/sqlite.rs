//! The job queue's statements on SQLite. One process writes at a time, so a plain
//! `UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING` claims a batch atomically. Times are
//! stored as Unix microseconds so that comparisons and ordering are numeric.

use orderly_domain::job::JobState;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection, SqlitePool};
use time::OffsetDateTime;

use super::{Finished, Job, JobFilter, LEASE_EXPIRED, NewJob, Outcome};
use crate::StoreError;

pub(crate) fn micros(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000) as i64
}

pub(crate) fn from_micros(us: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1_000)
        .map_err(|e| StoreError::Corrupt(format!("job time {us}: {e}")))
}

fn job_from_row(row: &SqliteRow) -> Result<Job, StoreError> {
    let state: String = row.try_get("state")?;
    let args: String = row.try_get("args")?;
    let optional_time = |column: &str| -> Result<Option<OffsetDateTime>, StoreError> {
        row.try_get::<Option<i64>, _>(column)?
            .map(from_micros)
            .transpose()
    };
    Ok(Job {
        id: row.try_get("id")?,
        queue: row.try_get("queue")?,
        kind: row.try_get("kind")?,
        args: serde_json::from_str(&args)
            .map_err(|e| StoreError::Corrupt(format!("jobs.args: {e}")))?,
        state: state.parse().map_err(StoreError::Corrupt)?,
        priority: row.try_get("priority")?,
        attempt: row.try_get("attempt")?,
        max_attempts: row.try_get("max_attempts")?,
        run_at: from_micros(row.try_get("run_at")?)?,
        locked_by: row.try_get("locked_by")?,
        locked_until: optional_time("locked_until")?,
        unique_key: row.try_get("unique_key")?,
        last_error: row.try_get("last_error")?,
        trace_context: row.try_get("trace_context")?,
        created_at: from_micros(row.try_get("created_at")?)?,
        finished_at: optional_time("finished_at")?,
    })
}

fn jobs(rows: Vec<SqliteRow>) -> Result<Vec<Job>, StoreError> {
    rows.iter().map(job_from_row).collect()
}

pub(crate) async fn insert_jobs(
    conn: &mut SqliteConnection,
    new: &[NewJob],
    now: OffsetDateTime,
) -> Result<Vec<i64>, sqlx::Error> {
    let mut ids = Vec::with_capacity(new.len());
    for j in new {
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO jobs (queue, kind, args, state, priority, max_attempts, run_at, \
             unique_key, created_at, trace_context) \
             VALUES ($1, $2, $3, 'available', $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL DO NOTHING RETURNING id",
        )
        .bind(&j.queue)
        .bind(&j.kind)
        .bind(j.args.to_string())
        .bind(j.priority)
        .bind(j.max_attempts)
        .bind(micros(j.run_at.unwrap_or(now)))
        .bind(j.unique_key.as_deref())
        .bind(micros(now))
        .bind(j.trace_context.as_deref())
        .fetch_optional(&mut *conn)
        .await?;
        ids.extend(id);
    }
    Ok(ids)
}

/// Claims a batch; the single writer lock makes the claim atomic.
const FETCH: &str = concat!(
    "UPDATE jobs SET state = 'running', attempt = attempt + 1, locked_by = $4, \
     locked_until = $5 WHERE id IN (SELECT id FROM jobs WHERE state = 'available' \
     AND queue = $1 AND run_at <= $2 ORDER BY priority, run_at, id LIMIT $3) RETURNING ",
    columns!()
);

pub(crate) async fn fetch(
    pool: &SqlitePool,
    queue: &str,
    worker: &str,
    limit: i64,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
) -> Result<Vec<Job>, StoreError> {
    let rows = sqlx::query(FETCH)
        .bind(queue)
        .bind(micros(now))
        .bind(limit)
        .bind(worker)
        .bind(micros(lease_until))
        .fetch_all(pool)
        .await?;
    jobs(rows)
}

pub(crate) async fn finish(
    pool: &SqlitePool,
    worker: &str,
    finished: &[Finished],
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    for f in finished {
        let (state, run_at, finished_at, error) = match &f.outcome {
            Outcome::Completed => ("completed", None, Some(now), None),
            Outcome::Retry { at, error } => ("available", Some(*at), None, Some(error)),
            Outcome::Discard { error } => ("discarded", None, Some(now), Some(error)),
            Outcome::Snooze { at } => {
                sqlx::query(super::SNOOZE)
                    .bind(f.id)
                    .bind(f.attempt)
                    .bind(micros(*at))
                    .bind(worker)
                    .execute(&mut *tx)
                    .await?;
                continue;
            }
        };
        sqlx::query(
            "UPDATE jobs SET state = $3, run_at = COALESCE($4, run_at), finished_at = $5, \
             last_error = COALESCE($6, last_error), locked_by = NULL, locked_until = NULL \
             WHERE id = $1 AND attempt = $2 AND state = 'running' AND locked_by = $7",
        )
        .bind(f.id)
        .bind(f.attempt)
        .bind(state)
        .bind(run_at.map(micros))
        .bind(finished_at.map(micros))
        .bind(error)
        .bind(worker)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn extend_leases(
    pool: &SqlitePool,
    worker: &str,
    ids: &[i64],
    until: OffsetDateTime,
) -> Result<u64, StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let mut extended = 0;
    for id in ids {
        extended += sqlx::query(
            "UPDATE jobs SET locked_until = $3 WHERE id = $1 AND locked_by = $2 \
             AND state = 'running'",
        )
        .bind(id)
        .bind(worker)
        .bind(micros(until))
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }
    tx.commit().await?;
    Ok(extended)
}

pub(crate) async fn release(
    pool: &SqlitePool,
    worker: &str,
    ids: &[i64],
    now: OffsetDateTime,
) -> Result<u64, StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let mut released = 0;
    for id in ids {
        released += sqlx::query(
            "UPDATE jobs SET state = 'available', attempt = attempt - 1, run_at = $3, \
             locked_by = NULL, locked_until = NULL \
             WHERE id = $1 AND locked_by = $2 AND state = 'running'",
        )
        .bind(id)
        .bind(worker)
        .bind(micros(now))
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }
    tx.commit().await?;
    Ok(released)
}

pub(crate) async fn rescue(pool: &SqlitePool, now: OffsetDateTime) -> Result<u64, StoreError> {
    let done = sqlx::query(super::RESCUE)
        .bind(micros(now))
        .bind(LEASE_EXPIRED)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

pub(crate) async fn next_due(
    pool: &SqlitePool,
    queue: &str,
) -> Result<Option<OffsetDateTime>, StoreError> {
    let next: Option<i64> = sqlx::query_scalar(super::NEXT_DUE)
        .bind(queue)
        .fetch_one(pool)
        .await?;
    next.map(from_micros).transpose()
}

job_reads!(SqlitePool);

pub(crate) async fn retry(
    pool: &SqlitePool,
    id: i64,
    now: OffsetDateTime,
) -> Result<Option<Job>, StoreError> {
    let row = sqlx::query(super::RETRY)
        .bind(id)
        .bind(micros(now))
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(job_from_row).transpose()
}

pub(crate) async fn cancel(
    pool: &SqlitePool,
    id: i64,
    now: OffsetDateTime,
) -> Result<Option<Job>, StoreError> {
    let row = sqlx::query(super::CANCEL)
        .bind(id)
        .bind(micros(now))
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(job_from_row).transpose()
}

pub(crate) async fn prune(pool: &SqlitePool, before: OffsetDateTime) -> Result<u64, StoreError> {
    let done = sqlx::query(super::PRUNE)
        .bind(micros(before))
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

pub(crate) async fn oldest_due(
    pool: &SqlitePool,
    now: OffsetDateTime,
) -> Result<Option<OffsetDateTime>, StoreError> {
    let oldest: Option<i64> = sqlx::query_scalar(super::OLDEST_DUE)
        .bind(micros(now))
        .fetch_one(pool)
        .await?;
    oldest.map(from_micros).transpose()
}
