//! The operators' reads and changes that span many jobs: the jobs that belong to something
//! (an order's receipt and deliveries, by their unique keys), and sending every discarded job
//! that matches a filter round again.

use orderly_db::{Timestamp, with_pool};

use crate::sql::{self, JobRow};
use crate::{Job, Queue, QueueError};

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
