//! The worker: per-queue fetch loops bounded by a semaphore, a heartbeat that extends the
//! leases of running jobs, a rescuer for jobs whose worker died, a completer that records
//! outcomes in batches, and a pruner for old finished jobs.
//!
//! A paused queue (see `pauses.rs`) is not fetched from; the jobs a worker fetched ahead of it
//! and has not started go back to the queue, the running ones finish.
//!
//! Wake-ups, not busy polling: a fetch that finds nothing waits for a commit in this process
//! ([`Queue::jobs_signal`]), a PostgreSQL `NOTIFY` from any process, the next job's `run_at`, or
//! at most `poll_interval` as a fallback.
//!
//! Shutdown: fetching stops; running jobs get `shutdown_grace` to finish; the rest are
//! stopped and released (available again at once, the attempt not counted); outcomes are
//! flushed before `run` returns.
//!
//! [`Worker::run_due`] is the same work as one synchronous step, for tests and tools: run
//! what is due now, record it, report it.

mod cancels;
mod execute;
mod fetch;
mod housekeeping;
mod slots;
mod tasks;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

pub use self::cancels::CANCEL_POLL;
use self::cancels::watch_cancels;
use self::fetch::Fetcher;
pub use self::housekeeping::export_limit_metrics;
use self::housekeeping::{complete, forward_notifications, heartbeat, rescue, watch_pauses};
pub use self::tasks::Liveness;
use self::tasks::Named;
use crate::handler::Registry;
use crate::{Completed, Finished, Queue, QueueError};

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Names this worker in `locked_by` and in logs.
    pub id: String,
    /// Queues to work and how many jobs of each to run at once.
    pub queues: Vec<(String, usize)>,
    /// Jobs a worker may hold per queue, running or fetched and waiting to run (at least the
    /// queue's concurrency). Fetching ahead saves round trips when the queue is busy; the
    /// jobs it holds are leased and invisible to other workers until run.
    pub local_queue: usize,
    /// How long a job is held without a heartbeat before another worker may take it.
    pub lease: Duration,
    /// Longest wait between fetches when nothing wakes the worker.
    pub poll_interval: Duration,
    /// How long running jobs get to finish after shutdown begins.
    pub shutdown_grace: Duration,
    /// Longest a single run may take; a run past it fails (and is retried).
    pub job_timeout: Duration,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Whether completed jobs are kept until pruned or deleted as they complete.
    pub completed: Completed,
    /// The fleet-wide limits this worker claims under.
    pub limits: crate::limits::Limits,
}

/// Jobs this worker holds (fetched, running, or finished and not yet recorded), by id.
/// Bounded by the queues' local queues.
type Running = Arc<Mutex<HashMap<i64, Held>>>;

/// A job this worker holds.
struct Held {
    /// Cancelled when an operator cancels the job (`cancels.rs`), and by the worker's hard
    /// stop, whose child it is: what the job's handler is given.
    cancel: CancellationToken,
}

/// How long, after the running jobs are done or stopped, the worker may spend recording their
/// outcomes and releasing what it still holds. Past it (the database is gone, say) it stops
/// anyway: what it held is leased, and runs again when the leases run out.
pub const FLUSH_DEADLINE: Duration = Duration::from_secs(5);

/// Why a worker stopped other than by being asked to.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("cannot listen for job notifications")]
    Listen(#[source] QueueError),
    #[error("the worker's {0} task ended unexpectedly")]
    TaskEnded(String),
    #[error("the worker's {task} task panicked")]
    TaskPanicked {
        task: String,
        #[source]
        source: tokio::task::JoinError,
    },
}

/// A worker process's job runner.
#[derive(Debug)]
pub struct Worker {
    queue: Queue,
    registry: Registry,
    settings: WorkerSettings,
    liveness: Liveness,
}

/// A unique-enough worker id: host, process and a random suffix.
pub fn worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "worker".into());
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..6];
    format!("{host}-{}-{suffix}", std::process::id())
}

/// The failure that a task's end before shutdown is.
fn unexpected(ended: Result<Option<String>, WorkerError>) -> WorkerError {
    match ended {
        Ok(name) => WorkerError::TaskEnded(name.unwrap_or_default()),
        Err(e) => e,
    }
}

impl Worker {
    pub fn new(queue: Queue, registry: Registry, settings: WorkerSettings) -> Self {
        Self {
            queue,
            registry,
            liveness: Liveness::new(settings.lease),
            settings,
        }
    }

    /// Whether this worker is alive, for health checks.
    pub fn liveness(&self) -> Liveness {
        self.liveness.clone()
    }

    /// Works until `shutdown` is cancelled, then stops as described in the module docs. Each
    /// of its tasks is tracked: one that ends or panics before `shutdown` stops the worker,
    /// which returns the error.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), WorkerError> {
        let settings = Arc::new(self.settings.clone());
        tracing::info!(worker = %settings.id, queues = ?settings.queues, "worker started");
        export_limit_metrics(&crate::each_limit(&settings.limits));
        let running: Running = Arc::default();
        let remote_wake = Arc::new(Notify::new());
        let stop_fetching = shutdown.child_token();
        let background = CancellationToken::new();
        let hard_stop = CancellationToken::new();
        let abandon = CancellationToken::new();
        let jobs = TaskTracker::new();
        let (finished_tx, finished_rx) = mpsc::channel::<Finished>(4_096);

        let mut completer = tokio::spawn(complete(
            self.queue.clone(),
            settings.id.clone(),
            settings.completed,
            running.clone(),
            finished_rx,
            abandon.clone(),
        ));
        let mut helpers = self
            .spawn_helpers(&settings, &running, &remote_wake, &background)
            .await?;

        let (mut fetchers, pauses) = self.spawn_fetchers(
            &FetcherShared {
                settings: settings.clone(),
                running: running.clone(),
                remote_wake: remote_wake.clone(),
                finished: finished_tx.clone(),
                jobs: jobs.clone(),
                hard_stop: hard_stop.clone(),
            },
            &stop_fetching,
        );
        drop(finished_tx);
        helpers.spawn(
            "pause watch".into(),
            watch_pauses(self.queue.clone(), pauses, background.clone()),
        );

        // Until asked to stop, every task runs; one that ends is a failure.
        // (A fetcher also ends when shutdown begins: that end is no failure.)
        let failure = tokio::select! {
            biased;
            () = shutdown.cancelled() => None,
            ended = fetchers.next(), if !fetchers.is_empty() => {
                (!shutdown.is_cancelled()).then(|| unexpected(ended))
            }
            ended = helpers.next(), if !helpers.is_empty() => Some(unexpected(ended)),
        };
        if let Some(e) = &failure {
            tracing::error!(worker = %settings.id, error = %orderly_db::cause_chain(e), "stopping the worker");
        }
        stop_fetching.cancel();
        let fetchers_done = fetchers.finish(settings.shutdown_grace).await;
        wait_for_jobs(&jobs, &hard_stop, &settings).await;
        if tokio::time::timeout(FLUSH_DEADLINE, &mut completer)
            .await
            .is_err()
        {
            abandon.cancel();
            let _ = completer.await;
        }
        release_unfinished(&self.queue, &settings.id, &running).await;
        background.cancel();
        let helpers_done = helpers.finish(FLUSH_DEADLINE).await;
        if let Ok(Err(e)) =
            tokio::time::timeout(FLUSH_DEADLINE, self.queue.forget_worker(&settings.id)).await
        {
            tracing::warn!(worker = %settings.id, error = %orderly_db::cause_chain(&e), "deleting the worker's heartbeat failed; it expires with its lease");
        }
        tracing::info!(worker = %settings.id, "worker stopped");
        match failure {
            Some(e) => Err(e),
            None => fetchers_done.and(helpers_done),
        }
    }

    /// The worker's helpers: the heartbeat (leases and liveness), the rescue of jobs whose
    /// leases ran out, the watch for cancelled jobs and, where the database has them,
    /// notifications of new and cancelled jobs.
    async fn spawn_helpers(
        &self,
        settings: &Arc<WorkerSettings>,
        running: &Running,
        remote_wake: &Arc<Notify>,
        background: &CancellationToken,
    ) -> Result<Named, WorkerError> {
        let mut helpers = Named::default();
        helpers.spawn(
            "heartbeat".into(),
            heartbeat(
                self.queue.clone(),
                settings.clone(),
                running.clone(),
                self.liveness.clone(),
                background.clone(),
            ),
        );
        helpers.spawn(
            "rescue".into(),
            rescue(self.queue.clone(), settings.clone(), background.clone()),
        );
        let cancel_heard = Arc::new(Notify::new());
        helpers.spawn(
            "cancellations".into(),
            watch_cancels(
                self.queue.clone(),
                running.clone(),
                cancel_heard.clone(),
                background.clone(),
            ),
        );
        if let Some(listener) = self
            .queue
            .listen_for_jobs()
            .await
            .map_err(WorkerError::Listen)?
        {
            helpers.spawn(
                "notifications".into(),
                forward_notifications(
                    listener,
                    remote_wake.clone(),
                    cancel_heard,
                    background.clone(),
                ),
            );
        }
        Ok(helpers)
    }

    /// One fetcher per configured queue, each with the flag that pauses it.
    fn spawn_fetchers(
        &self,
        shared: &FetcherShared,
        stop_fetching: &CancellationToken,
    ) -> (Named, Vec<(String, watch::Sender<bool>)>) {
        let settings = &shared.settings;
        let mut fetchers = Named::default();
        let mut pauses = Vec::with_capacity(settings.queues.len());
        for (queue, concurrency) in settings.queues.clone() {
            let held = settings.local_queue.max(concurrency).max(1);
            let (pause_flag, paused) = watch::channel(false);
            pauses.push((queue.clone(), pause_flag));
            let fetcher = Fetcher {
                queue: self.queue.clone(),
                registry: self.registry.clone(),
                settings: settings.clone(),
                held_jobs: shared.running.clone(),
                remote_wake: shared.remote_wake.clone(),
                finished: shared.finished.clone(),
                jobs: shared.jobs.clone(),
                hard_stop: shared.hard_stop.clone(),
                name: queue.clone(),
                held: Arc::new(Semaphore::new(held)),
                running: Arc::new(slots::RunSlots::new(concurrency)),
                limited: settings.limits.on_queue(&queue).is_some(),
                refetch_at: (held / 2).max(1) as u32,
                paused,
            };
            fetchers.spawn(
                format!("fetcher of queue {queue}"),
                fetcher.run(stop_fetching.clone()),
            );
        }
        (fetchers, pauses)
    }

    /// Runs up to `limit` jobs of `queue` that are due now, one after another, records how
    /// each ended and returns that: one step of the work `run` does continuously.
    pub async fn run_due(&self, queue: &str, limit: i64) -> Result<Vec<Finished>, QueueError> {
        let lease_until = orderly_domain::now() + self.settings.lease;
        let jobs = self
            .queue
            .claim_jobs(
                queue,
                &self.settings.id,
                limit,
                lease_until,
                &self.settings.limits,
            )
            .await?
            .jobs;
        let never = CancellationToken::new();
        let mut finished = Vec::with_capacity(jobs.len());
        for job in jobs {
            let span = execute::job_span(&job);
            let outcome = execute::run(&job, &self.registry, &self.settings, &never, &never)
                .instrument(span)
                .await;
            if let Some(outcome) = outcome {
                finished.push(Finished {
                    id: job.id,
                    attempt: job.attempt,
                    outcome,
                });
            }
        }
        self.queue
            .finish_jobs(&self.settings.id, &finished, self.settings.completed)
            .await?;
        Ok(finished)
    }
}

/// What every fetcher of a worker shares.
struct FetcherShared {
    settings: Arc<WorkerSettings>,
    running: Running,
    remote_wake: Arc<Notify>,
    finished: mpsc::Sender<Finished>,
    jobs: TaskTracker,
    hard_stop: CancellationToken,
}

/// Waits for the running jobs to finish, for at most the shutdown grace; then stops those
/// still running.
async fn wait_for_jobs(
    jobs: &TaskTracker,
    hard_stop: &CancellationToken,
    settings: &WorkerSettings,
) {
    jobs.close();
    let in_flight = jobs.len();
    if in_flight > 0 {
        tracing::info!(worker = %settings.id, in_flight, "stopping: waiting for running jobs");
    }
    if tokio::time::timeout(settings.shutdown_grace, jobs.wait())
        .await
        .is_err()
    {
        tracing::warn!(worker = %settings.id, "grace period over: stopping the jobs still running");
        hard_stop.cancel();
        jobs.wait().await;
    }
}

/// Gives back the jobs this worker still holds but did not finish, so that another worker
/// takes them at once rather than when their leases expire.
async fn release_unfinished(queue: &Queue, worker: &str, running: &Running) {
    let unfinished: Vec<i64> = running
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .keys()
        .copied()
        .collect();
    if unfinished.is_empty() {
        return;
    }
    match tokio::time::timeout(FLUSH_DEADLINE, queue.release_jobs(worker, &unfinished)).await {
        Ok(Ok(released)) => tracing::info!(worker, released, "released unfinished jobs"),
        Ok(Err(e)) => tracing::warn!(
            worker,
            error = %orderly_db::cause_chain(&e),
            held = unfinished.len(),
            "releasing unfinished jobs failed; they run again when their leases expire"
        ),
        Err(_) => tracing::warn!(
            worker,
            held = unfinished.len(),
            "releasing unfinished jobs timed out; they run again when their leases expire"
        ),
    }
}
