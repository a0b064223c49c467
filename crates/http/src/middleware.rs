//! Cross-cutting request handling: request ids (tower-http's `SetRequestId` and
//! `PropagateRequestId`, with our own cheap ids and a check on the client's), the request
//! metrics, the request span and its log line, `Connection: close` while draining, and
//! turning a panic into a logged 500 problem instead of a dropped connection.

use std::any::Any;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Request as HttpRequest, Response, header};
use axum::middleware::Next;
use axum::response::IntoResponse;
use tower_http::request_id::{MakeRequestId, RequestId};
use tracing::Span;
use uuid::Uuid;

use crate::error::{ApiError, DatabaseUnreachable};
use crate::health::Drain;

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Drops a client's `X-Request-Id` unless it is a sane token (1–128 visible ASCII characters,
/// so it cannot forge log lines); `SetRequestId` then makes a fresh one.
pub async fn drop_odd_request_id(mut request: Request, next: Next) -> impl IntoResponse {
    if request
        .headers()
        .get(&X_REQUEST_ID)
        .is_some_and(|v| !is_sane_request_id(v.as_bytes()))
    {
        request.headers_mut().remove(&X_REQUEST_ID);
    }
    next.run(request).await
}

/// While the process drains, answers every request with `Connection: close`, so a client on
/// a kept-alive connection opens its next one through the load balancer to a process that
/// is staying.
pub async fn close_when_draining(
    State(drain): State<Drain>,
    request: Request,
    next: Next,
) -> impl IntoResponse {
    let mut response = next.run(request).await;
    if drain.is_draining() {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Answers `503 request_timeout` when the handler has not answered within `limit`, and drops
/// it. That only stops the waiting: a statement already sent completes on the server, an open
/// transaction rolls back, an order handed to the writer is placed or not. So the answer says
/// the request may or may not have taken effect; for an order, the retry with the same
/// Idempotency-Key tells which.
pub async fn deadline(
    State(limit): State<std::time::Duration>,
    request: Request,
    next: Next,
) -> Response<Body> {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::RequestTimeout(limit).into_response(),
    }
}

/// `X-Content-Type-Options: nosniff` on every answer (a browser must not guess a JSON body is
/// a page), and `Cache-Control: no-store` on every answer of the API under `/v1/`, which
/// carries customer data, orders and keys that no shared or browser cache may keep.
pub async fn security_headers(request: Request, next: Next) -> Response<Body> {
    let private = request.uri().path().starts_with("/v1/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if private {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Requests of the API being answered now, bounded: past the bound a request is refused at
/// once with `503 overloaded` and `Retry-After` (load shedding) instead of queueing for the
/// database with its connection held. `/healthz`, `/readyz` and `/metrics` are never shed:
/// an overloaded process must still say how it is.
#[derive(Debug, Clone)]
pub struct Admission {
    in_flight: std::sync::Arc<tokio::sync::Semaphore>,
    orders: orderly_storage::OrderWriter,
    store: orderly_storage::Store,
}

impl Admission {
    pub fn new(
        max_in_flight: usize,
        orders: orderly_storage::OrderWriter,
        store: orderly_storage::Store,
    ) -> Self {
        Self {
            in_flight: std::sync::Arc::new(tokio::sync::Semaphore::new(max_in_flight.max(1))),
            orders,
            store,
        }
    }
}

/// Sheds what the process cannot take: any API request past `http.max_in_flight`, every API
/// request while the database is away (a request found it unreachable and the probe has not
/// seen it back: `orderly_storage::Store::report_unreachable`), and new orders the order
/// writer does not let in (`orderly_storage::OrderWriter::admit`). It runs before the
/// request's span, its log line, the rate limiter and the key check, so that a refusal costs
/// next to nothing: under ten times the requests the process can serve, refusals that each
/// cost a span and a log line took the CPU the admitted requests needed. Refusals are counted
/// in the metrics as every request is, and logged as one summary line a second
/// ([`ShedLog`]), not a line each.
pub async fn admit(
    State(admission): State<Admission>,
    request: Request,
    next: Next,
) -> Response<Body> {
    if matches!(request.uri().path(), "/healthz" | "/readyz" | "/metrics") {
        return next.run(request).await;
    }
    let Ok(_admitted) = admission.in_flight.try_acquire() else {
        metrics::counter!("http_requests_shed_total", "reason" => "in_flight").increment(1);
        SHED_LOG.refused();
        return ApiError::Overloaded.into_response();
    };
    if admission.store.database_away() {
        metrics::counter!("http_requests_shed_total", "reason" => "database_away").increment(1);
        SHED_LOG.refused();
        return ApiError::DatabaseAway.into_response();
    }
    let _order =
        if request.method() == axum::http::Method::POST && request.uri().path() == "/v1/orders" {
            let Some(order) = admission.orders.admit() else {
                metrics::counter!("orders_shed_total", "reason" => "congested").increment(1);
                SHED_LOG.refused();
                return ApiError::Overloaded.into_response();
            };
            Some(order)
        } else {
            None
        };
    let response = next.run(request).await;
    if response.extensions().get::<DatabaseUnreachable>().is_some() {
        admission.store.report_unreachable();
    }
    response
}

static SHED_LOG: ShedLog = ShedLog {
    refused: AtomicU64::new(0),
    logged_at: AtomicU64::new(0),
};

/// One warning a second at most while requests are shed, with how many were: a flood of
/// refusals must not become a flood of log lines.
struct ShedLog {
    refused: AtomicU64,
    /// Seconds since the process's first refusal, plus one, when a line was last written.
    logged_at: AtomicU64,
}

impl ShedLog {
    fn refused(&self) {
        static SINCE: OnceLock<std::time::Instant> = OnceLock::new();
        self.refused.fetch_add(1, Ordering::Relaxed);
        let now = SINCE
            .get_or_init(std::time::Instant::now)
            .elapsed()
            .as_secs()
            + 1;
        let last = self.logged_at.load(Ordering::Relaxed);
        if now > last
            && self
                .logged_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let refused = self.refused.swap(0, Ordering::Relaxed);
            tracing::warn!(
                refused,
                "shedding requests with 503 (past http.max_in_flight, the database away, or \
                 more orders than the database takes); refusals since the last such line"
            );
        }
    }
}

/// Counts and times every request by method, route template and status.
pub async fn record_metrics(request: Request, next: Next) -> impl IntoResponse {
    let method = method_label(request.method()).to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let started = std::time::Instant::now();
    let in_flight = metrics::gauge!("http_requests_in_flight");
    in_flight.increment(1.0);
    let response = next.run(request).await;
    in_flight.decrement(1.0);
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The method as a metric label or log field: one of the standard methods, or `other`. Any
/// client may send any token as a method; each new one would add series to `/metrics` (and
/// a long one would go into every log line of its request).
pub fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// Makes request ids for tower-http's `SetRequestIdLayer` (see [`new_request_id`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct CheapRequestId;

impl MakeRequestId for CheapRequestId {
    fn make_request_id<B>(&mut self, _request: &HttpRequest<B>) -> Option<RequestId> {
        Some(RequestId::new(new_request_id()))
    }
}

/// A fresh request id: 8 hex digits chosen at random per process, then a counter hashed with
/// a key of the process's own (SipHash, std's `RandomState`): unique across processes with
/// high probability, free of the system call a random UUID costs on every request, and
/// telling nobody how many requests came between two of them (a bare counter, sent to any
/// client, did).
fn new_request_id() -> HeaderValue {
    use std::hash::BuildHasher;
    static PROCESS: OnceLock<(u32, std::collections::hash_map::RandomState)> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let (process, key) = PROCESS.get_or_init(|| {
        (
            Uuid::new_v4().as_u128() as u32,
            std::collections::hash_map::RandomState::new(),
        )
    });
    let n = key.hash_one(NEXT.fetch_add(1, Ordering::Relaxed));
    HeaderValue::from_str(&format!("{process:08x}-{n:016x}"))
        .unwrap_or(HeaderValue::from_static("-"))
}

fn is_sane_request_id(id: &[u8]) -> bool {
    (1..=128).contains(&id.len()) && id.iter().all(|b| b.is_ascii_graphic())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_do_not_count_requests() {
        let ids: Vec<String> = (0..3)
            .map(|_| new_request_id().to_str().unwrap().to_owned())
            .collect();
        let tails: Vec<u64> = ids
            .iter()
            .map(|id| u64::from_str_radix(&id[9..], 16).unwrap())
            .collect();
        assert!(
            ids.iter()
                .all(|id| id.len() == 25 && id[..8] == ids[0][..8]),
            "{ids:?}"
        );
        assert!(
            tails[1].abs_diff(tails[0]) > 1 << 16 || tails[2].abs_diff(tails[1]) > 1 << 16,
            "{ids:?}"
        );
    }

    #[test]
    fn request_ids_must_be_short_visible_ascii() {
        assert!(is_sane_request_id(b"abc-123_X.Y:z"));
        assert!(!is_sane_request_id(b""));
        assert!(!is_sane_request_id(b"has space"));
        assert!(!is_sane_request_id(b"line\nbreak"));
        assert!(!is_sane_request_id(&[b'a'; 129]));
    }
}
