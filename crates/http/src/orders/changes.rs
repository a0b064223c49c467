//! The routes that change an order after it is placed: `payments` (a capture), `fulfillments`
//! (a shipment), `cancellations` (units) and `refunds`. Each is an adapter over the service
//! layer's `change_order`: it reads the body, the `Idempotency-Key` (as order creation does:
//! a retry replays the first answer, another body with the key is `422`) and `If-Match`, and
//! answers with the order and its `ETag`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use orderly_domain::{FieldError, LifecycleError, Order, OrderId, ValidationErrors};
use orderly_service::{ChangeKey, ChangeOutcome, ChangeRequest};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::change_body::{CancellationBody, ChangeRoute, FulfillmentBody, PaymentBody, RefundBody};
use super::{IDEMPOTENT_REPLAYED, IdempotencyKey, OrderResource, parse_order_id};
use crate::AppState;
use crate::auth::{Authorized, ManageOrders};
use crate::error::{ApiError, Problem};
use crate::extract::{IfMatch, JsonBody, PathParams};

/// The order as an answer: the representation with its `ETag`.
pub(crate) fn order_response(status: StatusCode, order: &Order) -> Response {
    let mut response = (status, Json(OrderResource::from(order))).into_response();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", order.version)) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

/// Runs `route`'s change of order `id` for `auth`'s caller.
pub(super) async fn change(
    state: &AppState,
    auth: &Authorized<ManageOrders>,
    id: &str,
    route: ChangeRoute,
    IdempotencyKey(key): IdempotencyKey,
    if_match: IfMatch,
    body: Value,
) -> Result<Response, ApiError> {
    let id = parse_order_id(id)?;
    let fingerprint = fingerprint(route, &body);
    let change = route
        .parse(body, state.settings.currency)
        .map_err(ApiError::Validation)?;
    let expected_version = if_match
        .required_version(current_version(state, id))
        .await?;
    let request = ChangeRequest {
        order: id,
        change,
        actor: auth.caller.actor(),
        expected_version,
        key: Some(ChangeKey {
            api_key: auth.caller.key_id,
            key,
            fingerprint,
        }),
        trace: crate::tracing_context::current_traceparent(),
    };
    let settled = settle(state.services.change_order(&request).await?)?;
    let mut response = order_response(settled.status, &settled.order);
    if settled.replayed {
        response
            .headers_mut()
            .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// What an `Idempotency-Key` of a change is bound to: the route and the body (one key, one
/// change).
pub(crate) fn fingerprint(route: ChangeRoute, body: &Value) -> Vec<u8> {
    let canonical = serde_json::to_vec(body).unwrap_or_default();
    let mut hash = Sha256::new().chain_update(route.as_str());
    if let ChangeRoute::ReceiveReturn(id) = route {
        hash.update(id.as_bytes());
    }
    hash.chain_update(&canonical).finalize().to_vec()
}

/// A change that went through (or was replayed): the order, and the status to answer with.
pub(crate) struct Settled {
    pub order: Box<Order>,
    pub status: StatusCode,
    pub replayed: bool,
}

async fn current_version(state: &AppState, id: OrderId) -> Result<Option<i64>, ApiError> {
    Ok(state.store.order_by_id(id).await?.map(|o| o.version))
}

/// A change's outcome as the API (and the console) answer it: the order, or the problem.
pub(crate) fn settle(outcome: ChangeOutcome) -> Result<Settled, ApiError> {
    let settled = |order, status, replayed| Settled {
        order,
        status,
        replayed,
    };
    match outcome {
        ChangeOutcome::Done(order) => Ok(settled(order, StatusCode::CREATED, false)),
        ChangeOutcome::Replayed(order) => Ok(settled(order, StatusCode::CREATED, true)),
        // The same capture reported again: recorded once, the order as it stands.
        ChangeOutcome::RecordedBefore(Some(order)) => Ok(settled(order, StatusCode::OK, false)),
        ChangeOutcome::RecordedBefore(None) => Err(ApiError::Conflict {
            code: "payment_reference_taken",
            detail: "this provider's reference was recorded for another order".into(),
        }),
        ChangeOutcome::KeyReused => Err(ApiError::Unprocessable {
            code: "idempotency_key_reused",
            detail: "this Idempotency-Key was used with a different request; use a new key \
                     for a new change"
                .into(),
        }),
        ChangeOutcome::NotFound => Err(ApiError::NotFound("order")),
        ChangeOutcome::ReturnNotFound => Err(ApiError::NotFound("return")),
        ChangeOutcome::NotOrderable { index } => Err(ApiError::Validation(
            ValidationErrors::single(FieldError::new(
                format!("lines[{index}]"),
                "not_orderable",
                "names a product that does not exist, is not on sale or is priced in another \
                 currency",
            )),
        )),
        ChangeOutcome::OutOfStock { index, available } => Err(ApiError::Conflict {
            code: "insufficient_stock",
            detail: format!("line {index} asks for more units than the {available} in stock"),
        }),
        ChangeOutcome::Stale { .. } => Err(ApiError::PreconditionFailed),
        ChangeOutcome::UnknownLine { index } => Err(ApiError::Validation(
            ValidationErrors::single(FieldError::new(
                format!("lines[{index}]"),
                "not_in_order",
                "names a product this order does not hold",
            )),
        )),
        ChangeOutcome::Refused { reason, .. } => Err(refused(&reason)),
    }
}

fn refused(reason: &LifecycleError) -> ApiError {
    let code = match reason {
        LifecycleError::Closed(_) => "order_closed",
        LifecycleError::NotPositive | LifecycleError::Overflow => "invalid_amount",
        LifecycleError::OverBalance { .. } => "over_balance_due",
        LifecycleError::Unpaid { .. } => "balance_due",
        LifecycleError::TooManyUnits { .. } => "too_many_units",
        LifecycleError::NothingOpen => "nothing_open",
        LifecycleError::OverRefundable { .. } => "over_refundable",
        LifecycleError::TooManyReturned { .. } => "not_returnable",
        LifecycleError::NotOnReturn { .. } => "not_on_return",
        LifecycleError::ReturnReceived => "return_received",
        LifecycleError::Shipped => "order_shipped",
    };
    ApiError::Conflict {
        code,
        detail: reason.to_string(),
    }
}

/// Record a capture of money for an order (admin).
#[utoipa::path(
    post, path = "/v1/orders/{id}/payments", tag = "orders",
    params(
        ("id" = uuid::Uuid, Path, description = "The order id"),
        ("Idempotency-Key" = String, Header, pattern = "^[!-~]{1,255}$", description = "1–255 visible ASCII characters, unique per change; a retry reuses it"),
        ("If-Match" = Option<String>, Header, description = "The order's ETag: the change applies only to that version"),
    ),
    request_body = PaymentBody,
    responses(
        (status = 201, description = "The order with the capture", body = OrderResource),
        (status = 200, description = "This provider's reference was recorded before: the order as it stands", body = OrderResource),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "More than the balance due, a closed order, or a reference recorded for another order", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The order has changed since that ETag", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, another currency, or a key reused with another request", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
async fn record_payment(
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
        ChangeRoute::Payments,
        key,
        if_match,
        body,
    )
    .await
}

/// Record a shipment of units (admin): only once nothing is due.
#[utoipa::path(
    post, path = "/v1/orders/{id}/fulfillments", tag = "orders",
    params(
        ("id" = uuid::Uuid, Path, description = "The order id"),
        ("Idempotency-Key" = String, Header, pattern = "^[!-~]{1,255}$", description = "1–255 visible ASCII characters, unique per change; a retry reuses it"),
        ("If-Match" = Option<String>, Header, description = "The order's ETag: the change applies only to that version"),
    ),
    request_body = FulfillmentBody,
    responses(
        (status = 201, description = "The order with the shipment", body = OrderResource),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A balance is due, more units than are open, or a closed order", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The order has changed since that ETag", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, a product the order does not hold, or a key reused with another request", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
async fn record_fulfillment(
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
        ChangeRoute::Fulfillments,
        key,
        if_match,
        body,
    )
    .await
}

/// Cancel units not yet shipped, and give their stock back (admin).
#[utoipa::path(
    post, path = "/v1/orders/{id}/cancellations", tag = "orders",
    params(
        ("id" = uuid::Uuid, Path, description = "The order id"),
        ("Idempotency-Key" = String, Header, pattern = "^[!-~]{1,255}$", description = "1–255 visible ASCII characters, unique per change; a retry reuses it"),
        ("If-Match" = Option<String>, Header, description = "The order's ETag: the change applies only to that version"),
    ),
    request_body = CancellationBody,
    responses(
        (status = 201, description = "The order with the units cancelled", body = OrderResource),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "More units than are open, nothing open, or a closed order", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The order has changed since that ETag", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, a product the order does not hold, or a key reused with another request", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
async fn record_cancellation(
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
        ChangeRoute::Cancellations,
        key,
        if_match,
        body,
    )
    .await
}

/// Record money given back by the shop's payment provider (admin; orderly moves no money).
#[utoipa::path(
    post, path = "/v1/orders/{id}/refunds", tag = "orders",
    params(
        ("id" = uuid::Uuid, Path, description = "The order id"),
        ("Idempotency-Key" = String, Header, pattern = "^[!-~]{1,255}$", description = "1–255 visible ASCII characters, unique per change; a retry reuses it"),
        ("If-Match" = Option<String>, Header, description = "The order's ETag: the change applies only to that version"),
    ),
    request_body = RefundBody,
    responses(
        (status = 201, description = "The order with the refund", body = OrderResource),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "More than may be refunded, in all or on the lines named", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The order has changed since that ETag", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, another currency, a product the order does not hold, or a key reused with another request", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
async fn record_refund(
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
        ChangeRoute::Refunds,
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
        .routes(routes!(record_payment))
        .routes(routes!(record_fulfillment))
        .routes(routes!(record_cancellation))
        .routes(routes!(record_refund))
}
