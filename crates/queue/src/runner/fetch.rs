//! One queue's fetch loop: takes as many jobs as there is room for, starts each when a run
//! slot frees, and otherwise waits for a wake-up, the next job's `run_at` or the poll interval.
//! While its queue is paused it fetches nothing, and the jobs it holds that have not started
//! are given back (as a snooze: available at once, the attempt not counted).

use std::sync::{Arc, PoisonError};
use std::time::Duration;

use orderly_db::cause_chain;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::execute::execute;
use super::{Running, WorkerSettings};
use crate::handler::Registry;
use crate::{Finished, Job, Outcome, Queue};

/// One queue's fetch loop.
pub(super) struct Fetcher {
    pub(super) queue: Queue,
    pub(super) registry: Registry,
    pub(super) settings: Arc<WorkerSettings>,
    pub(super) held_jobs: Running,
    pub(super) remote_wake: Arc<Notify>,
    pub(super) finished: mpsc::Sender<Finished>,
    pub(super) jobs: TaskTracker,
    pub(super) hard_stop: CancellationToken,
    /// The queue this loop works.
    pub(super) name: String,
    /// Jobs held (fetched and not yet finished), at most `local_queue`.
    pub(super) held: Arc<Semaphore>,
    /// Jobs running, at most the queue's concurrency.
    pub(super) running: Arc<Semaphore>,
    /// Free room in the local queue that triggers the next fetch.
    pub(super) refetch_at: u32,
    /// Whether the queue is paused (kept by the runner's pause watch).
    pub(super) paused: watch::Receiver<bool>,
}

/// Resolves once `paused` says the queue is paused; never if its watch ends.
async fn until_paused(mut paused: watch::Receiver<bool>) {
    if paused.wait_for(|paused| *paused).await.is_err() {
        std::future::pending::<()>().await;
    }
}

impl Fetcher {
    pub(super) async fn run(mut self, shutdown: CancellationToken) {
        let local_wake = self.queue.jobs_signal();
        loop {
            if *self.paused.borrow_and_update() {
                tokio::select! {
                    changed = self.paused.changed() => if changed.is_err() { return },
                    () = shutdown.cancelled() => return,
                }
                continue;
            }
            // On a busy queue, wait until half of the local queue is free and fetch that
            // much at once, rather than one job per finished job. (Only this loop takes
            // `held` permits, so the room waited for is still there below.)
            let room = tokio::select! {
                permit = self.held.clone().acquire_many_owned(self.refetch_at) => match permit {
                    Ok(permit) => permit,
                    Err(_) => return,
                },
                () = shutdown.cancelled() => return,
            };
            drop(room);
            let mut permits = Vec::new();
            while let Ok(permit) = self.held.clone().try_acquire_owned() {
                permits.push(permit);
            }
            // Listen before looking, so a wake-up between the fetch and the wait is not lost.
            let local = local_wake.notified();
            let remote = self.remote_wake.notified();
            tokio::pin!(local, remote);
            local.as_mut().enable();
            remote.as_mut().enable();

            let wanted = permits.len();
            let lease_until = orderly_domain::now() + self.settings.lease;
            let fetched = match self
                .queue
                .fetch_jobs(&self.name, &self.settings.id, wanted as i64, lease_until)
                .await
            {
                Ok(jobs) => jobs,
                Err(e) => {
                    tracing::warn!(queue = %self.name, error = %cause_chain(&e), "fetching jobs failed");
                    Vec::new()
                }
            };
            let got = fetched.len();
            for job in fetched {
                self.start(job, permits.pop(), &shutdown);
            }
            drop(permits);
            if got > 0 {
                continue;
            }
            let wait = self.idle_wait().await;
            tokio::select! {
                () = &mut local => {},
                () = &mut remote => {},
                () = tokio::time::sleep(wait) => {},
                () = shutdown.cancelled() => return,
            }
        }
    }

    /// Hands `job` (fetched, holding `permit` of the local queue) to a task of its own, which
    /// runs it once a running slot is free: unless shutdown begins first (it does not start,
    /// and is released) or its queue is paused (it goes back to the queue).
    fn start(&self, job: Job, permit: Option<OwnedSemaphorePermit>, shutdown: &CancellationToken) {
        self.held_jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(job.id, job.attempt);
        let running = self.running.clone();
        let (registry, settings) = (self.registry.clone(), self.settings.clone());
        let (finished, hard_stop) = (self.finished.clone(), self.hard_stop.clone());
        let stopping = shutdown.clone();
        let paused = self.paused.clone();
        self.jobs.spawn(async move {
            let _held = permit;
            let _running = tokio::select! {
                biased;
                () = stopping.cancelled() => return,
                () = until_paused(paused) => {
                    let back = Finished {
                        id: job.id,
                        attempt: job.attempt,
                        outcome: Outcome::Snooze { at: orderly_domain::now() },
                    };
                    let _ = finished.send(back).await;
                    return;
                }
                permit = running.acquire_owned() => permit.ok(),
            };
            execute(job, registry, settings, finished, hard_stop).await;
        });
    }

    /// How long to wait, with nothing fetched, before looking again (unless woken first).
    async fn idle_wait(&self) -> Duration {
        match self.queue.next_job_due(&self.name).await {
            // Due already, yet not fetched: the queue was paused a moment ago (its flag
            // follows within a poll of the pause watch), or another worker is taking it.
            Ok(Some(due)) if due <= orderly_domain::now() => {
                crate::PAUSE_POLL.min(self.settings.poll_interval)
            }
            Ok(Some(due)) => {
                let until = due - orderly_domain::now();
                Duration::try_from(until)
                    .unwrap_or_default()
                    .min(self.settings.poll_interval)
            }
            _ => self.settings.poll_interval,
        }
    }
}
