//! `deliver_webhook`: one event to one endpoint, signed per Standard Webhooks, under the SSRF
//! guard and a time limit (the per-endpoint concurrency bound is the queue's fleet-wide limit
//! on the kind's partition, the endpoint: `orderly_queue::limits`); every attempt is recorded, and
//! the endpoint's failure record decides between retrying, giving up and disabling it.

mod breakers;
mod guard;
mod send;
mod signature;

use std::sync::Arc;
use std::time::{Duration, Instant};

use orderly_domain::breaker::{Admission, Breaker, BreakerPolicy, BreakerState, Transition};
use orderly_domain::webhook::retry_delay;
use orderly_queue::kinds::{self, DeliveryArgs};
use orderly_queue::{BoxFuture, Handler, Job, JobError, JobKind, NewJob};
use orderly_storage::{AttemptOutcome, NewAttempt, OutboxRecord, Recorded, Store, WebhookEndpoint};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use breakers::count_transition;
pub use breakers::export_breaker_metrics;
pub use send::ClientError;
use send::{Answer, SendError, http_client};

use crate::operators::notice_job;

/// How deliveries behave.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Lets deliveries go to `http` URLs and internal addresses (development and tests).
    pub allow_private: bool,
    /// The most one attempt may take, connecting, sending and reading the answer.
    pub timeout: Duration,
    /// The waits before each retry; the delivery is given up when it is spent.
    pub retry_schedule: Vec<Duration>,
    /// Deliveries to one endpoint at once across the fleet (the queue's claim enforces it);
    /// here, the idle connections kept per endpoint.
    pub per_endpoint_concurrency: usize,
    /// An endpoint failing for this long without a success is disabled.
    pub disable_after: Duration,
    /// How much of a response body is read and kept with the attempt.
    pub response_excerpt_bytes: usize,
    /// When an endpoint's circuit breaker opens, and how long it rests.
    pub breaker: BreakerPolicy,
}

/// Why an attempt did not succeed, as far as the next step is concerned.
enum Failure {
    Status {
        status: u16,
        retry_after: Option<Duration>,
    },
    Blocked,
    Transport,
}

/// Delivers webhook events.
#[derive(Debug, Clone)]
pub struct WebhookDeliverer {
    store: Store,
    client: reqwest::Client,
    settings: Arc<WebhookSettings>,
}

impl WebhookDeliverer {
    pub fn new(store: Store, settings: WebhookSettings) -> Result<Self, ClientError> {
        Ok(Self {
            store,
            client: http_client(&settings)?,
            settings: Arc::new(settings),
        })
    }
}

impl Handler<kinds::DeliverWebhook> for WebhookDeliverer {
    fn run<'a>(
        &'a self,
        args: DeliveryArgs,
        _job: &'a Job,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(self.deliver(args, cancel))
    }
}

/// A failed attempt, as [`WebhookDeliverer::after_failure`] judges it.
struct FailedAttempt {
    failure: Failure,
    error: String,
    /// The pair's attempts so far, this one included.
    attempt: i32,
    /// Attempts before an operator's redelivery, which restarts the schedule.
    attempts_before: i64,
    failing_since: Option<OffsetDateTime>,
    at: OffsetDateTime,
}

fn transient<E: std::error::Error + 'static>(what: &str) -> impl FnOnce(E) -> JobError + '_ {
    move |e| JobError::transient(what, &e)
}

impl WebhookDeliverer {
    async fn deliver(
        &self,
        args: DeliveryArgs,
        cancel: &CancellationToken,
    ) -> Result<(), JobError> {
        let DeliveryArgs {
            event_id,
            endpoint_id,
            attempts_before,
        } = args;
        let Some((endpoint, event)) = self.load(endpoint_id, event_id).await? else {
            return Ok(());
        };
        if endpoint.breaker.state != BreakerState::Closed {
            self.pass_breaker(&endpoint, event_id).await?;
        }

        let (result, latency_ms) = self.send(&endpoint, &event, cancel).await?;
        let now = orderly_domain::now();
        let Verdict {
            outcome,
            status,
            excerpt,
            error,
            failure,
        } = Verdict::of(result);
        let recorded = self
            .store
            .record_webhook_attempt(
                &NewAttempt {
                    endpoint_id,
                    event_id,
                    event_type: event.kind.clone(),
                    outcome,
                    response_status: status.map(i32::from),
                    latency_ms,
                    response_excerpt: excerpt,
                    error: error.clone(),
                    at: now,
                },
                &self.settings.breaker,
            )
            .await
            .map_err(transient("recording the attempt"))?;
        let Some(Recorded {
            attempt,
            failing_since,
            breaker,
            transition,
            held_until,
        }) = recorded
        else {
            tracing::info!(%endpoint_id, %event_id, "webhook endpoint deleted during delivery");
            return Ok(());
        };
        if let Some(transition) = transition {
            self.after_transition(&endpoint, transition, &breaker, held_until)
                .await;
        }
        metrics::counter!("webhook_attempts_total", "outcome" => outcome.as_str()).increment(1);
        metrics::histogram!("webhook_attempt_duration_seconds").record(latency_ms as f64 / 1_000.0);
        let Some(failure) = failure else {
            let lag = (now - event.created_at).as_seconds_f64().max(0.0);
            metrics::histogram!("webhook_delivery_lag_seconds").record(lag);
            tracing::info!(%endpoint_id, %event_id, attempt, latency_ms, "webhook delivered");
            return Ok(());
        };
        let error = error.unwrap_or_default();
        tracing::warn!(%endpoint_id, %event_id, attempt, latency_ms, %error, "webhook attempt failed");
        Err(self
            .after_failure(
                &endpoint,
                FailedAttempt {
                    failure,
                    error,
                    attempt,
                    attempts_before,
                    failing_since,
                    at: now,
                },
            )
            .await)
    }

    /// Sends the event and times the answer, unless `cancel` comes first: the request is
    /// then dropped, its connection closed rather than kept for another, and nothing recorded.
    async fn send(
        &self,
        endpoint: &WebhookEndpoint,
        event: &OutboxRecord,
        cancel: &CancellationToken,
    ) -> Result<(Result<Answer, SendError>, i64), JobError> {
        let started = Instant::now();
        let result = tokio::select! {
            result = send::send(&self.client, &self.settings, endpoint, event) => result,
            () = cancel.cancelled() => {
                tracing::info!(endpoint_id = %endpoint.id, event_id = %event.id, "webhook request aborted: the delivery was cancelled");
                return Err(JobError::Cancelled("the webhook request in flight was aborted".into()));
            }
        };
        let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        Ok((result, latency_ms))
    }

    /// Lets the delivery through an endpoint's breaker that is not closed, as its probe, or
    /// puts it off (with the endpoint's other waiting deliveries) until the next probe, its
    /// attempt not spent.
    async fn pass_breaker(
        &self,
        endpoint: &WebhookEndpoint,
        event_id: Uuid,
    ) -> Result<(), JobError> {
        let now = orderly_domain::now();
        let admission = self
            .store
            .admit_webhook_delivery(endpoint.id, now, &self.settings.breaker)
            .await
            .map_err(transient("reading the endpoint's breaker"))?;
        match admission {
            None | Some(Admission::Send) => Ok(()),
            Some(Admission::Probe { .. }) => {
                tracing::info!(endpoint_id = %endpoint.id, %event_id, "webhook breaker half-open: this delivery is the probe");
                count_transition(endpoint.id, BreakerState::HalfOpen);
                Ok(())
            }
            Some(Admission::Wait { until }) => {
                self.hold_deliveries(endpoint.id, until).await;
                Err(JobError::Snooze(
                    Duration::try_from(until - now).unwrap_or_default(),
                ))
            }
        }
    }

    /// Counts and logs a change of the endpoint's breaker; an opened breaker puts off the
    /// endpoint's waiting deliveries until its probe, a closed one brings them forward.
    async fn after_transition(
        &self,
        endpoint: &WebhookEndpoint,
        transition: Transition,
        breaker: &Breaker,
        held_until: Option<OffsetDateTime>,
    ) {
        let id = endpoint.id;
        count_transition(id, transition.to);
        match transition.to {
            BreakerState::Open => {
                tracing::warn!(endpoint_id = %id, url = %endpoint.url, failures = breaker.consecutive_failures, next_probe_at = ?breaker.probe_at, "webhook breaker open: deliveries to the endpoint wait");
                if let Some(until) = breaker.probe_at {
                    self.hold_deliveries(id, until).await;
                }
            }
            BreakerState::Closed => {
                tracing::info!(endpoint_id = %id, url = %endpoint.url, "webhook breaker closed: deliveries to the endpoint resume");
                let until = held_until.unwrap_or_else(orderly_domain::now);
                match self
                    .store
                    .queue()
                    .release_partition(kinds::DeliverWebhook::NAME, &id.to_string(), until)
                    .await
                {
                    Ok(released) => {
                        tracing::info!(endpoint_id = %id, released, "waiting deliveries brought forward");
                    }
                    Err(e) => {
                        tracing::warn!(endpoint_id = %id, error = %orderly_db::cause_chain(&e), "bringing the waiting deliveries forward failed; they go when they were put off to");
                    }
                }
            }
            BreakerState::HalfOpen => {}
        }
    }

    /// Puts off the endpoint's waiting deliveries until `until` (the breaker's next probe).
    async fn hold_deliveries(&self, endpoint: Uuid, until: OffsetDateTime) {
        if let Err(e) = self
            .store
            .queue()
            .hold_partition(kinds::DeliverWebhook::NAME, &endpoint.to_string(), until)
            .await
        {
            tracing::warn!(endpoint_id = %endpoint, error = %orderly_db::cause_chain(&e), "putting off the deliveries of an endpoint whose breaker is open failed; each waits as it is claimed");
        }
    }

    /// The endpoint and the event of a delivery; `None` (the delivery dropped) when the
    /// endpoint was deleted or is disabled.
    async fn load(
        &self,
        endpoint_id: Uuid,
        event_id: Uuid,
    ) -> Result<Option<(WebhookEndpoint, OutboxRecord)>, JobError> {
        let Some(endpoint) = self
            .store
            .webhook(endpoint_id)
            .await
            .map_err(transient("loading the endpoint"))?
        else {
            tracing::info!(%endpoint_id, %event_id, "webhook endpoint deleted; delivery dropped");
            return Ok(None);
        };
        if endpoint.disabled_at.is_some() {
            tracing::info!(%endpoint_id, %event_id, "webhook endpoint disabled; delivery dropped");
            return Ok(None);
        }
        let event = self
            .store
            .outbox_event(event_id)
            .await
            .map_err(transient("loading the event"))?
            .ok_or_else(|| JobError::Permanent(format!("event {event_id} no longer exists")))?;
        Ok(Some((endpoint, event)))
    }

    /// What follows a failed attempt: the endpoint disabled (it answered `410 Gone`, or has
    /// failed for `webhooks.disable_after`), else a retry on the schedule, or giving up at its
    /// end.
    async fn after_failure(&self, endpoint: &WebhookEndpoint, failed: FailedAttempt) -> JobError {
        let FailedAttempt {
            failure,
            error,
            attempt,
            attempts_before,
            failing_since,
            at: now,
        } = failed;
        if let Failure::Status { status: 410, .. } = failure {
            return match self
                .disable(endpoint, "the endpoint answered 410 Gone", now)
                .await
            {
                Ok(()) => JobError::Permanent("410 Gone: the endpoint is disabled".into()),
                Err(e) => e,
            };
        }
        if let Some(since) = failing_since
            && now - since >= self.settings.disable_after
        {
            let reason = format!(
                "no successful delivery since {} ({} days)",
                since.date(),
                self.settings.disable_after.as_secs() / 86_400
            );
            return match self.disable(endpoint, &reason, now).await {
                Ok(()) => JobError::Permanent(format!("{error}; the endpoint is disabled")),
                Err(e) => e,
            };
        }
        let retry_after = match failure {
            Failure::Status { retry_after, .. } => retry_after,
            Failure::Blocked | Failure::Transport => None,
        };
        // A redelivery by hand starts the schedule afresh after the attempts before it.
        let failed = u32::try_from(i64::from(attempt) - attempts_before).unwrap_or(u32::MAX);
        match retry_delay(&self.settings.retry_schedule, failed, retry_after, jitter()) {
            Some(after) => JobError::RetryAfter { error, after },
            None => JobError::Permanent(format!("{error}; gave up after {attempt} attempts")),
        }
    }

    /// Disables the endpoint and queues the notice to the operators (once per disabling).
    async fn disable(
        &self,
        endpoint: &WebhookEndpoint,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<(), JobError> {
        let disabled = self
            .store
            .disable_webhook(endpoint.id, reason)
            .await
            .map_err(transient("disabling the endpoint"))?;
        if !disabled {
            return Ok(());
        }
        tracing::warn!(endpoint_id = %endpoint.id, url = %endpoint.url, reason, "webhook endpoint disabled");
        metrics::counter!("webhook_endpoints_disabled_total").increment(1);
        let notice: NewJob = notice_job(
            &format!("endpoint.disabled:{}:{}", endpoint.id, now.unix_timestamp()),
            &format!("Webhook endpoint disabled: {}", endpoint.url),
            &format!(
                "orderly stopped sending webhooks to an endpoint.\n\n\
                 Endpoint: {}\nURL: {}\nDescription: {}\nReason: {reason}\nDisabled at: {now}\n\n\
                 Events are not queued for it while it is disabled. When the receiver is \
                 fixed, enable it again with\n  PATCH /v1/webhooks/{} {{\"enabled\": true}}\n\
                 and send missed events again from /v1/webhooks/{}/deliveries.\n",
                endpoint.id, endpoint.url, endpoint.description, endpoint.id, endpoint.id
            ),
        );
        self.store
            .queue()
            .enqueue(&[notice])
            .await
            .map_err(transient("queueing the operator notice"))?;
        Ok(())
    }
}

/// An attempt as it is recorded, and the failure, if any, that decides what happens next.
struct Verdict {
    outcome: AttemptOutcome,
    status: Option<u16>,
    excerpt: Option<String>,
    error: Option<String>,
    failure: Option<Failure>,
}

impl Verdict {
    fn of(result: Result<Answer, SendError>) -> Self {
        let failed = |outcome, error, failure| Self {
            outcome,
            status: None,
            excerpt: None,
            error: Some(error),
            failure: Some(failure),
        };
        match result {
            Ok(answer) if (200..300).contains(&answer.status) => Self {
                outcome: AttemptOutcome::Succeeded,
                status: Some(answer.status),
                excerpt: Some(answer.excerpt),
                error: None,
                failure: None,
            },
            Ok(answer) => Self {
                outcome: AttemptOutcome::Failed,
                status: Some(answer.status),
                excerpt: Some(answer.excerpt),
                error: Some(format!("answered {}", answer.status)),
                failure: Some(Failure::Status {
                    status: answer.status,
                    retry_after: answer.retry_after,
                }),
            },
            Err(SendError::Blocked(why)) => failed(AttemptOutcome::Blocked, why, Failure::Blocked),
            Err(SendError::Transport(why)) => {
                failed(AttemptOutcome::Failed, why, Failure::Transport)
            }
        }
    }
}

fn jitter_u32() -> u32 {
    Uuid::new_v4().as_u128() as u32
}

/// A number in `[0, 1)`.
fn jitter() -> f64 {
    f64::from(jitter_u32()) / (f64::from(u32::MAX) + 1.0)
}
