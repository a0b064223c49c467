//! Hearing that an operator cancelled a job this worker holds: the cancellation token of each
//! such job is cancelled, which its handler sees (`handler.rs`). The worker looks at the jobs
//! it holds when told (a PostgreSQL `NOTIFY` from any process, or an operator of this
//! process), and every [`CANCEL_POLL`] while it holds any, since `LISTEN` is not always there
//! (a pooler in transaction mode, a lost connection) and SQLite has none.

use std::sync::{Arc, PoisonError};
use std::time::Duration;

use orderly_db::cause_chain;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::Running;
use crate::Queue;

/// How often a worker holding jobs looks whether an operator cancelled one: a handler hears
/// of a cancellation within this (and at once where notifications arrive).
pub const CANCEL_POLL: Duration = Duration::from_millis(500);

/// Cancels the tokens of held jobs an operator cancelled, until `stop`. `heard` is woken by
/// the worker's notification listener.
pub(super) async fn watch_cancels(
    queue: Queue,
    running: Running,
    heard: Arc<Notify>,
    stop: CancellationToken,
) {
    let local = queue.cancels_signal();
    let mut failing = false;
    loop {
        // Registered before looking, so a request between the look and the wait is not lost.
        let told = local.notified();
        let remote = heard.notified();
        tokio::pin!(told, remote);
        told.as_mut().enable();
        remote.as_mut().enable();
        let held: Vec<i64> = running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(_, held)| !held.cancel.is_cancelled())
            .map(|(id, _)| *id)
            .collect();
        if !held.is_empty() {
            match queue.cancel_requests(&held).await {
                Ok(cancelled) => {
                    failing = false;
                    let running = running.lock().unwrap_or_else(PoisonError::into_inner);
                    for id in cancelled {
                        if let Some(held) = running.get(&id) {
                            tracing::info!(
                                job_id = id,
                                "an operator cancelled the job; stopping it"
                            );
                            held.cancel.cancel();
                        }
                    }
                }
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %cause_chain(&e), "looking for cancelled jobs failed");
                }
                Err(_) => {}
            }
        }
        tokio::select! {
            () = &mut told => {},
            () = &mut remote => {},
            () = tokio::time::sleep(CANCEL_POLL) => {},
            () = stop.cancelled() => return,
        }
    }
}
