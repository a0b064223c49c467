//! An operator sending a job round again or cancelling it, whoever asks: the API, the console
//! and `orderly jobs`. Only a discarded or cancelled job can be retried, only an unfinished one
//! cancelled; each change is logged with the job it touched.

use orderly_queue::{Job, JobChange, QueueError};

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
