//! Pausing a queue for every worker, and each queue's figures for operators. A paused queue
//! is a row in `queue_pauses`: the fetch statement gives nothing from it (whichever worker
//! asks), each worker looks every [`PAUSE_POLL`] and gives back the jobs it had fetched
//! ahead but not started, and jobs already running finish. Resuming deletes the row and
//! wakes the workers.

use orderly_db::{QUEUE_PAUSES, Timestamp, with_pool};
use time::OffsetDateTime;

use crate::{Queue, QueueError, kinds};

/// How often a worker looks for paused queues: a pause reaches every worker within it.
pub const PAUSE_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// Who paused a queue, and when (its `name` is the queue's).
pub type QueuePause = orderly_db::Pause;

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

impl Queue {
    /// Pauses `queue` for every worker; `false` when it was paused already (the first pause
    /// is kept).
    pub async fn pause_queue(&self, queue: &str, by: &str) -> Result<bool, QueueError> {
        Ok(QUEUE_PAUSES
            .pause(self.db(), queue, by, orderly_domain::now())
            .await?)
    }

    /// Resumes `queue` and wakes every worker; `false` when it was not paused.
    pub async fn resume_queue(&self, queue: &str) -> Result<bool, QueueError> {
        let resumed = QUEUE_PAUSES.resume(self.db(), queue).await?;
        if resumed {
            self.wake_every_worker().await?;
        }
        Ok(resumed)
    }

    /// Every paused queue.
    pub async fn paused_queues(&self) -> Result<Vec<QueuePause>, QueueError> {
        Ok(QUEUE_PAUSES.list(self.db()).await?)
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
                name: queue.to_owned(),
                paused_at: at.get(),
                paused_by: by,
            }),
        })
    }
}
