//! What a job handler is, and the registry that maps job kinds to handlers.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use orderly_storage::Job;

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
    RetryAfter {
        error: String,
        after: std::time::Duration,
    },
    /// Could not start yet (a busy endpoint): run again after this long, the attempt not
    /// counted.
    #[error("put off")]
    Snooze(std::time::Duration),
}

/// Runs jobs of one kind. Handlers must be idempotent where the outside world allows, since
/// a job may run more than once (a worker can die after the work but before reporting it).
pub trait JobHandler: Send + Sync + 'static {
    fn run<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), JobError>>;
}

/// The handlers a worker knows, by job kind.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<String, Arc<dyn JobHandler>>,
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

    pub fn register(mut self, kind: &str, handler: impl JobHandler) -> Self {
        self.handlers.insert(kind.to_owned(), Arc::new(handler));
        self
    }

    pub fn get(&self, kind: &str) -> Option<Arc<dyn JobHandler>> {
        self.handlers.get(kind).cloned()
    }
}
