//! One queue's fetch loop: takes as many jobs as there is room for, starts each when a run
//! slot frees, and otherwise waits for a wake-up, the next job's `run_at` or the poll interval.
//! Jobs that a fleet-wide limit holds back are looked for again when one may start (a rate's
//! next start, or a short poll for a slot to free), not in a busy loop.
//! While its queue is paused it fetches nothing, and the jobs it holds that have not started
//! are given back (as a snooze: available at once, the attempt not counted).

use std::sync::{Arc, PoisonError};
use std::time::Duration;

use orderly_db::cause_chain;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::execute::execute;
use super::slots::RunSlots;
use super::{Held, Running, WorkerSettings};
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
    pub(super) running: Arc<RunSlots>,
    /// Whether fleet-wide limits bear on the queue: it then fetches ahead only what it will
    /// start soon, since a job held holds the fleet's slot.
    pub(super) limited: bool,
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

            // Take only what can start soon (see `slots.rs`), or wait for a slot to free.
            if let Some(cap) = self.running.fetch_cap(self.limited) {
                permits.truncate(cap);
                if cap == 0 {
                    let freed = self.running.freed();
                    tokio::pin!(freed);
                    freed.as_mut().enable();
                    drop(permits);
                    if self.running.fetch_cap(self.limited) == Some(0) {
                        tokio::select! {
                            () = freed => {},
                            () = tokio::time::sleep(self.settings.poll_interval) => {},
                            () = shutdown.cancelled() => return,
                        }
                    }
                    continue;
                }
            }
            let claim = self.claim(permits.len()).await;
            let got = claim.jobs.len();
            for job in claim.jobs {
                self.start(job, permits.pop(), &shutdown);
            }
            drop(permits);
            // Jobs a limit held back: look again when one may start, unless woken first.
            let wait = match claim.held_until {
                Some(at) => Duration::try_from(at - orderly_domain::now())
                    .unwrap_or_default()
                    .min(self.settings.poll_interval),
                None if got > 0 => continue,
                None => self.idle_wait().await,
            };
            tokio::select! {
                () = &mut local => {},
                () = &mut remote => {},
                () = tokio::time::sleep(wait) => {},
                () = shutdown.cancelled() => return,
            }
        }
    }

    /// Claims up to `wanted` jobs; none when the database fails (logged, looked at again).
    async fn claim(&self, wanted: usize) -> crate::Claim {
        let lease_until = orderly_domain::now() + self.settings.lease;
        let claimed = self
            .queue
            .claim_jobs(
                &self.name,
                &self.settings.id,
                wanted as i64,
                lease_until,
                &self.settings.limits,
            )
            .await;
        claimed.unwrap_or_else(|e| {
            tracing::warn!(queue = %self.name, error = %cause_chain(&e), "fetching jobs failed");
            crate::Claim::default()
        })
    }

    /// Hands `job` (fetched, holding `permit` of the local queue) to a task of its own, which
    /// runs it once a running slot is free: unless shutdown begins first (it does not start,
    /// and is released), or its queue is paused, or limited and stalled (it goes back to the
    /// queue).
    fn start(&self, job: Job, permit: Option<OwnedSemaphorePermit>, shutdown: &CancellationToken) {
        let cancel = self.hard_stop.child_token();
        self.held_jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                job.id,
                Held {
                    cancel: cancel.clone(),
                },
            );
        let running = self.running.clone();
        let (registry, settings) = (self.registry.clone(), self.settings.clone());
        let (finished, hard_stop) = (self.finished.clone(), self.hard_stop.clone());
        let stopping = shutdown.clone();
        let paused = self.paused.clone();
        let limited = self.limited;
        self.jobs.spawn(async move {
            let _held = permit;
            let give_back = Finished {
                id: job.id,
                attempt: job.attempt,
                outcome: Outcome::Snooze {
                    at: orderly_domain::now(),
                },
            };
            let slot = tokio::select! {
                biased;
                () = stopping.cancelled() => return,
                () = until_paused(paused) => {
                    let _ = finished.send(give_back).await;
                    return;
                }
                slot = running.take() => slot,
                () = running.until_stalled(), if limited => {
                    let _ = finished.send(give_back).await;
                    return;
                }
            };
            execute(job, registry, settings, finished, hard_stop, cancel).await;
            running.free(slot);
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
