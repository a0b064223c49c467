//! How webhook endpoints and their delivery attempts look to clients.

use orderly_domain::breaker::{Breaker, BreakerState};
use orderly_storage::{WebhookAttempt, WebhookEndpoint};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// A webhook endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookResource {
    pub id: Uuid,
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// The signing secret (`whsec_…`): only in the answers to create and rotate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Until when the secret before the last rotation also signs.
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub previous_secret_expires_at: Option<OffsetDateTime>,
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub disabled_at: Option<OffsetDateTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// The first failed attempt since the last success.
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub failing_since: Option<OffsetDateTime>,
    /// The endpoint's circuit breaker, shared by every worker.
    pub breaker: BreakerResource,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// An endpoint's circuit breaker: `closed` (deliveries go), `open` (they wait, spending no
/// attempts, until `next_probe_at`) or `half_open` (one delivery is probing the endpoint).
#[derive(Debug, Serialize, ToSchema)]
pub struct BreakerResource {
    #[schema(pattern = "^(closed|open|half_open)$")]
    pub state: &'static str,
    /// Failed attempts since the last success.
    pub consecutive_failures: u32,
    /// Since when it has been open (or probing); absent while closed.
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub opened_at: Option<OffsetDateTime>,
    /// Open: when the next probe may go. Half-open: when the probe in flight is given up.
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub next_probe_at: Option<OffsetDateTime>,
}

impl From<Breaker> for BreakerResource {
    fn from(breaker: Breaker) -> Self {
        let closed = breaker.state == BreakerState::Closed;
        Self {
            state: breaker.state.as_str(),
            consecutive_failures: breaker.consecutive_failures,
            opened_at: breaker.opened_at.filter(|_| !closed),
            next_probe_at: breaker.probe_at.filter(|_| !closed),
        }
    }
}

impl WebhookResource {
    pub fn new(endpoint: WebhookEndpoint, show_secret: bool) -> Self {
        let now = orderly_domain::now();
        Self {
            id: endpoint.id,
            url: endpoint.url,
            description: endpoint.description,
            event_types: endpoint.event_types,
            enabled: endpoint.disabled_at.is_none(),
            secret: show_secret.then_some(endpoint.secret),
            previous_secret_expires_at: endpoint.previous_expires_at.filter(|at| *at > now),
            disabled_at: endpoint.disabled_at,
            disabled_reason: endpoint.disabled_reason,
            failing_since: endpoint.failing_since,
            breaker: endpoint.breaker.into(),
            created_at: endpoint.created_at,
            updated_at: endpoint.updated_at,
        }
    }
}

/// One page of endpoints.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookPage {
    pub data: Vec<WebhookResource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// One delivery attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptResource {
    pub id: i64,
    pub event_id: Uuid,
    pub event_type: String,
    /// 1 for the first try of this event at this endpoint.
    pub attempt: i32,
    /// `succeeded`, `failed`, or `blocked` (the target resolved to a forbidden address).
    pub outcome: String,
    /// The HTTP status answered, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_status: Option<i32>,
    pub latency_ms: i64,
    /// The first bytes of the answer's body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<WebhookAttempt> for AttemptResource {
    fn from(a: WebhookAttempt) -> Self {
        Self {
            id: a.id,
            event_id: a.event_id,
            event_type: a.event_type,
            attempt: a.attempt,
            outcome: a.outcome,
            response_status: a.response_status,
            latency_ms: a.latency_ms,
            response_body: a.response_excerpt,
            error: a.error,
            created_at: a.created_at,
        }
    }
}

/// One page of attempts, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptPage {
    pub data: Vec<AttemptResource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A delivery queued by hand.
#[derive(Debug, Serialize, ToSchema)]
pub struct Redelivery {
    pub event_id: Uuid,
    /// The job that will deliver it (see `/v1/jobs/{id}`).
    pub job_id: i64,
}

/// A replay, queued.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayResource {
    /// Events to be sent again: `queued` + `brought_forward` + `in_flight`.
    pub events: u64,
    /// Given up on: a delivery queued anew, with a fresh retry schedule.
    pub queued: u64,
    /// Waiting for a retry: brought forward to now, not queued twice.
    pub brought_forward: u64,
    /// Being sent at this moment: left to finish.
    pub in_flight: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
}
