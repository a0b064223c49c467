//! Webhook endpoints under `/v1/webhooks` (admin): create (the secret is shown once), list,
//! read, change, rotate the secret, disable, delete; the delivery attempts of each, sending
//! an event again by hand, and replaying every event an endpoint missed since a time. Delivering is the worker's (`deliver_webhook`).

mod body;
mod resource;

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use orderly_domain::webhook::forbidden_address;
use orderly_domain::{FieldError, ValidationErrors};
use orderly_storage::{WebhookChange, WebhookEndpoint};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Authorized, ManageWebhooks};
use crate::error::{ApiError, Problem};
use crate::extract::{JsonBody, PathParams, QueryParams};
use crate::pagination::{next_cursor, page_limit, read_page};
pub use body::{CreateWebhook, ReplayWebhook, UpdateWebhook};
use resource::{AttemptPage, Redelivery, ReplayResource, WebhookPage};
pub(crate) use resource::{AttemptResource, BreakerResource, WebhookResource};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_webhook, list_webhooks))
        .routes(routes!(get_webhook, update_webhook, delete_webhook))
        .routes(routes!(rotate_secret))
        .routes(routes!(disable_webhook))
        .routes(routes!(list_deliveries))
        .routes(routes!(redeliver))
        .routes(routes!(replay))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct PageQuery {
    /// Page size, 1–100 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]{21}[AQgw]$")]
    cursor: Option<String>,
}

/// The query of the delivery listing, whose cursors are attempt ids.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct AttemptPageQuery {
    /// Page size, 1–100 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]{10}[AEIMQUYcgkosw048]$")]
    cursor: Option<String>,
}

pub(crate) fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound("webhook"))
}

/// Refuses a URL whose host resolves to an address webhooks may not reach. Names that do not
/// resolve (yet) are accepted: every delivery checks again.
async fn check_target(url: &str, allow_private: bool) -> Result<(), ApiError> {
    if allow_private {
        return Ok(());
    }
    let Some(host) = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
    else {
        return Ok(());
    };
    let lookup = tokio::net::lookup_host((host.trim_matches(['[', ']']), 443));
    let Ok(Ok(addrs)) = tokio::time::timeout(Duration::from_secs(2), lookup).await else {
        return Ok(());
    };
    for addr in addrs {
        if let Some(reason) = forbidden_address(addr.ip()) {
            return Err(ApiError::Validation(ValidationErrors::single(
                FieldError::new(
                    "url",
                    "forbidden_target",
                    format!("{host} resolves to {}, a {reason} address", addr.ip()),
                ),
            )));
        }
    }
    Ok(())
}

fn created(endpoint: WebhookEndpoint) -> Response {
    let mut headers = HeaderMap::new();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/webhooks/{}", endpoint.id)) {
        headers.insert(header::LOCATION, location);
    }
    (
        StatusCode::CREATED,
        headers,
        Json(WebhookResource::new(endpoint, true)),
    )
        .into_response()
}

/// Create an endpoint (admin). The answer holds the signing secret; it is not shown again.
#[utoipa::path(
    post, path = "/v1/webhooks", tag = "webhooks",
    request_body = CreateWebhook,
    responses(
        (status = 201, description = "Created; `secret` is shown only now", body = WebhookResource,
            headers(("Location" = String, description = "The endpoint's URL"))),
        (status = 422, description = "Invalid fields, or a URL webhooks may not reach", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
async fn create_webhook(
    _auth: Authorized<ManageWebhooks>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<CreateWebhook>,
) -> Result<Response, ApiError> {
    let allow_private = state.settings.webhooks_allow_private;
    let new = body.parse(allow_private).map_err(ApiError::Validation)?;
    check_target(&new.url, allow_private).await?;
    let endpoint = state.services.create_webhook(&new).await?;
    Ok(created(endpoint))
}

/// List endpoints in creation order (admin).
#[utoipa::path(
    get, path = "/v1/webhooks", tag = "webhooks",
    params(PageQuery),
    responses(
        (status = 200, description = "One page of endpoints", body = WebhookPage),
        (status = 400, description = "Invalid query parameters", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
async fn list_webhooks(
    _auth: Authorized<ManageWebhooks>,
    State(state): State<AppState>,
    QueryParams(query): QueryParams<PageQuery>,
) -> Result<Json<WebhookPage>, ApiError> {
    let mut errors = ValidationErrors::new();
    let (limit, after) = read_page(query.limit.as_deref(), query.cursor.as_deref(), &mut errors);
    let limit = page_limit(limit, errors)?;
    let endpoints = state.services.list_webhooks(after, limit.get()).await?;
    let next_cursor = next_cursor(&endpoints, limit, |e| e.id);
    Ok(Json(WebhookPage {
        data: endpoints
            .into_iter()
            .map(|e| WebhookResource::new(e, false))
            .collect(),
        next_cursor,
    }))
}

/// Read an endpoint (admin). The secret is not shown.
#[utoipa::path(
    get, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = Uuid, Path, description = "The endpoint id")),
    responses(
        (status = 200, description = "The endpoint", body = WebhookResource),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
async fn get_webhook(
    _auth: Authorized<ManageWebhooks>,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<WebhookResource>, ApiError> {
    let endpoint = state
        .services
        .webhook(parse_id(&id)?)
        .await?
        .ok_or(ApiError::NotFound("webhook"))?;
    Ok(Json(WebhookResource::new(endpoint, false)))
}

/// Change an endpoint's URL, event types, description, or whether it is enabled (admin).
#[utoipa::path(
    patch, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = Uuid, Path, description = "The endpoint id")),
    request_body = UpdateWebhook,
    responses(
        (status = 200, description = "The endpoint as changed", body = WebhookResource),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
async fn update_webhook(
    _auth: Authorized<ManageWebhooks>,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<UpdateWebhook>,
) -> Result<Json<WebhookResource>, ApiError> {
    let id = parse_id(&id)?;
    let allow_private = state.settings.webhooks_allow_private;
    let change = body.parse(allow_private).map_err(ApiError::Validation)?;
    if let Some(url) = &change.url {
        check_target(url, allow_private).await?;
    }
    change_webhook(&state, id, &change).await
}

async fn change_webhook(
    state: &AppState,
    id: Uuid,
    change: &WebhookChange,
) -> Result<Json<WebhookResource>, ApiError> {
    let endpoint = state
        .services
        .change_webhook(id, change)
        .await?
        .ok_or(ApiError::NotFound("webhook"))?;
    Ok(Json(WebhookResource::new(endpoint, false)))
}

/// Disable an endpoint (admin): no events are queued for it until it is enabled again.
#[utoipa::path(
    post, path = "/v1/webhooks/{id}/disable", tag = "webhooks",
    params(("id" = Uuid, Path, description = "The endpoint id")),
    responses(
        (status = 200, description = "The disabled endpoint", body = WebhookResource),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
async fn disable_webhook(
    _auth: Authorized<ManageWebhooks>,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<WebhookResource>, ApiError> {
    let change = WebhookChange {
        enabled: Some(false),
        ..WebhookChange::default()
    };
    change_webhook(&state, parse_id(&id)?, &change).await
}

/// Replace the signing secret (admin). The old secret keeps signing beside the new one for
/// the grace period (`webhooks.rotation_grace_hours`), so receivers can switch without losing
/// events. The answer holds the new secret; it is not shown again.
#[utoipa::path(
    post, path = "/v1/webhooks/{id}/rotate-secret", tag = "webhooks",
    params(("id" = Uuid, Path, description = "The endpoint id")),
    responses(
        (status = 200, description = "The endpoint with its new `secret`", body = WebhookResource),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
async fn rotate_secret(
    _auth: Authorized<ManageWebhooks>,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<WebhookResource>, ApiError> {
    let endpoint = state
        .services
        .rotate_webhook_secret(parse_id(&id)?)
        .await?
        .ok_or(ApiError::NotFound("webhook"))?;
    Ok(Json(WebhookResource::new(endpoint, true)))
}

/// Delete an endpoint with its delivery record (admin).
#[utoipa::path(
    delete, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = Uuid, Path, description = "The endpoint id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
async fn delete_webhook(
    _auth: Authorized<ManageWebhooks>,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    if !state.services.delete_webhook(id).await? {
        return Err(ApiError::NotFound("webhook"));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// List an endpoint's delivery attempts, newest first (admin).
#[utoipa::path(
    get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = Uuid, Path, description = "The endpoint id"), AttemptPageQuery),
    responses(
        (status = 200, description = "One page of attempts", body = AttemptPage),
        (status = 400, description = "Invalid query parameters", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
async fn list_deliveries(
    _auth: Authorized<ManageWebhooks>,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    QueryParams(query): QueryParams<AttemptPageQuery>,
) -> Result<Json<AttemptPage>, ApiError> {
    let id = parse_id(&id)?;
    let mut errors = ValidationErrors::new();
    let (limit, before) = read_page(query.limit.as_deref(), query.cursor.as_deref(), &mut errors);
    let limit = page_limit(limit, errors)?;
    if state.services.webhook(id).await?.is_none() {
        return Err(ApiError::NotFound("webhook"));
    }
    let attempts = state
        .services
        .webhook_attempts(id, before, limit.get())
        .await?;
    let next_cursor = next_cursor(&attempts, limit, |a| a.id);
    Ok(Json(AttemptPage {
        data: attempts.into_iter().map(AttemptResource::from).collect(),
        next_cursor,
    }))
}

/// Send an attempt's event to the endpoint again, with a fresh retry schedule (admin).
#[utoipa::path(
    post, path = "/v1/webhooks/{id}/deliveries/{attempt_id}/redeliver", tag = "webhooks",
    params(
        ("id" = Uuid, Path, description = "The endpoint id"),
        ("attempt_id" = i64, Path, description = "An attempt from the endpoint's deliveries"),
    ),
    responses(
        (status = 202, description = "Queued", body = Redelivery),
        (status = 404, description = "No such endpoint or attempt", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The endpoint is disabled", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
async fn redeliver(
    _auth: Authorized<ManageWebhooks>,
    State(state): State<AppState>,
    PathParams((id, attempt_id)): PathParams<(String, String)>,
) -> Result<(StatusCode, Json<Redelivery>), ApiError> {
    let id = parse_id(&id)?;
    let attempt_id: i64 = attempt_id
        .parse()
        .map_err(|_| ApiError::NotFound("delivery attempt"))?;
    let queued = queue_redelivery(&state, id, attempt_id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Redelivery {
            event_id: queued.event_id,
            job_id: queued.job_id,
        }),
    ))
}

/// Send again every event since a time that the endpoint missed (admin): each event with
/// attempts to it, none of which succeeded (given up, or failed and waiting for a retry). A
/// delivery waiting for its retry is brought forward, not queued twice; one being sent is left
/// to finish; the rest are queued with a fresh retry schedule. Asked twice, each event is
/// still sent once.
#[utoipa::path(
    post, path = "/v1/webhooks/{id}/replay", tag = "webhooks",
    params(("id" = Uuid, Path, description = "The endpoint id")),
    request_body = ReplayWebhook,
    responses(
        (status = 202, description = "Queued: how many events will be sent again", body = ReplayResource),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The endpoint is disabled", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
async fn replay(
    _auth: Authorized<ManageWebhooks>,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<ReplayWebhook>,
) -> Result<(StatusCode, Json<ReplayResource>), ApiError> {
    let id = parse_id(&id)?;
    let since = body
        .parse(orderly_domain::now())
        .map_err(ApiError::Validation)?;
    let replay = replay_missed(&state, id, since).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(ReplayResource {
            events: replay.events,
            queued: replay.queued,
            brought_forward: replay.brought_forward,
            in_flight: replay.in_flight,
            since,
        }),
    ))
}

/// Replays what endpoint `id` missed since `since`, by the service layer's rule (the
/// console's form too).
pub(crate) async fn replay_missed(
    state: &AppState,
    id: Uuid,
    since: time::OffsetDateTime,
) -> Result<orderly_service::Replay, ApiError> {
    state
        .services
        .replay_webhook(id, since)
        .await
        .map_err(redelivery_error)
}

/// Queues the event of attempt `attempt_id` to endpoint `id` again, by the service layer's
/// rule (the console's button too).
pub(crate) async fn queue_redelivery(
    state: &AppState,
    id: Uuid,
    attempt_id: i64,
) -> Result<orderly_service::Redelivery, ApiError> {
    state
        .services
        .redeliver(id, attempt_id)
        .await
        .map_err(redelivery_error)
}

/// The answer to a redelivery or replay that did not happen.
fn redelivery_error(error: orderly_service::RedeliveryError) -> ApiError {
    use orderly_service::RedeliveryError as E;
    match error {
        E::EndpointNotFound => ApiError::NotFound("webhook"),
        E::AttemptNotFound => ApiError::NotFound("delivery attempt"),
        E::EndpointDisabled => ApiError::Conflict {
            code: "webhook_disabled",
            detail: "enable the endpoint before sending events to it".into(),
        },
        E::Store(error) => error.into(),
        E::Queue(error) => error.into(),
        E::NotQueued => ApiError::internal(error),
    }
}
