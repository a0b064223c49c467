//! The bookkeeping of a worker's own tasks: [`Named`] tracks them by name so that one ending
//! early is reported as what it is, and [`Liveness`] says whether the heartbeat still runs.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::task::JoinSet;

use super::WorkerError;

/// Whether a worker is alive: its heartbeat ran within the last lease. A worker-only process
/// answers `/healthz` with it.
#[derive(Debug, Clone)]
pub struct Liveness {
    last_beat_ms: Arc<AtomicI64>,
    within: Duration,
}

impl Liveness {
    pub(super) fn new(within: Duration) -> Self {
        let liveness = Self {
            last_beat_ms: Arc::default(),
            within,
        };
        liveness.beat();
        liveness
    }

    pub(super) fn beat(&self) {
        self.last_beat_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// How long ago the heartbeat last ran.
    pub fn since_last_beat(&self) -> Duration {
        let ago = now_ms() - self.last_beat_ms.load(Ordering::Relaxed);
        Duration::from_millis(u64::try_from(ago).unwrap_or(0))
    }

    pub fn is_alive(&self) -> bool {
        self.since_last_beat() <= self.within
    }
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Tasks of one worker, each known by its name.
#[derive(Default)]
pub(super) struct Named {
    tasks: JoinSet<()>,
    names: HashMap<tokio::task::Id, String>,
}

impl Named {
    pub(super) fn spawn(&mut self, name: String, task: impl Future<Output = ()> + Send + 'static) {
        let handle = self.tasks.spawn(task);
        self.names.insert(handle.id(), name);
    }

    pub(super) fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Waits for the next task to end, and says which and how: `Ok(None)` when none is left.
    pub(super) async fn next(&mut self) -> Result<Option<String>, WorkerError> {
        match self.tasks.join_next_with_id().await {
            None => Ok(None),
            Some(Ok((id, ()))) => Ok(Some(self.names.remove(&id).unwrap_or_default())),
            Some(Err(e)) => Err(WorkerError::TaskPanicked {
                task: self.names.remove(&e.id()).unwrap_or_default(),
                source: e,
            }),
        }
    }

    /// Waits for every task, at most `deadline`; aborts those still running then.
    pub(super) async fn finish(&mut self, deadline: Duration) -> Result<(), WorkerError> {
        let mut failure = None;
        let all = async {
            loop {
                match self.next().await {
                    Ok(None) => break,
                    Ok(Some(_)) => {}
                    Err(e) => failure = Some(e),
                }
            }
        };
        if tokio::time::timeout(deadline, all).await.is_err() {
            let mut late: Vec<&String> = self.names.values().collect();
            late.sort();
            tracing::warn!(tasks = ?late, "worker tasks still running at the deadline; stopped");
            self.tasks.abort_all();
        }
        failure.map_or(Ok(()), Err)
    }
}
