//! The return routes: ask for a return of shipped units, and receive it (the units that came
//! back, each restocked or not, and the refund recorded with it). Adapters over the service
//! layer's `change_order`, with the `Idempotency-Key` and `If-Match` of every change.

use axum::extract::State;
use axum::response::Response;
use serde_json::Value;

use super::change_body::ChangeRoute;
use super::changes::change;
use super::return_body::{ReceiveReturnBody, ReturnBody};
use super::{IdempotencyKey, OrderResource};
use crate::AppState;
use crate::auth::{Authorized, ManageOrders};
use crate::error::{ApiError, Problem};
use crate::extract::{IfMatch, JsonBody, PathParams};

/// Ask for a return of shipped units (admin). The answer is the order, its `returns` holding
/// the new one as `requested`.
#[utoipa::path(
    post, path = "/v1/orders/{id}/returns", tag = "orders",
    params(
        ("id" = uuid::Uuid, Path, description = "The order id"),
        ("Idempotency-Key" = String, Header, pattern = "^[!-~]{1,255}$", description = "1–255 visible ASCII characters, unique per change; a retry reuses it"),
        ("If-Match" = Option<String>, Header, description = "The order's ETag: the change applies only to that version"),
    ),
    request_body = ReturnBody,
    responses(
        (status = 201, description = "The order with the return requested", body = OrderResource),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "More units than shipped and not already on a return, or the order is closed", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The order has changed since that ETag", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, a product the order does not hold, or a key reused with another request", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
async fn request_return(
    auth: Authorized<ManageOrders>,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    key: IdempotencyKey,
    if_match: IfMatch,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    change(
        &state,
        &auth,
        &id,
        ChangeRoute::Returns,
        key,
        if_match,
        body,
    )
    .await
}

/// Receive a return (admin): the units that came back go back in stock where `restock`
/// says so, and a refund is recorded when `refund` asks for one. A return is received once.
#[utoipa::path(
    post, path = "/v1/orders/{id}/returns/{return_id}/receive", tag = "orders",
    params(
        ("id" = uuid::Uuid, Path, description = "The order id"),
        ("return_id" = uuid::Uuid, Path, description = "The return's id, from the order's `returns`"),
        ("Idempotency-Key" = String, Header, pattern = "^[!-~]{1,255}$", description = "1–255 visible ASCII characters, unique per change; a retry reuses it"),
        ("If-Match" = Option<String>, Header, description = "The order's ETag: the change applies only to that version"),
    ),
    request_body = ReceiveReturnBody,
    responses(
        (status = 201, description = "The order with the return received", body = OrderResource),
        (status = 404, description = "No such order, or no such return of it", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Units the return did not ask for, a return received already, or a refund over what may be refunded", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The order has changed since that ETag", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, a product the order does not hold, or a key reused with another request", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
async fn receive_return(
    auth: Authorized<ManageOrders>,
    State(state): State<AppState>,
    PathParams((id, return_id)): PathParams<(String, String)>,
    key: IdempotencyKey,
    if_match: IfMatch,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let return_id = return_id
        .parse()
        .map_err(|_| ApiError::NotFound("return"))?;
    change(
        &state,
        &auth,
        &id,
        ChangeRoute::ReceiveReturn(return_id),
        key,
        if_match,
        body,
    )
    .await
}

/// The routes of this module, for the orders router.
pub(super) fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(request_return))
        .routes(routes!(receive_return))
}
