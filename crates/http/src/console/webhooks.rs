//! Webhooks: every endpoint with the success ratio of its last 100 attempts; an endpoint's
//! page with its circuit breaker and deliveries (status, the answer's excerpt), redelivery of
//! one, replaying what it missed over a recent period, enabling a disabled endpoint, and
//! rotating its secret (the new secret is shown once, on the answer to the rotation, never
//! again).

use axum::extract::State;
use axum::response::Response;
use maud::html;
use orderly_service::{EndpointHealth, WebhookChange};

use orderly_domain::{FieldError, ValidationErrors};

use super::extract::{Path, Query};
use super::layout::{
    Nav, NoticeQuery, PageError, action_button, done, notice_text, page, time_ago, when,
};
use super::order_changes::ChangeForm;
use super::session::{Action, Session};
use crate::AppState;
use crate::error::ApiError;
use crate::webhooks::{AttemptResource, BreakerResource, WebhookResource};

fn state_badge(endpoint: &WebhookResource) -> maud::Markup {
    html! {
        @if !endpoint.enabled {
            span.badge.warn { "disabled" }
        } @else if endpoint.breaker.state != "closed" {
            span.badge.warn { "breaker " (endpoint.breaker.state.replace('_', "-")) }
        } @else if endpoint.failing_since.is_some() {
            span.badge.warn { "failing" }
        } @else {
            span.badge { "enabled" }
        }
    }
}

/// The breaker as the endpoint's page states it.
fn breaker_facts(breaker: &BreakerResource) -> maud::Markup {
    html! {
        span #breaker-state { (breaker.state.replace('_', "-")) }
        ", " (breaker.consecutive_failures) " failures in a row"
        @if let Some(opened) = breaker.opened_at { "; open since " (when(opened)) }
        @if let Some(probe) = breaker.next_probe_at { "; next probe " (time_ago(probe)) }
    }
}

/// The form that replays what the endpoint missed over a period offered.
fn replay_form(session: &Session, here: &str) -> maud::Markup {
    html! {
        h2 { "Replay missed events" }
        form.replay method="post" action={(here) "/replay"} data-confirm="Send this endpoint again every event it missed in that period?" {
            (session.csrf_field())
            label {
                "Every event it missed in the last "
                select name="hours" {
                    @for (hours, words) in REPLAY_PERIODS {
                        option value=(hours) selected[*hours == 24] { (words) }
                    }
                }
            }
            button type="submit" { "Replay" }
        }
    }
}

pub(crate) async fn list(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let endpoints = state.services.webhooks_with_health(100).await?;
    let notice = notice_text(q.notice.as_deref(), None);
    Ok(page(
        "Webhooks",
        Nav::Webhooks,
        Some(&session),
        notice.as_deref(),
        html! {
            @if endpoints.is_empty() {
                p.hint { "No endpoint is registered (POST /v1/webhooks)." }
            } @else {
                table.endpoints {
                    thead { tr { th { "Endpoint" } th { "Events" } th { "State" } th.num { "Recent success" } } }
                    tbody {
                        @for health in &endpoints {
                            @let endpoint = &WebhookResource::new(health.endpoint.clone(), false);
                            tr {
                                td { a href={"/console/webhooks/" (endpoint.id)} { (endpoint.url) } }
                                td { (endpoint.event_types.join(", ")) }
                                td { (state_badge(endpoint)) }
                                td.num {
                                    @if health.attempts == 0 { "–" } @else {
                                        (format!("{:.0} %", health.succeeded as f64 * 100.0 / health.attempts as f64)) " of " (health.attempts)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}

async fn endpoint_page(
    state: &AppState,
    session: &Session,
    id: uuid::Uuid,
    notice: Option<String>,
    new_secret: Option<&str>,
) -> Result<Response, PageError> {
    let endpoint = state
        .services
        .webhook(id)
        .await?
        .ok_or(ApiError::NotFound("webhook"))?;
    let attempts: Vec<AttemptResource> = (state.services.webhook_attempts(id, None, 50).await?)
        .into_iter()
        .map(AttemptResource::from)
        .collect();
    let EndpointHealth {
        endpoint,
        succeeded,
        attempts: counted,
    } = state.services.endpoint_health(endpoint).await?;
    // As the API shows it: the secret never.
    let endpoint = WebhookResource::new(endpoint, false);
    let here = format!("/console/webhooks/{id}");
    Ok(page(
        &format!("Webhook {}", endpoint.url),
        Nav::Webhooks,
        Some(session),
        notice.as_deref(),
        html! {
            @if let Some(secret) = new_secret {
                div.secret role="alert" {
                    p { "The new signing secret, shown this once. The old one keeps signing for the rotation's grace period." }
                    pre { code #new-secret { (secret) } }
                }
            }
            section.facts {
                dl {
                    dt { "URL" } dd { code { (endpoint.url) } }
                    dt { "State" } dd #endpoint-state { (state_badge(&endpoint)) }
                    @if let Some(reason) = &endpoint.disabled_reason { dt { "Disabled because" } dd { (reason) } }
                    @if let Some(since) = endpoint.failing_since { dt { "Failing since" } dd { (when(since)) } }
                    dt { "Circuit breaker" } dd #breaker { (breaker_facts(&endpoint.breaker)) }
                    dt { "Events" } dd { (endpoint.event_types.join(", ")) }
                    dt { "Recent success" } dd { (succeeded) " of the last " (counted) " attempts" }
                    @if !endpoint.description.is_empty() { dt { "Description" } dd { (endpoint.description) } }
                }
                div.actions {
                    @if !endpoint.enabled {
                        (action_button(session, &format!("{here}/enable"), "Enable", Some("Enable this endpoint? Events are sent to it again.")))
                    }
                    (action_button(session, &format!("{here}/rotate-secret"), "Rotate secret", Some("Rotate this endpoint's signing secret? The new one is shown once.")))
                }
            }
            @if endpoint.enabled { (replay_form(session, &here)) }
            h2 { "Deliveries" }
            @if attempts.is_empty() {
                p.hint { "No delivery was attempted." }
            } @else {
                table.deliveries {
                    thead { tr { th { "When" } th { "Event" } th.num { "Attempt" } th { "Outcome" } th.num { "Status" } th.num { "Latency" } th { "Answer" } th {} } }
                    tbody {
                        @for attempt in &attempts {
                            tr data-attempt=(attempt.id) {
                                td { (time_ago(attempt.created_at)) }
                                td { (attempt.event_type) }
                                td.num { (attempt.attempt) }
                                td { span.badge.warn[attempt.outcome != "succeeded"] { (attempt.outcome) } }
                                td.num { (attempt.response_status.map(|s| s.to_string()).unwrap_or_default()) }
                                td.num { (attempt.latency_ms) " ms" }
                                td.excerpt { (attempt.response_body.as_deref().or(attempt.error.as_deref()).unwrap_or("")) }
                                td {
                                    @if endpoint.enabled {
                                        (action_button(session, &format!("{here}/deliveries/{}/redeliver", attempt.id), "Redeliver", None))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}

/// The query of an endpoint's page: a notice, with the count it speaks of.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct EndpointQuery {
    notice: Option<String>,
    n: Option<u64>,
}

pub(crate) async fn show(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<EndpointQuery>,
) -> Result<Response, PageError> {
    let id = crate::webhooks::parse_id(&id)?;
    endpoint_page(
        &state,
        &session,
        id,
        notice_text(q.notice.as_deref(), q.n),
        None,
    )
    .await
}

/// The periods the console replays, in hours, as offered.
const REPLAY_PERIODS: &[(u32, &str)] = &[
    (1, "hour"),
    (6, "6 hours"),
    (24, "24 hours"),
    (72, "3 days"),
    (168, "7 days"),
];

/// Replays what the endpoint missed in the period chosen, by the API's rule.
pub(crate) async fn replay(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: ChangeForm,
) -> Result<Response, PageError> {
    let id = crate::webhooks::parse_id(&id)?;
    let hours = form
        .get("hours")
        .and_then(|h| h.parse::<u32>().ok())
        .filter(|h| REPLAY_PERIODS.iter().any(|(offered, _)| offered == h))
        .ok_or_else(|| {
            ApiError::Validation(ValidationErrors::single(FieldError::new(
                "hours",
                "invalid_choice",
                "must be one of the periods offered",
            )))
        })?;
    let since = orderly_domain::now() - time::Duration::hours(i64::from(hours));
    let replay = crate::webhooks::replay_missed(&state, id, since).await?;
    form.session
        .audit(
            &state,
            "webhook.replay",
            &format!("webhook:{id}"),
            Some(&format!(
                "the last {hours} h: {} events ({} queued, {} brought forward, {} in flight)",
                replay.events, replay.queued, replay.brought_forward, replay.in_flight
            )),
        )
        .await?;
    Ok(done(
        &format!("/console/webhooks/{id}?n={}", replay.events),
        "webhook_replayed",
    ))
}

pub(crate) async fn enable(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Action(session): Action,
) -> Result<Response, PageError> {
    let id = crate::webhooks::parse_id(&id)?;
    state
        .services
        .change_webhook(
            id,
            &WebhookChange {
                enabled: Some(true),
                ..WebhookChange::default()
            },
        )
        .await?
        .ok_or(ApiError::NotFound("webhook"))?;
    session
        .audit(&state, "webhook.enable", &format!("webhook:{id}"), None)
        .await?;
    Ok(done(&format!("/console/webhooks/{id}"), "webhook_enabled"))
}

pub(crate) async fn rotate_secret(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Action(session): Action,
) -> Result<Response, PageError> {
    let id = crate::webhooks::parse_id(&id)?;
    let endpoint = state
        .services
        .rotate_webhook_secret(id)
        .await?
        .ok_or(ApiError::NotFound("webhook"))?;
    session
        .audit(
            &state,
            "webhook.rotate_secret",
            &format!("webhook:{id}"),
            None,
        )
        .await?;
    // Answered with the page itself (not a redirect): the secret appears in this answer only.
    endpoint_page(&state, &session, id, None, Some(&endpoint.secret)).await
}

pub(crate) async fn redeliver(
    State(state): State<AppState>,
    Path((id, attempt)): Path<(String, String)>,
    Action(session): Action,
) -> Result<Response, PageError> {
    let id = crate::webhooks::parse_id(&id)?;
    let attempt: i64 = attempt
        .parse()
        .map_err(|_| ApiError::NotFound("delivery attempt"))?;
    let queued = crate::webhooks::queue_redelivery(&state, id, attempt).await?;
    session
        .audit(
            &state,
            "webhook.redeliver",
            &format!("webhook:{id}"),
            Some(&format!("event {}, job {}", queued.event_id, queued.job_id)),
        )
        .await?;
    Ok(done(
        &format!("/console/webhooks/{id}"),
        "redelivery_queued",
    ))
}
