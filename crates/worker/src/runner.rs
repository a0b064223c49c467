//! The worker: per-queue fetch loops bounded by a semaphore, a heartbeat that extends the
//! leases of running jobs, a rescuer for jobs whose worker died, a completer that records
//! outcomes in batches, and a pruner for old finished jobs.
//!
//! Wake-ups, not busy polling: a fetch that finds nothing waits for a commit in this process
//! (`Store::jobs_signal`), a PostgreSQL `NOTIFY` from any process, the next job's `run_at`, or
//! at most `poll_interval` as a fallback.
//!
//! Shutdown: fetching stops; running jobs get `shutdown_grace` to finish; the rest are
//! stopped and released (available again at once, the attempt not counted); outcomes are
//! flushed before `run` returns.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use orderly_domain::job::backoff;
use orderly_storage::{Finished, Job, Outcome, Store, StoreError, cause_chain};
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::handler::{JobError, Registry};

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
    /// Finished jobs older than this are deleted.
    pub retention: Duration,
}

/// Jobs this worker holds: id → attempt. Bounded by the queues' concurrency.
type Running = Arc<Mutex<HashMap<i64, i32>>>;

/// A worker process's job runner.
#[derive(Debug)]
pub struct Worker {
    store: Store,
    registry: Registry,
    settings: WorkerSettings,
}

/// A unique-enough worker id: host, process and a random suffix.
pub fn worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "worker".into());
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..6];
    format!("{host}-{}-{suffix}", std::process::id())
}

impl WorkerSettings {
    /// Defaults for `queues`, with a fresh worker id.
    pub fn new(queues: Vec<(String, usize)>) -> Self {
        Self {
            id: worker_id(),
            queues,
            local_queue: 500,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(10),
            job_timeout: Duration::from_secs(300),
            backoff_base: Duration::from_secs(5),
            backoff_max: Duration::from_secs(3_600),
            retention: Duration::from_secs(7 * 86_400),
        }
    }
}

impl Worker {
    pub fn new(store: Store, registry: Registry, settings: WorkerSettings) -> Self {
        Self {
            store,
            registry,
            settings,
        }
    }

    /// Works until `shutdown` is cancelled, then stops as described in the module docs.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), StoreError> {
        let settings = Arc::new(self.settings);
        tracing::info!(worker = %settings.id, queues = ?settings.queues, "worker started");
        let running: Running = Arc::default();
        let remote_wake = Arc::new(Notify::new());
        let background = CancellationToken::new();
        let hard_stop = CancellationToken::new();
        let jobs = TaskTracker::new();
        let (finished_tx, finished_rx) = mpsc::channel::<Finished>(4_096);

        let completer = tokio::spawn(complete(
            self.store.clone(),
            settings.id.clone(),
            running.clone(),
            finished_rx,
        ));
        let mut helpers = vec![
            tokio::spawn(heartbeat(
                self.store.clone(),
                settings.clone(),
                running.clone(),
                background.clone(),
            )),
            tokio::spawn(rescue(
                self.store.clone(),
                settings.clone(),
                background.clone(),
            )),
            tokio::spawn(prune(
                self.store.clone(),
                settings.clone(),
                background.clone(),
            )),
        ];
        if let Some(listener) = self.store.listen_for_jobs().await? {
            helpers.push(tokio::spawn(forward_notifications(
                listener,
                remote_wake.clone(),
                background.clone(),
            )));
        }

        let mut fetchers = Vec::new();
        for (queue, concurrency) in settings.queues.clone() {
            let held = settings.local_queue.max(concurrency).max(1);
            let fetcher = Fetcher {
                store: self.store.clone(),
                registry: self.registry.clone(),
                settings: settings.clone(),
                held_jobs: running.clone(),
                remote_wake: remote_wake.clone(),
                finished: finished_tx.clone(),
                jobs: jobs.clone(),
                hard_stop: hard_stop.clone(),
                queue,
                held: Arc::new(Semaphore::new(held)),
                running: Arc::new(Semaphore::new(concurrency.max(1))),
                refetch_at: (held / 2).max(1) as u32,
            };
            fetchers.push(tokio::spawn(fetcher.run(shutdown.clone())));
        }
        drop(finished_tx);

        shutdown.cancelled().await;
        for fetcher in fetchers {
            let _ = fetcher.await;
        }
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
        let _ = completer.await;
        let unfinished: Vec<i64> = running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .copied()
            .collect();
        if !unfinished.is_empty() {
            let released = self.store.release_jobs(&settings.id, &unfinished).await?;
            tracing::info!(worker = %settings.id, released, "released unfinished jobs");
        }
        background.cancel();
        for helper in helpers {
            let _ = helper.await;
        }
        tracing::info!(worker = %settings.id, "worker stopped");
        Ok(())
    }
}

/// One queue's fetch loop.
struct Fetcher {
    store: Store,
    registry: Registry,
    settings: Arc<WorkerSettings>,
    held_jobs: Running,
    remote_wake: Arc<Notify>,
    finished: mpsc::Sender<Finished>,
    jobs: TaskTracker,
    hard_stop: CancellationToken,
    queue: String,
    /// Jobs held (fetched and not yet finished), at most `local_queue`.
    held: Arc<Semaphore>,
    /// Jobs running, at most the queue's concurrency.
    running: Arc<Semaphore>,
    /// Free room in the local queue that triggers the next fetch.
    refetch_at: u32,
}

impl Fetcher {
    async fn run(self, shutdown: CancellationToken) {
        let local_wake = self.store.jobs_signal();
        loop {
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
                .store
                .fetch_jobs(&self.queue, &self.settings.id, wanted as i64, lease_until)
                .await
            {
                Ok(jobs) => jobs,
                Err(e) => {
                    tracing::warn!(queue = %self.queue, error = %cause_chain(&e), "fetching jobs failed");
                    Vec::new()
                }
            };
            let got = fetched.len();
            for job in fetched {
                let permit = permits.pop();
                self.held_jobs
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(job.id, job.attempt);
                let running = self.running.clone();
                let (registry, settings) = (self.registry.clone(), self.settings.clone());
                let (finished, hard_stop) = (self.finished.clone(), self.hard_stop.clone());
                let stopping = shutdown.clone();
                self.jobs.spawn(async move {
                    let _held = permit;
                    // A job still waiting when shutdown begins does not start: it is released.
                    let _running = tokio::select! {
                        permit = running.acquire_owned() => permit.ok(),
                        () = stopping.cancelled() => return,
                    };
                    execute(job, registry, settings, finished, hard_stop).await;
                });
            }
            drop(permits);
            if got > 0 {
                continue;
            }
            let wait = match self.store.next_job_due(&self.queue).await {
                Ok(Some(due)) => {
                    let until = (due - orderly_domain::now()).max(time::Duration::ZERO);
                    Duration::try_from(until)
                        .unwrap_or_default()
                        .min(self.settings.poll_interval)
                }
                _ => self.settings.poll_interval,
            };
            tokio::select! {
                () = &mut local => {},
                () = &mut remote => {},
                () = tokio::time::sleep(wait) => {},
                () = shutdown.cancelled() => return,
            }
        }
    }
}

/// Runs one job and reports how it ended. A job stopped by `hard_stop` reports nothing: the
/// worker releases it.
async fn execute(
    job: Job,
    registry: Registry,
    settings: Arc<WorkerSettings>,
    finished: mpsc::Sender<Finished>,
    hard_stop: CancellationToken,
) {
    let order_id = job
        .args
        .get("order_id")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_owned();
    let span = tracing::info_span!(
        "job",
        job_id = job.id,
        kind = %job.kind,
        attempt = job.attempt,
        order_id = %order_id,
        trace_id = tracing::field::Empty,
    );
    continue_trace(&span, job.trace_context.as_deref());
    run_and_report(job, registry, settings, finished, hard_stop)
        .instrument(span)
        .await;
}

async fn run_and_report(
    job: Job,
    registry: Registry,
    settings: Arc<WorkerSettings>,
    finished: mpsc::Sender<Finished>,
    hard_stop: CancellationToken,
) {
    let started = Instant::now();
    let kind = job.kind.clone();
    let waited = (orderly_domain::now() - job.run_at)
        .as_seconds_f64()
        .max(0.0);
    metrics::histogram!("job_start_latency_seconds", "kind" => kind.clone()).record(waited);
    tracing::info!(worker = %settings.id, "job started");
    let result = match registry.get(&job.kind) {
        None => Err(JobError::Permanent(format!(
            "no handler for job kind {:?}",
            job.kind
        ))),
        Some(handler) => {
            tokio::select! {
                result = tokio::time::timeout(settings.job_timeout, handler.run(&job)) => {
                    result.unwrap_or_else(|_| Err(JobError::Transient(format!(
                        "timed out after {:?}", settings.job_timeout
                    ))))
                }
                () = hard_stop.cancelled() => {
                    tracing::warn!("job stopped by shutdown; it will be released");
                    return;
                }
            }
        }
    };
    let elapsed_ms = started.elapsed().as_secs_f64() * 1_000.0;
    metrics::histogram!("job_run_duration_seconds", "kind" => kind.clone())
        .record(elapsed_ms / 1_000.0);
    let outcome = match result {
        Ok(()) => {
            tracing::info!(worker = %settings.id, elapsed_ms, "job finished");
            metrics::counter!("jobs_completed_total", "kind" => kind).increment(1);
            Outcome::Completed
        }
        Err(JobError::Transient(error)) if job.attempt < job.max_attempts => {
            let wait = backoff(
                job.attempt.max(1) as u32,
                settings.backoff_base,
                settings.backoff_max,
                jitter(),
            );
            tracing::warn!(worker = %settings.id, elapsed_ms, %error, retry_in_ms = wait.as_millis() as u64, "job failed; will retry");
            metrics::counter!("jobs_retried_total", "kind" => kind).increment(1);
            Outcome::Retry {
                at: orderly_domain::now() + wait,
                error,
            }
        }
        Err(JobError::Snooze(after)) => {
            tracing::debug!(worker = %settings.id, retry_in_ms = after.as_millis() as u64, "job put off");
            Outcome::Snooze {
                at: orderly_domain::now() + after,
            }
        }
        Err(JobError::RetryAfter { error, after }) if job.attempt < job.max_attempts => {
            tracing::warn!(worker = %settings.id, elapsed_ms, %error, retry_in_ms = after.as_millis() as u64, "job failed; will retry");
            metrics::counter!("jobs_retried_total", "kind" => kind).increment(1);
            Outcome::Retry {
                at: orderly_domain::now() + after,
                error,
            }
        }
        Err(e) => {
            let error = e.to_string();
            tracing::error!(worker = %settings.id, elapsed_ms, %error, "job failed; discarded");
            metrics::counter!("jobs_discarded_total", "kind" => kind).increment(1);
            Outcome::Discard { error }
        }
    };
    let _ = finished
        .send(Finished {
            id: job.id,
            attempt: job.attempt,
            outcome,
        })
        .await;
}

/// Makes the job's span a child of the trace that enqueued it (its stored `traceparent`), and
/// records the trace id for the log lines. A no-op without an OpenTelemetry layer.
fn continue_trace(span: &tracing::Span, traceparent: Option<&str>) {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    if let Some(traceparent) = traceparent {
        let carrier =
            std::collections::HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
        let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&carrier));
        if parent.span().span_context().is_valid() {
            let _ = span.set_parent(parent);
        }
    }
    let context = span.context();
    let span_context = context.span().span_context().clone();
    if span_context.is_valid() {
        span.record("trace_id", tracing::field::display(span_context.trace_id()));
    }
}

/// A number in `[0, 1)` for backoff jitter.
fn jitter() -> f64 {
    f64::from(uuid::Uuid::new_v4().as_u128() as u32) / (f64::from(u32::MAX) + 1.0)
}

/// Records outcomes in batches; a job leaves the running set only once its outcome is stored,
/// so its lease keeps being extended until then.
async fn complete(
    store: Store,
    worker: String,
    running: Running,
    mut finished: mpsc::Receiver<Finished>,
) {
    let mut batch = Vec::with_capacity(512);
    while let Some(first) = finished.recv().await {
        batch.push(first);
        while batch.len() < 512 {
            match finished.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let mut delay = Duration::from_millis(100);
        loop {
            match store.finish_jobs(&worker, &batch).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(error = %cause_chain(&e), batch = batch.len(), "recording job outcomes failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
        let mut held = running.lock().unwrap_or_else(PoisonError::into_inner);
        for f in batch.drain(..) {
            held.remove(&f.id);
        }
    }
}

async fn heartbeat(
    store: Store,
    settings: Arc<WorkerSettings>,
    running: Running,
    stop: CancellationToken,
) {
    let mut every = tokio::time::interval(settings.lease / 3);
    loop {
        tokio::select! {
            _ = every.tick() => {},
            () = stop.cancelled() => return,
        }
        let ids: Vec<i64> = running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .copied()
            .collect();
        if ids.is_empty() {
            continue;
        }
        let until = orderly_domain::now() + settings.lease;
        if let Err(e) = store.extend_leases(&settings.id, &ids, until).await {
            tracing::warn!(error = %cause_chain(&e), "extending job leases failed");
        }
    }
}

async fn rescue(store: Store, settings: Arc<WorkerSettings>, stop: CancellationToken) {
    let mut every = tokio::time::interval(settings.lease / 2);
    loop {
        tokio::select! {
            _ = every.tick() => {},
            () = stop.cancelled() => return,
        }
        match store.count_jobs_by_state().await {
            Ok(counts) => {
                for state in orderly_domain::job::JobState::ALL {
                    let n = counts
                        .iter()
                        .find(|(s, _)| *s == state)
                        .map_or(0, |(_, n)| *n);
                    metrics::gauge!("jobs", "state" => state.as_str()).set(n as f64);
                }
            }
            Err(e) => tracing::warn!(error = %cause_chain(&e), "counting jobs failed"),
        }
        if let Ok(age) = store.oldest_due_job_age().await {
            metrics::gauge!("jobs_oldest_due_age_seconds").set(age.as_secs_f64());
        }
        metrics::gauge!("worker_heartbeat_timestamp_seconds")
            .set(time::OffsetDateTime::now_utc().unix_timestamp() as f64);
        match store.rescue_expired_jobs().await {
            Ok(0) => {}
            Ok(rescued) => tracing::warn!(rescued, "rescued jobs whose lease expired"),
            Err(e) => tracing::warn!(error = %cause_chain(&e), "rescuing expired jobs failed"),
        }
    }
}

async fn prune(store: Store, settings: Arc<WorkerSettings>, stop: CancellationToken) {
    let mut every = tokio::time::interval(Duration::from_secs(3_600));
    loop {
        tokio::select! {
            _ = every.tick() => {},
            () = stop.cancelled() => return,
        }
        let before = orderly_domain::now() - settings.retention;
        match store.prune_jobs(before).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "pruned finished jobs"),
            Err(e) => tracing::warn!(error = %cause_chain(&e), "pruning jobs failed"),
        }
    }
}

async fn forward_notifications(
    mut listener: orderly_storage::JobListener,
    wake: Arc<Notify>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            received = listener.recv() => match received {
                Ok(()) => wake.notify_waiters(),
                Err(e) => {
                    tracing::warn!(error = %cause_chain(&e), "job notifications interrupted; polling until they resume");
                    wake.notify_waiters();
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            },
            () = stop.cancelled() => return,
        }
    }
}
