//! The job queue's statements on PostgreSQL: batch fetch with `FOR UPDATE SKIP LOCKED`, and
//! batch updates over `unnest` arrays.

use orderly_domain::job::JobState;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool, Row};
use time::OffsetDateTime;

use super::{Finished, Job, JobFilter, LEASE_EXPIRED, NewJob, Outcome};
use crate::StoreError;

fn job_from_row(row: &PgRow) -> Result<Job, StoreError> {
    let state: String = row.try_get("state")?;
    let Json(args) = row.try_get("args")?;
    Ok(Job {
        id: row.try_get("id")?,
        queue: row.try_get("queue")?,
        kind: row.try_get("kind")?,
        args,
        state: state.parse().map_err(StoreError::Corrupt)?,
        priority: i32::from(row.try_get::<i16, _>("priority")?),
        attempt: row.try_get("attempt")?,
        max_attempts: row.try_get("max_attempts")?,
        run_at: row.try_get("run_at")?,
        locked_by: row.try_get("locked_by")?,
        locked_until: row.try_get("locked_until")?,
        unique_key: row.try_get("unique_key")?,
        last_error: row.try_get("last_error")?,
        trace_context: row.try_get("trace_context")?,
        created_at: row.try_get("created_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

fn jobs(rows: Vec<PgRow>) -> Result<Vec<Job>, StoreError> {
    rows.iter().map(job_from_row).collect()
}

pub(crate) async fn insert_jobs(
    conn: &mut PgConnection,
    new: &[NewJob],
    now: OffsetDateTime,
) -> Result<Vec<i64>, sqlx::Error> {
    if new.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_scalar(
        "INSERT INTO jobs (queue, kind, args, state, priority, max_attempts, run_at, \
         unique_key, created_at, trace_context) \
         SELECT queue, kind, args::jsonb, 'available', priority, max_attempts, run_at, \
         unique_key, $8, trace_context \
         FROM unnest($1::text[], $2::text[], $3::text[], $4::smallint[], $5::int[], \
         $6::timestamptz[], $7::text[], $9::text[]) \
         AS j(queue, kind, args, priority, max_attempts, run_at, unique_key, trace_context) \
         ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL DO NOTHING RETURNING id",
    )
    .bind(new.iter().map(|j| j.queue.as_str()).collect::<Vec<_>>())
    .bind(new.iter().map(|j| j.kind.as_str()).collect::<Vec<_>>())
    .bind(new.iter().map(|j| j.args.to_string()).collect::<Vec<_>>())
    .bind(new.iter().map(|j| j.priority as i16).collect::<Vec<_>>())
    .bind(new.iter().map(|j| j.max_attempts).collect::<Vec<_>>())
    .bind(
        new.iter()
            .map(|j| j.run_at.unwrap_or(now))
            .collect::<Vec<_>>(),
    )
    .bind(
        new.iter()
            .map(|j| j.unique_key.as_deref())
            .collect::<Vec<_>>(),
    )
    .bind(now)
    .bind(
        new.iter()
            .map(|j| j.trace_context.as_deref())
            .collect::<Vec<_>>(),
    )
    .fetch_all(&mut *conn)
    .await
}

/// Claims a batch: skips rows other workers hold, never waits for them.
const FETCH: &str = concat!(
    "WITH next AS (SELECT id AS next_id FROM jobs WHERE state = 'available' AND queue = $1 \
     AND run_at <= $2 ORDER BY priority, run_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
     UPDATE jobs SET state = 'running', attempt = attempt + 1, locked_by = $4, \
     locked_until = $5 FROM next WHERE id = next.next_id RETURNING ",
    columns!()
);

pub(crate) async fn fetch(
    pool: &PgPool,
    queue: &str,
    worker: &str,
    limit: i64,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
) -> Result<Vec<Job>, StoreError> {
    let rows = sqlx::query(FETCH)
        .bind(queue)
        .bind(now)
        .bind(limit)
        .bind(worker)
        .bind(lease_until)
        .fetch_all(pool)
        .await?;
    jobs(rows)
}

pub(crate) async fn finish(
    pool: &PgPool,
    worker: &str,
    finished: &[Finished],
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let (done, failed): (Vec<&Finished>, Vec<&Finished>) = finished
        .iter()
        .partition(|f| f.outcome == Outcome::Completed);
    let mut tx = pool.begin().await?;
    if !done.is_empty() {
        sqlx::query(
            "UPDATE jobs AS j SET state = 'completed', finished_at = $3, locked_by = NULL, \
             locked_until = NULL FROM unnest($1::bigint[], $2::int[]) AS f(id, attempt) \
             WHERE j.id = f.id AND j.attempt = f.attempt AND j.state = 'running' \
             AND j.locked_by = $4",
        )
        .bind(done.iter().map(|f| f.id).collect::<Vec<_>>())
        .bind(done.iter().map(|f| f.attempt).collect::<Vec<_>>())
        .bind(now)
        .bind(worker)
        .execute(&mut *tx)
        .await?;
    }
    for f in failed {
        let (state, run_at, finished_at, error) = match &f.outcome {
            Outcome::Retry { at, error } => ("available", *at, None, error),
            Outcome::Discard { error } => ("discarded", now, Some(now), error),
            Outcome::Snooze { at } => {
                sqlx::query(super::SNOOZE)
                    .bind(f.id)
                    .bind(f.attempt)
                    .bind(*at)
                    .bind(worker)
                    .execute(&mut *tx)
                    .await?;
                continue;
            }
            Outcome::Completed => continue,
        };
        sqlx::query(
            "UPDATE jobs SET state = $3, run_at = $4, finished_at = $5, last_error = $6, \
             locked_by = NULL, locked_until = NULL \
             WHERE id = $1 AND attempt = $2 AND state = 'running' AND locked_by = $7",
        )
        .bind(f.id)
        .bind(f.attempt)
        .bind(state)
        .bind(run_at)
        .bind(finished_at)
        .bind(error)
        .bind(worker)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn extend_leases(
    pool: &PgPool,
    worker: &str,
    ids: &[i64],
    until: OffsetDateTime,
) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE jobs SET locked_until = $3 WHERE id = ANY($1) AND locked_by = $2 \
         AND state = 'running'",
    )
    .bind(ids)
    .bind(worker)
    .bind(until)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

pub(crate) async fn release(
    pool: &PgPool,
    worker: &str,
    ids: &[i64],
    now: OffsetDateTime,
) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE jobs SET state = 'available', attempt = attempt - 1, run_at = $3, \
         locked_by = NULL, locked_until = NULL \
         WHERE id = ANY($1) AND locked_by = $2 AND state = 'running'",
    )
    .bind(ids)
    .bind(worker)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

pub(crate) async fn rescue(pool: &PgPool, now: OffsetDateTime) -> Result<u64, StoreError> {
    let done = sqlx::query(super::RESCUE)
        .bind(now)
        .bind(LEASE_EXPIRED)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

pub(crate) async fn next_due(
    pool: &PgPool,
    queue: &str,
) -> Result<Option<OffsetDateTime>, StoreError> {
    Ok(sqlx::query_scalar(super::NEXT_DUE)
        .bind(queue)
        .fetch_one(pool)
        .await?)
}

job_reads!(PgPool);

pub(crate) async fn retry(
    pool: &PgPool,
    id: i64,
    now: OffsetDateTime,
) -> Result<Option<Job>, StoreError> {
    let row = sqlx::query(super::RETRY)
        .bind(id)
        .bind(now)
        .fetch_optional(pool)
        .await?;
    if row.is_some() {
        sqlx::query("SELECT pg_notify('orderly_jobs', '')")
            .execute(pool)
            .await?;
    }
    row.as_ref().map(job_from_row).transpose()
}

pub(crate) async fn cancel(
    pool: &PgPool,
    id: i64,
    now: OffsetDateTime,
) -> Result<Option<Job>, StoreError> {
    let row = sqlx::query(super::CANCEL)
        .bind(id)
        .bind(now)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(job_from_row).transpose()
}

pub(crate) async fn prune(pool: &PgPool, before: OffsetDateTime) -> Result<u64, StoreError> {
    let done = sqlx::query(super::PRUNE).bind(before).execute(pool).await?;
    Ok(done.rows_affected())
}

pub(crate) async fn oldest_due(
    pool: &PgPool,
    now: OffsetDateTime,
) -> Result<Option<OffsetDateTime>, StoreError> {
    Ok(sqlx::query_scalar(super::OLDEST_DUE)
        .bind(now)
        .fetch_one(pool)
        .await?)
}
