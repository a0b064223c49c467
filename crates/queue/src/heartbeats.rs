//! Which worker processes are alive: each worker writes its heartbeat as it extends its jobs'
//! leases (every third of a lease) and deletes it when it stops; a heartbeat past its
//! `expires_at` is a worker that died. Operators read them (the console's overview).

use orderly_db::{Timestamp, with_pool};
use time::OffsetDateTime;

use crate::{Queue, QueueError};

/// How long the heartbeat of a worker that died is kept, to be seen, before any worker's next
/// beat deletes it.
const KEPT_AFTER_DEATH: time::Duration = time::Duration::HOUR;

/// One worker process's last heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerBeat {
    pub worker: String,
    /// The queues it works, as `name:concurrency` separated by commas.
    pub queues: String,
    pub started_at: OffsetDateTime,
    pub beat_at: OffsetDateTime,
    /// Past this, it is presumed dead (its jobs' leases have run out).
    pub expires_at: OffsetDateTime,
}

impl WorkerBeat {
    pub fn is_alive(&self, now: OffsetDateTime) -> bool {
        self.expires_at > now
    }
}

impl Queue {
    /// Records that `beat.worker` is alive, and forgets workers dead for an hour.
    pub async fn beat(&self, beat: &WorkerBeat) -> Result<(), QueueError> {
        let now = orderly_domain::now();
        with_pool!(self.db(), pool => {
            sqlx::query(
                "INSERT INTO worker_heartbeats (worker, queues, started_at, beat_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (worker) DO UPDATE \
                 SET beat_at = excluded.beat_at, expires_at = excluded.expires_at")
                .bind(&beat.worker)
                .bind(&beat.queues)
                .bind(Timestamp::new(beat.started_at))
                .bind(Timestamp::new(beat.beat_at))
                .bind(Timestamp::new(beat.expires_at))
                .execute(pool)
                .await?;
            sqlx::query("DELETE FROM worker_heartbeats WHERE expires_at < $1")
                .bind(Timestamp::new(now - KEPT_AFTER_DEATH))
                .execute(pool)
                .await
                .map(|_| ())
        })?;
        Ok(())
    }

    /// Deletes `worker`'s heartbeat: it stopped cleanly.
    pub async fn forget_worker(&self, worker: &str) -> Result<(), QueueError> {
        with_pool!(self.db(), pool => sqlx::query("DELETE FROM worker_heartbeats WHERE worker = $1")
            .bind(worker)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Every heartbeat kept, the latest first.
    pub async fn worker_beats(&self) -> Result<Vec<WorkerBeat>, QueueError> {
        type Row = (String, String, Timestamp, Timestamp, Timestamp);
        let rows: Vec<Row> = with_pool!(self.db(), pool => sqlx::query_as(
                "SELECT worker, queues, started_at, beat_at, expires_at FROM worker_heartbeats \
                 ORDER BY beat_at DESC LIMIT 200")
            .fetch_all(pool)
            .await)?;
        Ok(rows
            .into_iter()
            .map(
                |(worker, queues, started_at, beat_at, expires_at)| WorkerBeat {
                    worker,
                    queues,
                    started_at: started_at.get(),
                    beat_at: beat_at.get(),
                    expires_at: expires_at.get(),
                },
            )
            .collect())
    }
}
