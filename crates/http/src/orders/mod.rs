//! The orders API under `/v1/orders`: place an order (idempotently, with group commit behind
//! it), read orders, and move them through their states.

mod body;
mod change_body;
pub(crate) mod changes;
mod edit;
mod history;
mod resource;
mod return_body;
mod returns;

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use orderly_domain::{
    FieldError, Order, OrderAction, OrderId, OrderStatus, Role, ValidationErrors,
};
use orderly_service::{OrderRejection, PlaceOrder, Placement, TransitionError};
use orderly_storage::OrderFilter;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use body::CreateOrderBody;
pub use change_body::ChangeRoute;
pub use resource::{OrderPage, OrderResource};

use crate::AppState;
use crate::auth::{Authorized, ManageOrders, PlaceOrders};
use crate::error::{ApiError, Problem};
use crate::extract::{JsonBody, PathParams, QueryParams, parse_json};
use crate::pagination::{next_cursor, page_limit, parse_choice, read_page};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_order, list_orders))
        .routes(routes!(get_order, edit::edit_order))
        .routes(routes!(history::order_history))
        .routes(routes!(pay_order))
        .routes(routes!(fulfill_order))
        .routes(routes!(cancel_order))
        .merge(changes::routes())
        .merge(returns::routes())
}

/// Marks a response replayed from an idempotency record.
pub(crate) const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// The `Idempotency-Key` header: 1–255 visible ASCII characters, required to place an order.
#[derive(Debug)]
pub struct IdempotencyKey(String);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let value = parts
            .headers
            .get("idempotency-key")
            .ok_or(ApiError::BadHeader {
                code: "idempotency_key_required",
                detail: "send an Idempotency-Key header (a unique token per order, such as a \
                         UUID) so that a retried request cannot create a second order"
                    .into(),
            })?;
        let bytes = value.as_bytes();
        if bytes.is_empty() || bytes.len() > 255 || !bytes.iter().all(u8::is_ascii_graphic) {
            return Err(ApiError::BadHeader {
                code: "invalid_idempotency_key",
                detail: "Idempotency-Key must be 1 to 255 visible ASCII characters".into(),
            });
        }
        Ok(Self(String::from_utf8_lossy(bytes).into_owned()))
    }
}

fn order_location(id: impl std::fmt::Display) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!("/v1/orders/{id}")).ok()
}

/// Place an order: reserve stock, snapshot prices and record the order in one transaction.
/// A retry with the same `Idempotency-Key` and body gets the first response again.
#[utoipa::path(
    post, path = "/v1/orders", tag = "orders",
    params(("Idempotency-Key" = String, Header, pattern = "^[!-~]{1,255}$", description = "A unique token per order (1–255 visible ASCII characters); retries reuse it")),
    request_body = CreateOrderBody,
    responses(
        (status = 201, description = "Placed; a replay carries `Idempotent-Replayed: true`", body = OrderResource,
            headers(("Location" = String))),
        (status = 400, description = "Missing or malformed Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not enough stock (one entry per short line), or the same key is still being processed", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, unknown or unorderable products, or a key reused with another body", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
async fn create_order(
    auth: Authorized<PlaceOrders>,
    State(state): State<AppState>,
    IdempotencyKey(idempotency_key): IdempotencyKey,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let (fingerprint, order) = decode_order(&body)?;
    let request = PlaceOrder {
        api_key: auth.caller.key_id,
        actor: auth.caller.actor(),
        idempotency_key,
        fingerprint,
        order,
        trace_context: crate::tracing_context::current_traceparent(),
    };
    match state.placement.place(request).await? {
        Placement::Created(order) => Ok(placed(&order, false)),
        Placement::Replayed(order) => Ok(placed(&order, true)),
        Placement::KeyReused => Err(ApiError::Unprocessable {
            code: "idempotency_key_reused",
            detail: "this Idempotency-Key was used with a different body; use a new key for a \
                     new order"
                .into(),
        }),
        Placement::InFlight => Err(ApiError::Conflict {
            code: "idempotency_key_in_flight",
            detail: "a request with this Idempotency-Key is still being processed; retry shortly"
                .into(),
        }),
        Placement::Rejected(rejection) => Err(rejected(rejection)),
    }
}

/// An order body's fingerprint (what an `Idempotency-Key` is bound to) and the order it
/// asks for. serde_json keeps object keys sorted, so equal documents give equal fingerprints.
pub(crate) fn decode_order(body: &Value) -> Result<(Vec<u8>, orderly_domain::NewOrder), ApiError> {
    let canonical = serde_json::to_vec(body).unwrap_or_default();
    let fingerprint = Sha256::digest(&canonical).to_vec();
    let order = parse_json::<CreateOrderBody>(&canonical)?
        .parse()
        .map_err(ApiError::Validation)?;
    Ok((fingerprint, order))
}

/// The `201` for an order placed, or for a retry of the request that placed it.
fn placed(order: &Order, replayed: bool) -> Response {
    let mut response = changes::order_response(StatusCode::CREATED, order);
    if let Some(location) = order_location(order.id) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    if replayed {
        response
            .headers_mut()
            .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    response
}

fn rejected(rejection: OrderRejection) -> ApiError {
    match rejection {
        OrderRejection::InvalidLines(problems) => {
            let mut errors = ValidationErrors::new();
            for p in problems {
                errors.push(FieldError::new(
                    format!("lines[{}]", p.line),
                    p.code,
                    p.message,
                ));
            }
            ApiError::Validation(errors)
        }
        OrderRejection::OutOfStock(shorts) => {
            let mut errors = ValidationErrors::new();
            for s in shorts {
                errors.push(FieldError::new(
                    format!("lines[{}]", s.line),
                    "insufficient_stock",
                    format!(
                        "asks for {} of product {}; {} in stock",
                        s.requested, s.product_id, s.available
                    ),
                ));
            }
            ApiError::OutOfStock(errors)
        }
        OrderRejection::TotalTooLarge => ApiError::Validation(ValidationErrors::single(
            FieldError::new("lines", "total_too_large", "the order total is too large"),
        )),
    }
}

pub(crate) fn parse_order_id(raw: &str) -> Result<OrderId, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound("order"))
}

/// Read an order. Storefront keys see only the orders they placed.
#[utoipa::path(
    get, path = "/v1/orders/{id}", tag = "orders",
    params(("id" = uuid::Uuid, Path, description = "The order id")),
    responses(
        (status = 200, description = "The order", body = OrderResource),
        (status = 404, description = "No such order (or not yours)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
async fn get_order(
    auth: Authorized<PlaceOrders>,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    let order = state
        .store
        .order_by_id(parse_order_id(&id)?)
        .await?
        .filter(|o| auth.caller.role == Role::Admin || o.created_by == auth.caller.key_id)
        .ok_or(ApiError::NotFound("order"))?;
    Ok(changes::order_response(StatusCode::OK, &order))
}

/// Query parameters of the order listing.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Page size, 1–100 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]{21}[AQgw]$")]
    cursor: Option<String>,
    /// Only orders in this status.
    #[param(pattern = "^(pending|paid|fulfilled|cancelled|expired)$")]
    status: Option<String>,
    /// Only orders for this customer e-mail address (exact match).
    #[param(pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    email: Option<String>,
}

/// List orders in the order they were placed (admin).
#[utoipa::path(
    get, path = "/v1/orders", tag = "orders",
    params(ListQuery),
    responses(
        (status = 200, description = "One page of orders", body = OrderPage),
        (status = 400, description = "Invalid query parameters", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
async fn list_orders(
    _auth: Authorized<ManageOrders>,
    State(state): State<AppState>,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<OrderPage>, ApiError> {
    let mut errors = ValidationErrors::new();
    let (limit, after) = read_page(query.limit.as_deref(), query.cursor.as_deref(), &mut errors);
    let after = after.map(OrderId::from_uuid);
    let status = parse_choice::<OrderStatus>(
        query.status,
        "status",
        "pending, paid, fulfilled, cancelled or expired",
        &mut errors,
    );
    let limit = page_limit(limit, errors)?;
    let filter = OrderFilter {
        status,
        email: query.email,
        created_by: None,
        after,
        limit,
    };
    let orders = state.store.list_orders(&filter).await?;
    Ok(Json(OrderPage {
        next_cursor: next_cursor(&orders, limit, |o| o.id.as_uuid()),
        data: orders.iter().map(OrderResource::from).collect(),
    }))
}

async fn transition(
    state: &AppState,
    id: &str,
    action: OrderAction,
    caller: &orderly_storage::Caller,
) -> Result<Response, ApiError> {
    let order = apply_transition(state, parse_order_id(id)?, action, &caller.actor()).await?;
    Ok(changes::order_response(StatusCode::OK, &order))
}

/// Moves order `id` on by `action` (the console's buttons too), by the service layer's rule.
pub(crate) async fn apply_transition(
    state: &AppState,
    id: OrderId,
    action: OrderAction,
    actor: &orderly_domain::Actor,
) -> Result<orderly_domain::Order, ApiError> {
    let trace = crate::tracing_context::current_traceparent();
    state
        .services
        .transition_order(id, action, trace.as_deref(), actor)
        .await
        .map_err(|error| match error {
            TransitionError::NotAllowed { action, current } => ApiError::Conflict {
                code: "invalid_transition",
                detail: format!("cannot {action} an order that is {current}"),
            },
            TransitionError::NotFound => ApiError::NotFound("order"),
            TransitionError::Store(error) => error.into(),
        })
}

/// Mark a pending order paid (admin).
#[utoipa::path(
    post, path = "/v1/orders/{id}/pay", tag = "orders",
    params(("id" = uuid::Uuid, Path, description = "The order id")),
    responses(
        (status = 200, description = "The paid order", body = OrderResource),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not allowed from the current status, which the detail names", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
async fn pay_order(
    auth: Authorized<ManageOrders>,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    transition(&state, &id, OrderAction::Pay, &auth.caller).await
}

/// Mark a paid order fulfilled (admin).
#[utoipa::path(
    post, path = "/v1/orders/{id}/fulfill", tag = "orders",
    params(("id" = uuid::Uuid, Path, description = "The order id")),
    responses(
        (status = 200, description = "The fulfilled order", body = OrderResource),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not allowed from the current status, which the detail names", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
async fn fulfill_order(
    auth: Authorized<ManageOrders>,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    transition(&state, &id, OrderAction::Fulfill, &auth.caller).await
}

/// Cancel a pending or paid order and give its stock back (admin).
#[utoipa::path(
    post, path = "/v1/orders/{id}/cancel", tag = "orders",
    params(("id" = uuid::Uuid, Path, description = "The order id")),
    responses(
        (status = 200, description = "The cancelled order", body = OrderResource),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not allowed from the current status, which the detail names", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
async fn cancel_order(
    auth: Authorized<ManageOrders>,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    transition(&state, &id, OrderAction::Cancel, &auth.caller).await
}
