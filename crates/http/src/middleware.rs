//! What runs inside the request span: the span itself and its log line's fields, the rate
//! limit and the request deadline (one layer, [`guard`]), and turning a panic into a logged
//! 500 problem instead of a dropped connection. What runs before the span is in
//! [`crate::edge`].

use std::any::Any;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::Response;
use axum::middleware::Next;
use axum::response::IntoResponse;
use tracing::Span;

use crate::AppState;
use crate::edge::{X_REQUEST_ID, method_label};
use crate::error::ApiError;

/// The rate limit ([`crate::rate_limit::check`]), then the handler within the request
/// deadline: one layer, as each `from_fn` layer costs a clone of the stack inside it and two
/// boxes on every request.
pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response<Body> {
    let limit = state.settings.request_timeout;
    crate::rate_limit::check(&state, request, |request| {
        within_deadline(limit, next.run(request))
    })
    .await
}

/// Answers `503 request_timeout` when the handler has not answered within `limit`, and drops
/// it. That only stops the waiting: a statement already sent completes on the server, an open
/// transaction rolls back, an order handed to the writer is placed or not. So the answer says
/// the request may or may not have taken effect; for an order, the retry with the same
/// Idempotency-Key tells which.
async fn within_deadline(
    limit: std::time::Duration,
    handler: impl Future<Output = Response<Body>>,
) -> Response<Body> {
    match tokio::time::timeout(limit, handler).await {
        Ok(response) => response,
        Err(_) => ApiError::RequestTimeout(limit).into_response(),
    }
}

/// The span every log line of a request carries: method, route template, request id, and the
/// API key id once authentication has run.
pub fn request_span(request: &Request<Body>) -> Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    let request_id = request
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let span = tracing::info_span!(
        "request",
        method = method_label(request.method()),
        route,
        request_id,
        key_id = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    crate::tracing_context::continue_trace(&span, request.headers());
    span
}

/// Answers a panicking handler with a 500 problem and logs what it said.
pub fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response<Body> {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    ApiError::Internal(format!("handler panicked: {message}").into()).into_response()
}
