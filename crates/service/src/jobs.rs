//! An operator looking at jobs, sending one round again or cancelling it, or sending every
//! discarded job a filter matches round again, whoever asks: the API, the console and
//! `orderly jobs`. Only a discarded or cancelled job can be retried, only an unfinished one
//! cancelled; each change is logged with the job it touched.

use orderly_queue::{DiscardedFilter, Job, JobChange, JobFilter, QueueError};

use crate::Services;

/// What an operator does to one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobAction {
    /// A discarded or cancelled job, round again with a fresh set of attempts.
    Retry,
    /// A job that has not finished: it does not run again.
    Cancel,
}

impl JobAction {
    pub fn as_str(self) -> &'static str {
        match self {
            JobAction::Retry => "retry",
            JobAction::Cancel => "cancel",
        }
    }
}

/// Why an operator's action on a job did not happen.
#[derive(Debug, thiserror::Error)]
pub enum JobActionError {
    #[error("no job has id {0}")]
    NotFound(i64),
    #[error("cannot {} job {}: it is {}", .action.as_str(), .job.id, .job.state)]
    NotAllowed { action: JobAction, job: Box<Job> },
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl Services {
    /// A page of jobs matching `filter`, newest first.
    pub async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<Job>, QueueError> {
        self.store.queue().list_jobs(filter).await
    }

    /// Job `id`, if there is one.
    pub async fn job(&self, id: i64) -> Result<Option<Job>, QueueError> {
        self.store.queue().job(id).await
    }

    /// Sends the discarded jobs `filter` matches round again (at most
    /// [`orderly_queue::RETRY_ALL_LIMIT`] at once); how many.
    pub async fn retry_discarded(&self, filter: &DiscardedFilter) -> Result<u64, QueueError> {
        let retried = self.store.queue().retry_discarded(filter).await?;
        tracing::info!(retried, kind = ?filter.kind, queue = ?filter.queue, "discarded jobs retried by an operator");
        Ok(retried)
    }

    /// Applies `action` to job `id`; the job as it is afterwards.
    pub async fn act_on_job(&self, id: i64, action: JobAction) -> Result<Job, JobActionError> {
        let queue = self.store.queue();
        let change = match action {
            JobAction::Retry => queue.retry_job(id).await?,
            JobAction::Cancel => queue.cancel_job(id).await?,
        };
        match change {
            JobChange::Done(job) => {
                tracing::info!(job_id = job.id, kind = %job.kind, "job {} by an operator", action.as_str());
                Ok(job)
            }
            JobChange::NotFound => Err(JobActionError::NotFound(id)),
            JobChange::NotAllowed(job) => Err(JobActionError::NotAllowed {
                action,
                job: Box::new(job),
            }),
        }
    }
}
