//! `PATCH /v1/orders/{id}`: the order's lines replaced by a new full set before anything ships
//! (an adapter over the service layer's `change_order`, with the `Idempotency-Key` and
//! `If-Match` of every change).

use axum::extract::State;
use axum::response::Response;
use serde_json::Value;
use utoipa::ToSchema;

use super::change_body::ChangeRoute;
use super::changes::change;
use super::{IdempotencyKey, OrderResource};
use crate::AppState;
use crate::auth::{Authorized, ManageOrders};
use crate::error::{ApiError, Problem};
use crate::extract::{IfMatch, JsonBody, PathParams};

/// The order's new lines.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // Documents the wire format; the body is read field by field.
pub struct EditOrderBody {
    /// The full set: a product of the order left out is dropped (its units cancelled), one it
    /// does not hold is added at today's price, the others keep the units named.
    #[schema(value_type = Vec<super::body::OrderLineBody>, min_items = 1, max_items = 100)]
    lines: Vec<Value>,
}

/// Edit an order's lines while nothing has shipped (admin): stock is taken for added units
/// and given back for dropped ones, all or nothing; the totals follow, so on a paid order the
/// difference shows as `balance_due` or `refund_owed`.
#[utoipa::path(
    patch, path = "/v1/orders/{id}", tag = "orders",
    params(
        ("id" = uuid::Uuid, Path, description = "The order id"),
        ("Idempotency-Key" = String, Header, pattern = "^[!-~]{1,255}$", description = "1–255 visible ASCII characters, unique per change; a retry reuses it"),
        ("If-Match" = Option<String>, Header, description = "The order's ETag: the change applies only to that version"),
    ),
    request_body = EditOrderBody,
    responses(
        (status = 201, description = "The order as edited", body = OrderResource),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A unit has shipped, the order is closed, or a product lacks the stock", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The order has changed since that ETag", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, a product that cannot be ordered, or a key reused with another request", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub(super) async fn edit_order(
    auth: Authorized<ManageOrders>,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    key: IdempotencyKey,
    if_match: IfMatch,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    change(&state, &auth, &id, ChangeRoute::Edit, key, if_match, body).await
}
