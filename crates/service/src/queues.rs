//! Each job queue's figures and its fleet-wide limits' use, and pausing and resuming a queue for every worker, whoever asks:
//! the API, the console and `orderly queues`. Only a queue orderly knows can be paused; who
//! paused it is recorded.

use orderly_queue::{LimitUse, QueueError, QueueStats, known_queues};

use crate::Services;

/// Why a queue was not paused or resumed.
#[derive(Debug, thiserror::Error)]
pub enum QueueControlError {
    #[error("no queue is named {name:?}; the queues are {}", known_queues().join(", "))]
    UnknownQueue { name: String },
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// A queue after a pause or a resume: whether that changed anything, and its figures now.
#[derive(Debug, Clone)]
pub struct QueueControlled {
    /// `false` when it was paused (or running) already.
    pub changed: bool,
    pub stats: QueueStats,
}

impl Services {
    /// Every queue's figures, in the order of [`known_queues`].
    pub async fn queue_figures(&self) -> Result<Vec<QueueStats>, QueueError> {
        let mut figures = Vec::new();
        for name in known_queues() {
            figures.push(self.store.queue().queue_stats(name).await?);
        }
        Ok(figures)
    }

    /// Each configured fleet-wide limit and its use now, across the fleet.
    pub async fn limit_usage(&self) -> Result<Vec<LimitUse>, QueueError> {
        self.store
            .queue()
            .limit_usage(&self.settings.job_limits)
            .await
    }

    /// What the fleet did each minute of the last hour, as the activity sampler recorded it.
    pub async fn activity_last_hour(
        &self,
    ) -> Result<Vec<orderly_queue::activity::Activity>, QueueError> {
        self.store
            .queue()
            .activity_since(orderly_domain::now() - time::Duration::HOUR)
            .await
    }

    /// The queue named `name`, if orderly has one.
    pub fn known_queue(name: &str) -> Result<&'static str, QueueControlError> {
        known_queues()
            .into_iter()
            .find(|queue| *queue == name)
            .ok_or_else(|| QueueControlError::UnknownQueue { name: name.into() })
    }

    /// Stops every worker from starting jobs of queue `name` (jobs running now finish); `by`
    /// names who asked (an API key's id, or `cli`).
    pub async fn pause_queue(
        &self,
        name: &str,
        by: &str,
    ) -> Result<QueueControlled, QueueControlError> {
        let queue = Self::known_queue(name)?;
        let changed = self.store.queue().pause_queue(queue, by).await?;
        if changed {
            tracing::info!(queue, paused_by = by, "queue paused");
        }
        let stats = self.store.queue().queue_stats(queue).await?;
        Ok(QueueControlled { changed, stats })
    }

    /// Lets every worker start jobs of queue `name` again, at once; `by` names who asked.
    pub async fn resume_queue(
        &self,
        name: &str,
        by: &str,
    ) -> Result<QueueControlled, QueueControlError> {
        let queue = Self::known_queue(name)?;
        let changed = self.store.queue().resume_queue(queue).await?;
        if changed {
            tracing::info!(queue, resumed_by = by, "queue resumed");
        }
        let stats = self.store.queue().queue_stats(queue).await?;
        Ok(QueueControlled { changed, stats })
    }
}
