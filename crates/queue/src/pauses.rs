//! Pausing a queue for every worker, and each queue's figures for operators. A paused queue
//! is a row in `queue_pauses`: the fetch statement gives nothing from it (whichever worker
//! asks), each worker looks every [`PAUSE_POLL`] and gives back the jobs it had fetched
//! ahead but not started, and jobs already running finish. Resuming deletes the row and
//! wakes the workers.

use orderly_db::{Timestamp, with_pool};
use time::OffsetDateTime;

use crate::{Queue, QueueError, kinds};

/// How often a worker looks for paused queues: a pause reaches every worker within it.
pub const PAUSE_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// Who paused a queue, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuePause {
    pub queue: String,
    pub paused_at: OffsetDateTime,
    /// The API key id, or `cli`.
    pub paused_by: String,
}

/// A queue's jobs as they stand.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueStats {
    pub name: String,
    /// Due now and waiting for a worker.
    pub available: i64,
    /// Waiting for their `run_at` (a retry's backoff, a job enqueued for later).
    pub scheduled: i64,
    pub running: i64,
    pub discarded: i64,
    /// When the oldest due job became due.
    pub oldest_due_at: Option<OffsetDateTime>,
    /// Jobs completed in the last minute (0 when completed jobs are deleted as they complete).
    pub completed_last_minute: i64,
    pub paused: Option<QueuePause>,
}

/// The queues the service's jobs run on, in a stable order.
pub fn known_queues() -> Vec<&'static str> {
    let mut queues: Vec<&'static str> = kinds::ALL.iter().map(|kind| kind.queue).collect();
    queues.sort_unstable();
    queues.dedup();
    queues
}

type PauseRow = (String, Timestamp, String);

fn pause((queue, paused_at, paused_by): PauseRow) -> QueuePause {
    QueuePause {
        queue,
        paused_at: paused_at.get(),
        paused_by,
    }
}

impl Queue {
    /// Pauses `queue` for every worker; `false` when it was paused already (the first pause
    /// is kept).
    pub async fn pause_queue(&self, queue: &str, by: &str) -> Result<bool, QueueError> {
        let now = Timestamp::new(orderly_domain::now());
        let inserted = with_pool!(self.db(), pool => sqlx::query(
                "INSERT INTO queue_pauses (queue, paused_at, paused_by) VALUES ($1, $2, $3) \
                 ON CONFLICT (queue) DO NOTHING")
            .bind(queue)
            .bind(now)
            .bind(by)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(inserted > 0)
    }

    /// Resumes `queue` and wakes every worker; `false` when it was not paused.
    pub async fn resume_queue(&self, queue: &str) -> Result<bool, QueueError> {
        let deleted = with_pool!(self.db(), pool => sqlx::query(
                "DELETE FROM queue_pauses WHERE queue = $1")
            .bind(queue)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        if deleted > 0 {
            self.wake_every_worker().await?;
        }
        Ok(deleted > 0)
    }

    /// Every paused queue.
    pub async fn paused_queues(&self) -> Result<Vec<QueuePause>, QueueError> {
        let rows: Vec<PauseRow> = with_pool!(self.db(), pool => sqlx::query_as(
                "SELECT queue, paused_at, paused_by FROM queue_pauses ORDER BY queue")
            .fetch_all(pool)
            .await)?;
        Ok(rows.into_iter().map(pause).collect())
    }

    /// The figures of `queue`, each counted on an index: the due and scheduled jobs on the
    /// fetch index, running and discarded ones on their partial indexes, the last minute's
    /// completions on the `finished_at` index.
    pub async fn queue_stats(&self, queue: &str) -> Result<QueueStats, QueueError> {
        let now = orderly_domain::now();
        type Row = (
            i64,
            i64,
            i64,
            i64,
            Option<Timestamp>,
            i64,
            Option<Timestamp>,
            Option<String>,
        );
        let row: Row = with_pool!(self.db(), pool => sqlx::query_as(
                "SELECT \
                 (SELECT COUNT(*) FROM jobs WHERE state = 'available' AND queue = $1 \
                  AND run_at <= $2), \
                 (SELECT COUNT(*) FROM jobs WHERE state = 'available' AND queue = $1 \
                  AND run_at > $2), \
                 (SELECT COUNT(*) FROM jobs WHERE state = 'running' AND queue = $1), \
                 (SELECT COUNT(*) FROM jobs WHERE state = 'discarded' AND queue = $1), \
                 (SELECT MIN(run_at) FROM jobs WHERE state = 'available' AND queue = $1 \
                  AND run_at <= $2), \
                 (SELECT COUNT(*) FROM jobs WHERE finished_at >= $3 AND state = 'completed' \
                  AND queue = $1), \
                 (SELECT paused_at FROM queue_pauses WHERE queue = $1), \
                 (SELECT paused_by FROM queue_pauses WHERE queue = $1)")
            .bind(queue)
            .bind(Timestamp::new(now))
            .bind(Timestamp::new(now - time::Duration::MINUTE))
            .fetch_one(pool)
            .await)?;
        let (available, scheduled, running, discarded, oldest, completed, paused_at, paused_by) =
            row;
        Ok(QueueStats {
            name: queue.to_owned(),
            available,
            scheduled,
            running,
            discarded,
            oldest_due_at: oldest.map(Timestamp::get),
            completed_last_minute: completed,
            paused: paused_at.zip(paused_by).map(|(at, by)| QueuePause {
                queue: queue.to_owned(),
                paused_at: at.get(),
                paused_by: by,
            }),
        })
    }
}
