//! The event feed under `/v1/events` (admin): every event of the outbox in commit order, for
//! consumers that pull over HTTP and for replaying what a NATS consumer missed. A page holds
//! only positioned events, so an event that commits late comes after a reader's cursor, never
//! behind it: paging with `after` sees every event once.

use axum::Json;
use axum::extract::State;
use orderly_domain::{FieldError, ValidationErrors};
use orderly_storage::{EventFilter, EventRecord};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Authorized, ReadEvents};
use crate::error::{ApiError, Problem};
use crate::extract::{PathParams, QueryParams};
use crate::pagination::{page_limit, parse_limit};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_events))
        .routes(routes!(get_event))
}

/// An event, as the feed and NATS both carry it (the handlers serialise
/// [`EventRecord`]; this is its schema, never built, so its fields are never read).
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct Event {
    /// The event's id: the same in the feed, on NATS (`Nats-Msg-Id`) and in webhooks
    /// (`webhook-id`). Deduplicate on it.
    id: Uuid,
    /// Its place in commit order, from 1; later events have larger positions.
    position: i64,
    /// `order.created`, `order.payment_captured`, `order.paid`, `order.fulfillment_created`,
    /// `order.fulfilled`, `order.units_cancelled`, `order.cancelled`, `order.refunded`,
    /// `order.expired`, `product.created`, `product.updated`, `product.stock_adjusted`.
    #[serde(rename = "type")]
    kind: String,
    /// The order or product it is about.
    subject_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    occurred_at: OffsetDateTime,
    #[schema(value_type = Object)]
    data: serde_json::Value,
}

/// One page of events in commit order.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    #[schema(value_type = Vec<Event>)]
    pub data: Vec<EventRecord>,
    /// Pass as `after` for the next page: the last event's id, or the `after` given when
    /// the page is empty (poll again with it). Absent only when there are no events at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_after: Option<Uuid>,
}

/// Query parameters of the feed.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only events after the event with this id (the `next_after` of the previous page);
    /// absent: from the oldest event kept.
    #[param(value_type = Option<Uuid>)]
    after: Option<String>,
    /// Only events of this type, such as `order.paid`.
    #[param(pattern = "^[a-z_.]{1,64}$")]
    r#type: Option<String>,
    /// Page size, 1–100 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
}

/// Page through events in commit order (admin).
#[utoipa::path(
    get, path = "/v1/events", tag = "events",
    params(ListQuery),
    responses(
        (status = 200, description = "One page of events", body = EventPage),
        (status = 400, description = "Invalid query parameters", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`after` names no event kept", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
async fn list_events(
    _auth: Authorized<ReadEvents>,
    State(state): State<AppState>,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<EventPage>, ApiError> {
    let mut errors = ValidationErrors::new();
    let limit = parse_limit(query.limit.as_deref(), &mut errors);
    let after = query.after.as_deref().and_then(|raw| {
        errors.check(
            Uuid::parse_str(raw)
                .map_err(|_| FieldError::new("after", "invalid_type", "must be an event id")),
        )
    });
    if let Some(kind) = &query.r#type {
        let valid = (1..=64).contains(&kind.len())
            && kind
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_' || b == b'.');
        if !valid {
            errors.push(FieldError::new(
                "type",
                "invalid_value",
                "must be an event type, such as order.paid",
            ));
        }
    }
    let limit = page_limit(limit, errors)?;
    let after_position = match after {
        None => 0,
        Some(id) => match state.store.event(id).await? {
            Some(event) => event.position,
            None => {
                return Err(ApiError::NotFound(
                    "event named by `after` (pruned after its retention, or never written): \
                     start again without `after`",
                ));
            }
        },
    };
    let events = state
        .store
        .list_events(&EventFilter {
            after: after_position,
            kind: query.r#type,
            limit: i64::from(limit.get()),
        })
        .await?;
    let next_after = events.last().map(|e| e.id).or(after);
    Ok(Json(EventPage {
        data: events,
        next_after,
    }))
}

/// Read one event (admin).
#[utoipa::path(
    get, path = "/v1/events/{id}", tag = "events",
    params(("id" = Uuid, Path, description = "The event id")),
    responses(
        (status = 200, description = "The event", body = Event),
        (status = 404, description = "No such event kept", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
async fn get_event(
    _auth: Authorized<ReadEvents>,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<EventRecord>, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("event"))?;
    let event = state
        .store
        .event(id)
        .await?
        .ok_or(ApiError::NotFound("event"))?;
    Ok(Json(event))
}
