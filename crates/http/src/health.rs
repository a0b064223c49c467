//! `/healthz` (the process is alive) and `/readyz` (its dependencies answer, and it is not
//! draining), for load balancers and orchestrators. Neither needs a key.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{Explained, cause_chain};

/// How long a dependency may take to answer a readiness probe.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

/// Whether this process is draining for shutdown. Once [`Drain::begin`] is called, `/readyz`
/// answers `503` so load balancers stop sending new requests, while requests that still arrive
/// are served, each answered with `Connection: close` so keep-alive clients reconnect to
/// another process.
#[derive(Debug, Clone, Default)]
pub struct Drain(Arc<AtomicBool>);

impl Drain {
    /// Marks the process as draining; there is no way back.
    pub fn begin(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Liveness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    status: &'static str,
}

/// The process is up and serving HTTP.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "Alive", body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness, and the state of each dependency.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` when every dependency is up; `degraded` when only optional ones (the cache)
    /// are down, still serving; `unavailable` when a required one (the database) is down;
    /// `draining` when the process is shutting down (send it no new requests).
    pub(crate) status: &'static str,
    /// One entry per dependency, by name (`database`, `cache`, `queue`, and `event_relay`
    /// when events are relayed to NATS).
    pub(crate) checks: BTreeMap<&'static str, Check>,
}

/// The state of one dependency.
#[derive(Debug, Serialize, ToSchema)]
pub struct Check {
    /// `up`, `down`, or for the cache `degraded` (reads go to the database) or `disabled`;
    /// for the event relay `degraded` (events wait in the outbox).
    pub(crate) status: &'static str,
    /// Which implementation answered, such as `sqlite`, `postgres`, `memory` or `redis`.
    pub(crate) backend: &'static str,
    /// How long the check took.
    pub(crate) latency_ms: f64,
    /// Why it is down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    /// For the queue: how long the oldest due job has waited to start, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    oldest_due_job_age_secs: Option<f64>,
    /// For the event relay: how old the oldest event not yet relayed is, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    relay_lag_secs: Option<f64>,
}

/// Ready to serve: the database answers and the process is not draining. `503` when either
/// fails. A cache that is down makes the service `degraded`, not unavailable: reads then go to
/// the database.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "A required dependency is down, or the process is draining", body = Readiness),
    ))]
async fn readyz(
    State(state): State<AppState>,
) -> (StatusCode, axum::Extension<Explained>, Json<Readiness>) {
    let (status, body) = readiness(&state).await;
    // A 503 here is the answer itself, its cause logged above when a dependency is down.
    (status, axum::Extension(Explained), Json(body))
}

/// The readiness `/readyz` answers with (the console's overview shows it too).
pub(crate) async fn readiness(state: &AppState) -> (StatusCode, Readiness) {
    if state.drain.is_draining() {
        // Answered at once, without asking the dependencies: a draining process is out.
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Readiness {
                status: "draining",
                checks: BTreeMap::new(),
            },
        );
    }
    let started = std::time::Instant::now();
    let database = match tokio_timeout(state.store.ping()).await {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(cause_chain(&e)),
        Err(_) => Some(format!("no answer within {CHECK_TIMEOUT:?}")),
    };
    let latency_ms = started.elapsed().as_secs_f64() * 1_000.0;
    if let Some(error) = &database {
        tracing::warn!(%error, "readiness: database is down");
    }
    let ready = database.is_none();
    let check = Check {
        status: if ready { "up" } else { "down" },
        backend: state.store.kind().as_str(),
        latency_ms: (latency_ms * 1_000.0).round() / 1_000.0,
        error: database,
        oldest_due_job_age_secs: None,
        relay_lag_secs: None,
    };
    let cache = cache_check(state).await;
    let queue = queue_check(state).await;
    let relay = relay_check(state).await;
    let degraded = cache.status == "degraded" || relay.as_ref().is_some_and(|r| r.status != "up");
    let body = Readiness {
        status: match (ready, degraded) {
            (false, _) => "unavailable",
            (true, true) => "degraded",
            (true, false) => "ready",
        },
        checks: BTreeMap::from([("database", check), ("cache", cache), ("queue", queue)]),
    };
    let mut body = body;
    if let Some(relay) = relay {
        body.checks.insert("event_relay", relay);
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, body)
}

async fn cache_check(state: &AppState) -> Check {
    let Some(cache) = &state.cache else {
        return Check {
            status: "disabled",
            backend: "none",
            latency_ms: 0.0,
            error: None,
            oldest_due_job_age_secs: None,
            relay_lag_secs: None,
        };
    };
    match cache.redis_health().await {
        None => Check {
            status: "up",
            backend: "memory",
            latency_ms: 0.0,
            error: None,
            oldest_due_job_age_secs: None,
            relay_lag_secs: None,
        },
        Some(health) => {
            if let Some(error) = &health.error {
                tracing::warn!(%error, "readiness: redis is down; reads go to the database");
            }
            Check {
                status: if health.up { "up" } else { "degraded" },
                backend: "redis",
                latency_ms: (health.latency.as_secs_f64() * 1e6).round() / 1e3,
                error: health.error,
                oldest_due_job_age_secs: None,
                relay_lag_secs: None,
            }
        }
    }
}

/// The queue's backlog: informational (a backlog is the workers' problem, not a reason to
/// stop sending this process traffic), exported as `jobs_oldest_due_age_seconds` too.
async fn queue_check(state: &AppState) -> Check {
    let started = std::time::Instant::now();
    let (status, age, error) = match tokio_timeout(state.store.queue().oldest_due_job_age()).await {
        Ok(Ok(age)) => ("up", Some(age.as_secs_f64()), None),
        Ok(Err(e)) => ("down", None, Some(cause_chain(&e))),
        Err(_) => (
            "down",
            None,
            Some(format!("no answer within {CHECK_TIMEOUT:?}")),
        ),
    };
    if let Some(age) = age {
        metrics::gauge!("jobs_oldest_due_age_seconds").set(age);
    }
    Check {
        status,
        backend: state.store.kind().as_str(),
        latency_ms: (started.elapsed().as_secs_f64() * 1e6).round() / 1e3,
        error,
        oldest_due_job_age_secs: age.map(|a| (a * 1e3).round() / 1e3),
        relay_lag_secs: None,
    }
}

/// The relay of events to NATS, when there is one: `degraded` while it fails or when the
/// oldest event not yet relayed is older than the threshold (no worker relays, say). Never a
/// reason to stop serving: the events wait in the outbox.
async fn relay_check(state: &AppState) -> Option<Check> {
    let threshold = state.settings.relay_lag_threshold?;
    let started = std::time::Instant::now();
    let (status, lag, error) =
        match tokio_timeout(state.store.relay_state(orderly_storage::NATS_RELAY)).await {
            Ok(Ok(relay)) => {
                let lag = relay.oldest_waiting.map_or(0.0, |at| {
                    (orderly_domain::now() - at).as_seconds_f64().max(0.0)
                });
                let error = match (relay.last_error, relay.failing_since) {
                    (Some(error), _) => Some(error),
                    (None, Some(_)) => Some("failing".to_owned()),
                    (None, None) if lag > threshold.as_secs_f64() => {
                        Some(format!("the oldest event not yet relayed is {lag:.0}s old"))
                    }
                    (None, None) => None,
                };
                (
                    if error.is_some() { "degraded" } else { "up" },
                    Some(lag),
                    error,
                )
            }
            Ok(Err(e)) => ("degraded", None, Some(cause_chain(&e))),
            Err(_) => (
                "degraded",
                None,
                Some(format!("no answer within {CHECK_TIMEOUT:?}")),
            ),
        };
    Some(Check {
        status,
        backend: "nats",
        latency_ms: (started.elapsed().as_secs_f64() * 1e6).round() / 1e3,
        error,
        oldest_due_job_age_secs: None,
        relay_lag_secs: lag.map(|l| (l * 1e3).round() / 1e3),
    })
}

async fn tokio_timeout<F: Future>(future: F) -> Result<F::Output, tokio::time::error::Elapsed> {
    tokio::time::timeout(CHECK_TIMEOUT, future).await
}
