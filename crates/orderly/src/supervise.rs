//! Supervision of a process's long-running tasks (HTTP, the worker, the scheduler, the order
//! writer's loops, the worker's health server). Each runs under its name; one that ends or
//! panics before shutdown was asked for is logged by that name and stops the whole process,
//! which then exits non-zero so that its supervisor (systemd, Kubernetes) starts it again. A
//! process that limps on without its worker or its order writer would look healthy and do
//! nothing.
//!
//! Shutdown has a deadline: tasks still running when it passes are aborted, named in the log,
//! and the exit is non-zero.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use tokio::task::{Id, JoinSet};
use tokio_util::sync::CancellationToken;

/// What a supervised task returns.
pub type TaskResult = anyhow::Result<()>;

/// The tasks of one process.
#[derive(Debug, Default)]
pub struct Supervisor {
    tasks: JoinSet<TaskResult>,
    names: HashMap<Id, String>,
}

/// The tasks that failed, by name, and how.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("; "))]
pub struct TasksFailed(pub Vec<String>);

impl Supervisor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `task` as `name`.
    pub fn spawn(&mut self, name: &str, task: impl Future<Output = TaskResult> + Send + 'static) {
        let handle = self.tasks.spawn(fault::inject(name.to_owned(), task));
        self.names.insert(handle.id(), name.to_owned());
    }

    /// Waits until `shutdown` is cancelled or a task ends (which cancels it), then waits at
    /// most `deadline` for the rest. Every task that failed, panicked, ended early or outlived
    /// the deadline is logged and named in the error.
    pub async fn run(
        mut self,
        shutdown: CancellationToken,
        deadline: Duration,
    ) -> Result<(), TasksFailed> {
        let mut failed = Vec::new();
        tokio::select! {
            biased;
            () = shutdown.cancelled() => {}
            Some(ended) = self.tasks.join_next_with_id() => {
                let stopping = shutdown.is_cancelled();
                let (name, verdict) = self.verdict(ended);
                // A task that ends once shutdown has begun is stopping, as asked.
                if let Some(why) = verdict.or_else(|| (!stopping).then(|| "ended unexpectedly".to_owned())) {
                    tracing::error!(task = %name, reason = %why, "a task stopped; shutting the process down");
                    failed.push(format!("{name} {why}"));
                }
                shutdown.cancel();
            }
        }
        let rest = async {
            while let Some(ended) = self.tasks.join_next_with_id().await {
                let (name, verdict) = self.verdict(ended);
                if let Some(why) = verdict {
                    tracing::error!(task = %name, reason = %why, "a task failed while stopping");
                    failed.push(format!("{name} {why}"));
                }
            }
        };
        if tokio::time::timeout(deadline, rest).await.is_err() {
            let mut late: Vec<String> = self.names.values().cloned().collect();
            late.sort();
            tracing::error!(tasks = ?late, deadline_secs = deadline.as_secs(), "tasks still running at the shutdown deadline; stopping them");
            self.tasks.abort_all();
            failed.extend(
                late.into_iter()
                    .map(|name| format!("{name} outlived the shutdown deadline")),
            );
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(TasksFailed(failed))
        }
    }

    /// The name of the task that ended, and why it failed (`None`: it returned `Ok`).
    fn verdict(
        &mut self,
        ended: Result<(Id, TaskResult), tokio::task::JoinError>,
    ) -> (String, Option<String>) {
        match ended {
            Ok((id, result)) => (
                self.names.remove(&id).unwrap_or_default(),
                result.err().map(|e| format!("failed: {e:#}")),
            ),
            Err(e) => {
                let name = self.names.remove(&e.id()).unwrap_or_default();
                let why = if e.is_panic() {
                    "panicked"
                } else {
                    "was cancelled"
                };
                (name, Some(why.to_owned()))
            }
        }
    }
}

/// Fault injection for drills and tests, in debug builds only: `ORDERLY_FAIL_TASK=<name>`
/// makes the task of that name panic shortly after it starts, `<name>:hang` makes it stop
/// making progress (it never finishes, as a deadlocked task would not).
mod fault {
    use std::future::Future;

    use super::TaskResult;

    #[cfg(debug_assertions)]
    pub(super) async fn inject(
        name: String,
        task: impl Future<Output = TaskResult> + Send,
    ) -> TaskResult {
        let wanted = std::env::var("ORDERLY_FAIL_TASK").unwrap_or_default();
        if wanted == name {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            panic!("fault injected by ORDERLY_FAIL_TASK={wanted}");
        }
        if wanted.strip_suffix(":hang") == Some(name.as_str()) {
            return std::future::pending().await;
        }
        task.await
    }

    #[cfg(not(debug_assertions))]
    pub(super) async fn inject(
        _name: String,
        task: impl Future<Output = TaskResult> + Send,
    ) -> TaskResult {
        task.await
    }
}
