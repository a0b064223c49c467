//! Running one job: its span (continuing the trace that enqueued it), the handler under a
//! timeout, and the verdict, from the handler's result to the [`Outcome`] to record, which
//! [`outcome_of`] decides without I/O.

use std::sync::Arc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::WorkerSettings;
use crate::handler::{JobError, Registry};
use crate::{Finished, Job, Outcome, backoff};

/// Runs one job and reports how it ended. A job stopped by `hard_stop` reports nothing: the
/// worker releases it. `cancel` (a child of `hard_stop`) is cancelled when an operator
/// cancels the job.
pub(super) async fn execute(
    job: Job,
    registry: Registry,
    settings: Arc<WorkerSettings>,
    finished: mpsc::Sender<Finished>,
    hard_stop: CancellationToken,
    cancel: CancellationToken,
) {
    let (id, attempt) = (job.id, job.attempt);
    let span = job_span(&job);
    let outcome = run(&job, &registry, &settings, &hard_stop, &cancel)
        .instrument(span)
        .await;
    if let Some(outcome) = outcome {
        // The completer stops only after every sender is gone, so the send succeeds.
        let _ = finished
            .send(Finished {
                id,
                attempt,
                outcome,
            })
            .await;
    }
}

/// The span a job runs in: its id, kind and attempt, a child of the trace that enqueued it.
/// Handlers record what they are about (`order_id`) themselves.
pub(super) fn job_span(job: &Job) -> tracing::Span {
    let span = tracing::info_span!(
        "job",
        job_id = job.id,
        kind = %job.kind,
        attempt = job.attempt,
        order_id = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    continue_trace(&span, job.trace_context.as_deref());
    span
}

/// Runs the handler and returns the outcome to record; `None` when shutdown stopped it. A job
/// whose cancellation was asked before it started does not start.
pub(super) async fn run(
    job: &Job,
    registry: &Registry,
    settings: &WorkerSettings,
    hard_stop: &CancellationToken,
    cancel: &CancellationToken,
) -> Option<Outcome> {
    if cancel.is_cancelled() && !hard_stop.is_cancelled() {
        tracing::info!(worker = %settings.id, "job cancelled before it started");
        metrics::counter!("jobs_cancelled_total", "kind" => job.kind.clone()).increment(1);
        return Some(Outcome::Cancelled {
            error: "cancelled by an operator before it started".into(),
        });
    }
    let started = Instant::now();
    let kind = job.kind.clone();
    let waited = (orderly_domain::now() - job.run_at)
        .as_seconds_f64()
        .max(0.0);
    metrics::histogram!("job_start_latency_seconds", "kind" => kind.clone()).record(waited);
    tracing::info!(worker = %settings.id, "job started");
    let result = tokio::select! {
        biased;
        () = hard_stop.cancelled() => {
            tracing::warn!("job stopped by shutdown; it will be released");
            return None;
        }
        result = tokio::time::timeout(settings.job_timeout, registry.run(job, cancel)) => {
            result.unwrap_or_else(|_| Err(JobError::Transient(format!(
                "timed out after {:?}", settings.job_timeout
            ))))
        }
    };
    if hard_stop.is_cancelled() {
        tracing::warn!("job stopped by shutdown; it will be released");
        return None;
    }
    let elapsed = started.elapsed();
    metrics::histogram!("job_run_duration_seconds", "kind" => kind.clone())
        .record(elapsed.as_secs_f64());
    let outcome = outcome_of(
        result,
        job,
        settings,
        Verdict {
            now: orderly_domain::now(),
            jitter: jitter(),
            cancel_requested: cancel.is_cancelled(),
        },
    );
    log_outcome(&outcome, settings, elapsed, &kind);
    match outcome {
        Outcome::Completed => crate::activity::count_run(&job.queue, false),
        Outcome::Retry { .. } | Outcome::Discard { .. } => {
            crate::activity::count_run(&job.queue, true);
        }
        Outcome::Snooze { .. } | Outcome::Cancelled { .. } => {}
    }
    Some(outcome)
}

/// What a run's outcome is decided with, besides its result.
pub(crate) struct Verdict {
    pub now: OffsetDateTime,
    /// In `[0, 1)`: spreads the retries of jobs that failed together.
    pub jitter: f64,
    /// Whether an operator asked the job to stop while it ran.
    pub cancel_requested: bool,
}

/// What to record for a run that ended with `result`. A run that an operator cancelled ends
/// `cancelled` unless it completed (its side effect happened); a handler's own
/// [`JobError::Cancelled`] without a request (the worker stopping) gives the attempt back.
pub(crate) fn outcome_of(
    result: Result<(), JobError>,
    job: &Job,
    settings: &WorkerSettings,
    verdict: Verdict,
) -> Outcome {
    let Verdict {
        now,
        jitter,
        cancel_requested,
    } = verdict;
    let attempts_left = job.attempt < job.max_attempts;
    match result {
        Ok(()) => Outcome::Completed,
        Err(e) if cancel_requested => Outcome::Cancelled {
            error: e.to_string(),
        },
        Err(JobError::Cancelled(_)) => Outcome::Snooze { at: now },
        Err(JobError::Snooze(after)) => Outcome::Snooze { at: now + after },
        Err(JobError::Transient(error)) if attempts_left => {
            let wait = backoff(
                job.attempt.max(1) as u32,
                settings.backoff_base,
                settings.backoff_max,
                jitter,
            );
            Outcome::Retry {
                at: now + wait,
                error,
            }
        }
        Err(JobError::RetryAfter { error, after }) if attempts_left => Outcome::Retry {
            at: now + after,
            error,
        },
        Err(e) => Outcome::Discard {
            error: e.to_string(),
        },
    }
}

/// Logs how the run ended and counts it in `jobs_{completed,retried,discarded}_total`.
fn log_outcome(outcome: &Outcome, settings: &WorkerSettings, elapsed: Duration, kind: &str) {
    let elapsed_ms = elapsed.as_secs_f64() * 1_000.0;
    let worker = &settings.id;
    let in_ms = |at: &OffsetDateTime| {
        u64::try_from((*at - orderly_domain::now()).whole_milliseconds()).unwrap_or(0)
    };
    let counter = match outcome {
        Outcome::Completed => {
            tracing::info!(%worker, elapsed_ms, "job finished");
            "jobs_completed_total"
        }
        Outcome::Retry { at, error } => {
            tracing::warn!(%worker, elapsed_ms, %error, retry_in_ms = in_ms(at), "job failed; will retry");
            "jobs_retried_total"
        }
        Outcome::Discard { error } => {
            tracing::error!(%worker, elapsed_ms, %error, "job failed; discarded");
            "jobs_discarded_total"
        }
        Outcome::Snooze { at } => {
            tracing::debug!(%worker, retry_in_ms = in_ms(at), "job put off");
            return;
        }
        Outcome::Cancelled { error } => {
            tracing::warn!(%worker, elapsed_ms, %error, "job cancelled by an operator");
            "jobs_cancelled_total"
        }
    };
    metrics::counter!(counter, "kind" => kind.to_owned()).increment(1);
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

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::macros::datetime;

    use super::*;
    use crate::Completed;
    use crate::JobState;

    fn job(attempt: i32, max_attempts: i32) -> Job {
        let at = datetime!(2026-12-02 06:00 UTC);
        Job {
            id: 1,
            queue: "default".into(),
            kind: "noop".into(),
            args: json!({}),
            state: JobState::Running,
            priority: 5,
            attempt,
            max_attempts,
            run_at: at,
            locked_by: Some("w".into()),
            locked_until: Some(at),
            unique_key: None,
            last_error: None,
            created_at: at,
            finished_at: None,
            trace_context: None,
            partition: String::new(),
            cancel_requested_at: None,
        }
    }

    fn settings() -> WorkerSettings {
        WorkerSettings {
            id: "test".into(),
            queues: vec![("default".into(), 1)],
            local_queue: 10,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(1),
            job_timeout: Duration::from_secs(60),
            backoff_base: Duration::from_secs(2),
            backoff_max: Duration::from_secs(60),
            completed: Completed::Kept,
            limits: Default::default(),
        }
    }

    const NOW: OffsetDateTime = datetime!(2026-12-02 07:00 UTC);

    fn at(jitter: f64) -> Verdict {
        Verdict {
            now: NOW,
            jitter,
            cancel_requested: false,
        }
    }

    #[test]
    fn a_cancelled_run_that_failed_or_stopped_is_cancelled_and_one_that_completed_is_completed() {
        let cancelled = || Verdict {
            cancel_requested: true,
            ..at(0.5)
        };
        for result in [
            Err(JobError::Cancelled("request aborted".into())),
            Err(JobError::Transient("connection reset".into())),
        ] {
            assert!(matches!(
                outcome_of(result, &job(1, 5), &settings(), cancelled()),
                Outcome::Cancelled { .. }
            ));
        }
        assert_eq!(
            outcome_of(Ok(()), &job(1, 5), &settings(), cancelled()),
            Outcome::Completed
        );
        // Stopped with no request (the worker stopping): the attempt is given back.
        assert_eq!(
            outcome_of(
                Err(JobError::Cancelled("stopping".into())),
                &job(2, 5),
                &settings(),
                at(0.5)
            ),
            Outcome::Snooze { at: NOW }
        );
    }

    #[test]
    fn success_completes() {
        assert_eq!(
            outcome_of(Ok(()), &job(1, 3), &settings(), at(0.5)),
            Outcome::Completed
        );
    }

    #[test]
    fn a_transient_failure_retries_with_backoff_while_attempts_remain_then_discards() {
        let failed = || Err(JobError::Transient("smtp 451".into()));
        // Third attempt of five: nominal 2 s × 2² = 8 s, jitter 0.5 leaves it at 8 s.
        assert_eq!(
            outcome_of(failed(), &job(3, 5), &settings(), at(0.5)),
            Outcome::Retry {
                at: NOW + Duration::from_secs(8),
                error: "smtp 451".into()
            }
        );
        assert_eq!(
            outcome_of(failed(), &job(5, 5), &settings(), at(0.5)),
            Outcome::Discard {
                error: "smtp 451".into()
            }
        );
    }

    #[test]
    fn retry_after_replaces_the_backoff_but_not_the_attempt_limit() {
        let failed = || {
            Err(JobError::RetryAfter {
                error: "503".into(),
                after: Duration::from_secs(120),
            })
        };
        assert_eq!(
            outcome_of(failed(), &job(1, 3), &settings(), at(0.0)),
            Outcome::Retry {
                at: NOW + Duration::from_secs(120),
                error: "503".into()
            }
        );
        assert!(matches!(
            outcome_of(failed(), &job(3, 3), &settings(), at(0.0)),
            Outcome::Discard { .. }
        ));
    }

    #[test]
    fn a_permanent_failure_discards_at_once_and_a_snooze_always_puts_off() {
        assert_eq!(
            outcome_of(
                Err(JobError::Permanent("bad arguments".into())),
                &job(1, 10),
                &settings(),
                at(0.5)
            ),
            Outcome::Discard {
                error: "bad arguments".into()
            }
        );
        // Even on the last attempt: a snooze gives the attempt back.
        assert_eq!(
            outcome_of(
                Err(JobError::Snooze(Duration::from_secs(1))),
                &job(3, 3),
                &settings(),
                at(0.5)
            ),
            Outcome::Snooze {
                at: NOW + Duration::from_secs(1)
            }
        );
    }
}
