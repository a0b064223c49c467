//! `deliver_webhook`: one event to one endpoint, signed per Standard Webhooks, under the SSRF
//! guard, a per-endpoint concurrency bound and a time limit; every attempt is recorded, and
//! the endpoint's failure record decides between retrying, giving up and disabling it.

mod guard;
mod signature;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use orderly_domain::webhook::retry_delay;
use orderly_storage::{
    AttemptOutcome, Job, NewAttempt, NewJob, OutboxRecord, Store, WebhookEndpoint,
};
use reqwest::Url;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

pub use guard::{Blocked, GuardedResolver, check_resolved};
pub use signature::signature_header;

use crate::handler::{BoxFuture, JobError, JobHandler};
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
    /// Deliveries to one endpoint that one process runs at once.
    pub per_endpoint_concurrency: usize,
    /// An endpoint failing for this long without a success is disabled.
    pub disable_after: Duration,
    /// How much of a response body is read and kept with the attempt.
    pub response_excerpt_bytes: usize,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            allow_private: false,
            timeout: Duration::from_secs(15),
            retry_schedule: orderly_domain::webhook::RETRY_SCHEDULE.to_vec(),
            per_endpoint_concurrency: 4,
            disable_after: Duration::from_secs(5 * 86_400),
            response_excerpt_bytes: 2_048,
        }
    }
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
pub struct DeliverWebhook {
    store: Store,
    client: reqwest::Client,
    settings: Arc<WebhookSettings>,
    endpoints: EndpointSlots,
}

impl DeliverWebhook {
    pub fn new(store: Store, settings: WebhookSettings) -> Result<Self, String> {
        Ok(Self {
            store,
            client: http_client(&settings)?,
            endpoints: EndpointSlots::new(settings.per_endpoint_concurrency),
            settings: Arc::new(settings),
        })
    }
}

/// The client deliveries share: rustls with the webpki roots, no redirects (a redirect to an
/// internal address would slip past the guard), no proxy, and the guarded resolver.
fn http_client(settings: &WebhookSettings) -> Result<reqwest::Client, String> {
    let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS setup: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut builder = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("orderly-webhooks/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(settings.timeout)
        .pool_max_idle_per_host(settings.per_endpoint_concurrency);
    if !settings.allow_private {
        builder = builder.dns_resolver(GuardedResolver);
    }
    builder
        .build()
        .map_err(|e| format!("building the HTTP client: {e}"))
}

impl JobHandler for DeliverWebhook {
    fn run<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(self.deliver(job))
    }
}

fn arg(job: &Job, name: &str) -> Result<Uuid, JobError> {
    job.args
        .get(name)
        .and_then(|v| v.as_str())
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| JobError::Permanent(format!("args.{name} is missing or not an id")))
}

fn transient(what: &str) -> impl FnOnce(orderly_storage::StoreError) -> JobError + '_ {
    move |e| JobError::Transient(format!("{what}: {e}"))
}

impl DeliverWebhook {
    async fn deliver(&self, job: &Job) -> Result<(), JobError> {
        let event_id = arg(job, "event_id")?;
        let endpoint_id = arg(job, "endpoint_id")?;
        let Some(endpoint) = self
            .store
            .webhook(endpoint_id)
            .await
            .map_err(transient("loading the endpoint"))?
        else {
            tracing::info!(%endpoint_id, %event_id, "webhook endpoint deleted; delivery dropped");
            return Ok(());
        };
        if endpoint.disabled_at.is_some() {
            tracing::info!(%endpoint_id, %event_id, "webhook endpoint disabled; delivery dropped");
            return Ok(());
        }
        let event = self
            .store
            .outbox_event(event_id)
            .await
            .map_err(transient("loading the event"))?
            .ok_or_else(|| JobError::Permanent(format!("event {event_id} no longer exists")))?;

        // Busy endpoint: put the run off rather than hold a worker slot waiting.
        let Some(_slot) = self
            .endpoints
            .acquire(endpoint_id, Duration::from_secs(1))
            .await
        else {
            return Err(JobError::Snooze(Duration::from_millis(
                500 + u64::from(jitter_u32() % 2_000),
            )));
        };
        let attempt = self
            .store
            .count_webhook_attempts(endpoint_id, event_id)
            .await
            .map_err(transient("counting attempts"))?
            + 1;

        let started = Instant::now();
        let result = self.send(&endpoint, &event).await;
        let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let now = orderly_domain::now();
        let Verdict {
            outcome,
            status,
            excerpt,
            error,
            failure,
        } = Verdict::of(result);
        let failing_since = self
            .store
            .record_webhook_attempt(&NewAttempt {
                endpoint_id,
                event_id,
                event_type: event.kind.clone(),
                attempt: i32::try_from(attempt).unwrap_or(i32::MAX),
                outcome,
                response_status: status.map(i32::from),
                latency_ms,
                response_excerpt: excerpt,
                error: error.clone(),
                at: now,
            })
            .await
            .map_err(transient("recording the attempt"))?;
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

        if let Failure::Status { status: 410, .. } = failure {
            self.disable(&endpoint, "the endpoint answered 410 Gone", now)
                .await?;
            return Err(JobError::Permanent(
                "410 Gone: the endpoint is disabled".into(),
            ));
        }
        if let Some(since) = failing_since
            && now - since >= self.settings.disable_after
        {
            let reason = format!(
                "no successful delivery since {} ({} days)",
                since.date(),
                self.settings.disable_after.as_secs() / 86_400
            );
            self.disable(&endpoint, &reason, now).await?;
            return Err(JobError::Permanent(format!(
                "{error}; the endpoint is disabled"
            )));
        }
        let retry_after = match failure {
            Failure::Status { retry_after, .. } => retry_after,
            Failure::Blocked | Failure::Transport => None,
        };
        // A redelivery by hand starts the schedule afresh after the attempts before it.
        let attempts_before = job
            .args
            .get("attempts_before")
            .and_then(|v| v.as_i64())
            .unwrap_or(0);
        let failed = u32::try_from(attempt - attempts_before).unwrap_or(u32::MAX);
        match retry_delay(&self.settings.retry_schedule, failed, retry_after, jitter()) {
            Some(after) => Err(JobError::RetryAfter { error, after }),
            None => Err(JobError::Permanent(format!(
                "{error}; gave up after {attempt} attempts"
            ))),
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
            .enqueue(&[notice])
            .await
            .map_err(transient("queueing the operator notice"))?;
        Ok(())
    }

    /// One POST, within the time limit, reading at most the excerpt's worth of the answer.
    async fn send(
        &self,
        endpoint: &WebhookEndpoint,
        event: &OutboxRecord,
    ) -> Result<Answer, SendError> {
        let url = Url::parse(&endpoint.url)
            .map_err(|e| SendError::Transport(format!("bad endpoint URL: {e}")))?;
        if !self.settings.allow_private {
            if url.scheme() != "https" {
                return Err(SendError::Blocked("only https URLs are allowed".into()));
            }
            guard::check_literal(&url).map_err(|b| SendError::Blocked(b.0))?;
        }
        let body = event_body(event);
        let now = orderly_domain::now();
        let id = event.id.to_string();
        let signature = signature_header(
            &endpoint.signing_secrets(now),
            &id,
            now.unix_timestamp(),
            &body,
        );
        let exchange = async {
            let mut response = self
                .client
                .post(url)
                .header(CONTENT_TYPE, "application/json")
                .header("webhook-id", &id)
                .header("webhook-timestamp", now.unix_timestamp().to_string())
                .header("webhook-signature", signature)
                .body(body)
                .send()
                .await
                .map_err(SendError::from_request)?;
            let status = response.status().as_u16();
            let retry_after = retry_after(response.headers(), now);
            let limit = self.settings.response_excerpt_bytes;
            let mut read = Vec::with_capacity(limit.min(4_096));
            while read.len() < limit {
                match response.chunk().await {
                    Ok(Some(chunk)) => read.extend_from_slice(&chunk),
                    // The status is what counts; a body cut short changes nothing.
                    Ok(None) | Err(_) => break,
                }
            }
            read.truncate(limit);
            Ok(Answer {
                status,
                retry_after,
                excerpt: String::from_utf8_lossy(&read).into_owned(),
            })
        };
        match tokio::time::timeout(self.settings.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(SendError::Transport(format!(
                "timed out after {} s",
                self.settings.timeout.as_secs_f64()
            ))),
        }
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

/// What an endpoint answered.
struct Answer {
    status: u16,
    retry_after: Option<Duration>,
    excerpt: String,
}

enum SendError {
    Blocked(String),
    Transport(String),
}

impl SendError {
    fn from_request(error: reqwest::Error) -> Self {
        match guard::blocked_in(&error) {
            Some(why) => Self::Blocked(why),
            None => Self::Transport(orderly_storage::cause_chain(&error)),
        }
    }
}

/// The body every endpoint receives for `event`: the same bytes on every attempt.
pub fn event_body(event: &OutboxRecord) -> Vec<u8> {
    let timestamp = event
        .created_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    json!({ "type": event.kind, "timestamp": timestamp, "data": event.payload })
        .to_string()
        .into_bytes()
}

/// `Retry-After` as seconds or as an HTTP date.
fn retry_after(headers: &HeaderMap, now: OffsetDateTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let at = time::PrimitiveDateTime::parse(value, format)
        .ok()?
        .assume_utc();
    Some(Duration::try_from(at - now).unwrap_or(Duration::ZERO))
}

fn jitter_u32() -> u32 {
    Uuid::new_v4().as_u128() as u32
}

/// A number in `[0, 1)`.
fn jitter() -> f64 {
    f64::from(jitter_u32()) / (f64::from(u32::MAX) + 1.0)
}

/// Per-endpoint concurrency slots. The map holds only endpoints with a delivery in flight in
/// this process, so it is bounded by the webhook queue's concurrency.
#[derive(Debug, Clone)]
struct EndpointSlots {
    per_endpoint: usize,
    slots: Arc<Mutex<HashMap<Uuid, Arc<Semaphore>>>>,
}

impl EndpointSlots {
    fn new(per_endpoint: usize) -> Self {
        Self {
            per_endpoint: per_endpoint.max(1),
            slots: Arc::default(),
        }
    }

    /// A slot for `endpoint`, waiting at most `wait`.
    async fn acquire(&self, endpoint: Uuid, wait: Duration) -> Option<OwnedSemaphorePermit> {
        let semaphore = {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            // Forget endpoints nobody is using: only the map holds their semaphore.
            slots.retain(|_, s| Arc::strong_count(s) > 1);
            slots
                .entry(endpoint)
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_endpoint)))
                .clone()
        };
        tokio::time::timeout(wait, semaphore.acquire_owned())
            .await
            .ok()?
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_example_delivery_is_what_orderly_sends() {
        let readme = include_str!("../../../../README.md");
        let event = OutboxRecord {
            id: "019ac9b2-5b1e-7c4e-9a51-2f0d3c1e8b7a".parse().unwrap(),
            kind: "order.created".into(),
            payload: json!({
                "order_id": "019ac9b2-5a90-7d21-8c3f-6b2e4d1a9c05",
                "status": "pending",
                "email": "ana@example.com",
                "currency": "EUR",
                "total": 2500,
            }),
            created_at: time::macros::datetime!(2026-11-28 07:00:00.123456 UTC),
        };
        let body = event_body(&event);
        assert!(readme.contains(std::str::from_utf8(&body).unwrap()));
        let signature = signature_header(
            &["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
            &event.id.to_string(),
            1_795_852_800,
            &body,
        );
        assert!(readme.contains(&format!("webhook-signature: {signature}")));
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = time::macros::datetime!(2026-11-28 10:00:00 UTC);
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "120".parse().unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(120)));
        headers.insert(
            RETRY_AFTER,
            "Sat, 28 Nov 2026 10:01:30 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(90)));
        headers.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&headers, now), None);
    }

    #[tokio::test]
    async fn an_endpoint_gets_no_more_than_its_slots() {
        let slots = EndpointSlots::new(2);
        let endpoint = Uuid::now_v7();
        let first = slots.acquire(endpoint, Duration::from_millis(10)).await;
        let second = slots.acquire(endpoint, Duration::from_millis(10)).await;
        assert!(first.is_some() && second.is_some());
        assert!(
            slots
                .acquire(endpoint, Duration::from_millis(10))
                .await
                .is_none()
        );
        assert!(
            slots
                .acquire(Uuid::now_v7(), Duration::from_millis(10))
                .await
                .is_some()
        );
        drop(first);
        assert!(
            slots
                .acquire(endpoint, Duration::from_millis(10))
                .await
                .is_some()
        );
    }

    #[test]
    fn the_client_builds_with_and_without_the_guard() {
        for allow_private in [false, true] {
            let settings = WebhookSettings {
                allow_private,
                ..WebhookSettings::default()
            };
            assert!(http_client(&settings).is_ok());
        }
    }
}
