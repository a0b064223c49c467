//! `GET /v1/orders/{id}/history`: an order's events, oldest first, each with who did it.

use axum::Json;
use axum::extract::State;
use orderly_domain::Role;
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::parse_order_id;
use crate::AppState;
use crate::auth::{Authorized, PlaceOrders};
use crate::error::{ApiError, Problem};
use crate::extract::PathParams;

/// One step of an order's life.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryEntry {
    /// The event's id, as in the feed, on NATS and in webhooks.
    pub id: Uuid,
    /// The event's type, such as `order.payment_captured`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// Who did it: `{"type": "api_key" | "console" | "scheduler" | "system", "id", "name"}`;
    /// absent for an event written before actors were recorded.
    #[schema(value_type = Option<Object>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<serde_json::Value>,
    /// The event's data, as the feed serves it.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

/// An order's history, oldest first (at most 500 steps).
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderHistory {
    pub data: Vec<HistoryEntry>,
}

/// An order's history: each step and who took it (admin, or the storefront that placed it).
#[utoipa::path(
    get, path = "/v1/orders/{id}/history", tag = "orders",
    params(("id" = uuid::Uuid, Path, description = "The order id")),
    responses(
        (status = 200, description = "The order's events, oldest first", body = OrderHistory),
        (status = 404, description = "No such order (or not yours)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub(super) async fn order_history(
    auth: Authorized<PlaceOrders>,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<OrderHistory>, ApiError> {
    let (order, events) = state
        .services
        .order_history(parse_order_id(&id)?)
        .await?
        .ok_or(ApiError::NotFound("order"))?;
    if auth.caller.role != Role::Admin && order.created_by != auth.caller.key_id {
        return Err(ApiError::NotFound("order"));
    }
    let data = events
        .into_iter()
        .map(|event| HistoryEntry {
            id: event.id,
            kind: event.kind,
            occurred_at: event.created_at,
            actor: event.payload.get("actor").cloned(),
            data: event.payload,
        })
        .collect();
    Ok(Json(OrderHistory { data }))
}
