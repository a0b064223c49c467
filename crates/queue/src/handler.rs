//! What a job handler is, and the [`Registry`] that maps job kinds to handlers.

use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::{Job, JobKind};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a run failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JobError {
    /// Worth trying again later (a timeout, a 4xx SMTP reply, a database hiccup).
    #[error("{0}")]
    Transient(String),
    /// Will fail the same way every time (a 5xx SMTP reply, bad arguments): discard now.
    #[error("{0}")]
    Permanent(String),
    /// Try again after `after` (a receiver's `Retry-After`, a handler's own schedule), while
    /// attempts remain.
    #[error("{error}")]
    RetryAfter { error: String, after: Duration },
    /// Could not start yet (a busy endpoint): run again after this long, the attempt not
    /// counted.
    #[error("put off")]
    Snooze(Duration),
    /// Stopped, as its cancellation token asked, before the run's side effect happened (a
    /// webhook request aborted, a receipt not handed to SMTP): what was given up.
    #[error("cancelled: {0}")]
    Cancelled(String),
}

impl JobError {
    /// A failure worth retrying, while doing `what`: the message carries the whole cause
    /// chain of `error`, so the job's `last_error` says why (not just "query failed").
    pub fn transient(what: &str, error: &(dyn std::error::Error + 'static)) -> Self {
        Self::Transient(format!("{what}: {}", orderly_db::cause_chain(error)))
    }

    /// A failure that will not go away, while doing `what`, with the cause chain of `error`.
    pub fn permanent(what: &str, error: &(dyn std::error::Error + 'static)) -> Self {
        Self::Permanent(format!("{what}: {}", orderly_db::cause_chain(error)))
    }
}

/// Runs jobs of kind `K`, given their parsed arguments. Handlers must be idempotent where the
/// outside world allows, since a job may run more than once (a worker can die after the work
/// but before reporting it).
///
/// `cancel` is cancelled when an operator cancels the running job, and when the worker's
/// shutdown grace is over: a handler that can stop before its side effect does, and returns
/// [`JobError::Cancelled`]; once the effect has happened it finishes (the job then ends
/// `completed`). A handler that ignores it runs on until it ends or times out.
pub trait Handler<K: JobKind>: Send + Sync + 'static {
    fn run<'a>(
        &'a self,
        args: K::Args,
        job: &'a Job,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<(), JobError>>;
}

/// A handler whose kind is known only at run time: parses the arguments, then runs.
trait AnyHandler: Send + Sync {
    fn run<'a>(
        &'a self,
        job: &'a Job,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<(), JobError>>;
}

struct Typed<K, H> {
    handler: H,
    kind: PhantomData<fn() -> K>,
}

impl<K: JobKind, H: Handler<K>> AnyHandler for Typed<K, H> {
    fn run<'a>(
        &'a self,
        job: &'a Job,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<(), JobError>> {
        // Read from the stored value in place: no copy of the JSON per run.
        match <K::Args as serde::Deserialize>::deserialize(&job.args) {
            Ok(args) => self.handler.run(args, job, cancel),
            Err(e) => Box::pin(std::future::ready(Err(JobError::Permanent(format!(
                "the arguments are not those of a {} job: {e}",
                K::NAME
            ))))),
        }
    }
}

/// The handlers a worker knows, by job kind.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<&'static str, Arc<dyn AnyHandler>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut kinds: Vec<_> = self.handlers.keys().collect();
        kinds.sort();
        f.debug_struct("Registry").field("kinds", &kinds).finish()
    }
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs jobs of kind `K` with `handler`.
    pub fn register<K: JobKind>(mut self, handler: impl Handler<K>) -> Self {
        let typed = Typed::<K, _> {
            handler,
            kind: PhantomData,
        };
        self.handlers.insert(K::NAME, Arc::new(typed));
        self
    }

    /// Runs `job` with the handler of its kind; a kind nobody handles fails for good.
    pub(crate) fn run<'a>(
        &'a self,
        job: &'a Job,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<(), JobError>> {
        match self.handlers.get(job.kind.as_str()) {
            Some(handler) => handler.run(job, cancel),
            None => Box::pin(std::future::ready(Err(JobError::Permanent(format!(
                "no handler for job kind {:?}",
                job.kind
            ))))),
        }
    }
}
