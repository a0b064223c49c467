//! The worker's housekeeping beside the jobs: the completer that records outcomes in
//! batches, the heartbeat that extends leases, the rescuer of jobs whose worker died (which
//! also keeps the queue gauges), the limits' metrics, the forwarding of PostgreSQL notifications, and the watch
//! for paused queues. Finished
//! jobs are pruned by the scheduled `prune` chore, one worker at a time.

use std::sync::{Arc, PoisonError};
use std::time::Duration;

use orderly_db::cause_chain;
use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::{Liveness, Running, WorkerSettings};
use crate::{Completed, Finished, Heard, Queue, WorkerBeat};

/// Records outcomes in batches; a job leaves the running set only once its outcome is stored,
/// so its lease keeps being extended until then. Retries a failed write until it succeeds or
/// `abandon` is cancelled (the shutdown deadline, say with the database gone): the outcomes
/// not recorded then are lost, but not the jobs, whose leases run out so that they run again.
pub(super) async fn complete(
    queue: Queue,
    worker: String,
    completed: Completed,
    running: Running,
    mut finished: mpsc::Receiver<Finished>,
    abandon: CancellationToken,
) {
    let mut batch = Vec::with_capacity(512);
    loop {
        let first = tokio::select! {
            first = finished.recv() => match first {
                Some(first) => first,
                None => return,
            },
            () = abandon.cancelled() => return abandoned(0, &mut finished),
        };
        batch.push(first);
        while batch.len() < 512 {
            match finished.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let mut delay = Duration::from_millis(100);
        loop {
            match queue.finish_jobs(&worker, &batch, completed).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(error = %cause_chain(&e), batch = batch.len(), "recording job outcomes failed; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {},
                        () = abandon.cancelled() => return abandoned(batch.len(), &mut finished),
                    }
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

/// Logs the outcomes given up on: `pending` taken, and whatever is still in the channel.
fn abandoned(pending: usize, finished: &mut mpsc::Receiver<Finished>) {
    let mut lost = pending;
    while finished.try_recv().is_ok() {
        lost += 1;
    }
    if lost > 0 {
        tracing::warn!(
            lost,
            "shutdown deadline: job outcomes not recorded; those jobs run again once their \
             leases expire"
        );
    }
}

/// Extends the leases of the jobs this worker holds, and beats `liveness` and records the
/// worker's heartbeat (for operators) each round.
pub(super) async fn heartbeat(
    queue: Queue,
    settings: Arc<WorkerSettings>,
    running: Running,
    liveness: Liveness,
    stop: CancellationToken,
) {
    let mut every = tokio::time::interval(settings.lease / 3);
    let queues = settings
        .queues
        .iter()
        .map(|(name, concurrency)| format!("{name}:{concurrency}"))
        .collect::<Vec<_>>()
        .join(",");
    let started_at = orderly_domain::now();
    let mut beat_failing = false;
    loop {
        tokio::select! {
            _ = every.tick() => {},
            () = stop.cancelled() => return,
        }
        liveness.beat();
        let now = orderly_domain::now();
        let beat = WorkerBeat {
            worker: settings.id.clone(),
            queues: queues.clone(),
            started_at,
            beat_at: now,
            expires_at: now + settings.lease,
        };
        match queue.beat(&beat).await {
            Ok(()) => beat_failing = false,
            Err(e) if !beat_failing => {
                beat_failing = true;
                tracing::warn!(error = %cause_chain(&e), "recording the worker's heartbeat failed");
            }
            Err(_) => {}
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
        if let Err(e) = queue.extend_leases(&settings.id, &ids, until).await {
            tracing::warn!(error = %cause_chain(&e), "extending job leases failed");
        }
    }
}

pub(super) async fn rescue(queue: Queue, settings: Arc<WorkerSettings>, stop: CancellationToken) {
    let mut every = tokio::time::interval(settings.lease / 2);
    loop {
        tokio::select! {
            _ = every.tick() => {},
            () = stop.cancelled() => return,
        }
        match queue.count_jobs_by_state().await {
            Ok(counts) => {
                for (state, n) in counts {
                    metrics::gauge!("jobs", "state" => state.as_str()).set(n as f64);
                }
            }
            Err(e) => tracing::warn!(error = %cause_chain(&e), "counting jobs failed"),
        }
        if let Ok(age) = queue.oldest_due_job_age().await {
            metrics::gauge!("jobs_oldest_due_age_seconds").set(age.as_secs_f64());
        }
        metrics::gauge!("worker_heartbeat_timestamp_seconds")
            .set(time::OffsetDateTime::now_utc().unix_timestamp() as f64);
        match queue.rescue_expired_jobs().await {
            Ok(0) => {}
            Ok(rescued) => tracing::warn!(rescued, "rescued jobs whose lease expired"),
            Err(e) => tracing::warn!(error = %cause_chain(&e), "rescuing expired jobs failed"),
        }
    }
}

/// Wakes the fetch loops (`wake`) when a job is inserted and the watch for cancelled jobs
/// (`cancels`) when one is cancelled, in any process.
pub(super) async fn forward_notifications(
    mut listener: crate::JobListener,
    wake: Arc<Notify>,
    cancels: Arc<Notify>,
    stop: CancellationToken,
) {
    // Failed attempts to listen again since the connection was lost; logged once when it
    // breaks and once when it is back, not every second in between.
    let mut failed = 0u32;
    loop {
        tokio::select! {
            heard = listener.recv() => match heard {
                Ok(Heard::Job) => wake.notify_waiters(),
                Ok(Heard::Cancel) => cancels.notify_waiters(),
                Ok(Heard::Reconnected) => {
                    tracing::info!(failed_attempts = failed, "job notifications resumed on a new connection; looking for jobs announced meanwhile");
                    failed = 0;
                    wake.notify_waiters();
                    cancels.notify_waiters();
                }
                Err(e) => {
                    if failed == 0 {
                        tracing::warn!(error = %cause_chain(&e), "job notifications interrupted; polling until they resume");
                    }
                    failed += 1;
                    wake.notify_waiters();
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            },
            () = stop.cancelled() => return,
        }
    }
}

/// Looks which queues are paused every [`crate::PAUSE_POLL`] and tells each fetch loop of a
/// change (`pauses`: a queue's name and its loop's flag). While the database cannot be read
/// the last answer stands: a paused queue stays paused, a running one runs.
pub(super) async fn watch_pauses(
    queue: Queue,
    pauses: Vec<(String, watch::Sender<bool>)>,
    stop: CancellationToken,
) {
    let mut failing = false;
    loop {
        match queue.paused_queues().await {
            Ok(paused) => {
                failing = false;
                for (name, flag) in &pauses {
                    let now_paused = paused.iter().any(|p| &p.name == name);
                    flag.send_if_modified(|was| {
                        let changed = *was != now_paused;
                        *was = now_paused;
                        changed
                    });
                }
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %cause_chain(&e), "cannot read the paused queues; keeping the last answer");
                }
                failing = true;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(crate::PAUSE_POLL) => {},
            () = stop.cancelled() => return,
        }
    }
}

/// Sets the limits' metrics to `usage`: the limit, what is held under it (for a rate, what it
/// has let start, a counter) and the due jobs it holds back. Every worker process reports the
/// fleet's figures, read from the database (the activity sampler of `orderly_worker` looks).
pub fn export_limit_metrics(usage: &[crate::LimitUse]) {
    for limit in usage {
        let labels = [
            ("scope", limit.scope.as_str().to_owned()),
            ("name", limit.name.clone()),
        ];
        metrics::gauge!("job_limit", &labels).set(limit.limit);
        metrics::gauge!("job_limit_waiting", &labels).set(limit.waiting as f64);
        if limit.scope.is_rate() {
            metrics::counter!("job_limit_admitted_total", &labels).absolute(limit.in_use as u64);
        } else {
            metrics::gauge!("job_limit_in_use", &labels).set(limit.in_use);
        }
    }
}
