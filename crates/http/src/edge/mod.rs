//! The edge of every request, as one tower layer outside the request span: the request id
//! (the client's if it is a sane token, else a fresh one, echoed in the answer), the request
//! metrics, admission (load shedding, with a share kept for keyed callers), `Connection:
//! close` while draining, and the security headers every answer carries.
//!
//! These were six layers (five `axum::middleware::from_fn` and tower-http's request-id pair).
//! Each `from_fn` clones the whole service stack inside it and boxes it and its future on
//! every request; measured on cached product reads, the layers cost a quarter of the
//! process's time. As one hand-written service they cost one clone and one box.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, Response, header};
use axum::response::IntoResponse;
use uuid::Uuid;

mod request_metrics;

use request_metrics::RequestTiming;
pub use request_metrics::method_label;

use crate::AppState;
use crate::auth::{Authenticated, presented_digest};
use crate::error::{ApiError, DatabaseUnreachable, Explained};

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What the edge needs, shared by every route's copy of the layer.
#[derive(Debug)]
struct Edge {
    /// API requests being answered now; past its permits a request is shed.
    in_flight: tokio::sync::Semaphore,
    /// Of those, the ones not from a verified key or console session: a share of
    /// `in_flight`, so that however many anonymous requests arrive (slow ones included), the
    /// rest of `in_flight` stays free for keyed callers.
    anonymous: tokio::sync::Semaphore,
    state: AppState,
}

impl Edge {
    async fn handle<S>(&self, mut request: Request, inner: S) -> Response<Body>
    where
        S: tower::Service<Request, Error = Infallible>,
        S::Response: IntoResponse,
    {
        let private = request.uri().path().starts_with("/v1/");
        let request_id = match request.headers().get(&X_REQUEST_ID) {
            Some(id) if is_sane_request_id(id.as_bytes()) => id.clone(),
            _ => {
                let id = new_request_id();
                request.headers_mut().insert(X_REQUEST_ID, id.clone());
                id
            }
        };
        let timing = RequestTiming::start(&request);
        let mut response = self.admit_and_run(request, inner).await;
        let status = response.status();
        if status.is_server_error() && response.extensions().get::<Explained>().is_none() {
            // Every server error says why in the log: one made from an `ApiError` has; this
            // one (a framework's own answer) has not.
            tracing::error!(
                status = status.as_u16(),
                route = timing.route(),
                request_id = request_id.to_str().unwrap_or("-"),
                "answered with a server error whose cause nothing logged"
            );
        }
        timing.finish(status.as_u16());

        let headers = response.headers_mut();
        headers.entry(X_REQUEST_ID).or_insert(request_id);
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        if private {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        // While the process drains, a client on a kept-alive connection is told to open its
        // next one through the load balancer, to a process that is staying.
        if self.state.drain.is_draining() {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }

    /// Sheds what the process cannot take: any API request past `http.max_in_flight`, every
    /// API request while the database is away (a request found it unreachable and the probe
    /// has not seen it back: `orderly_storage::Store::report_unreachable`), any request
    /// without a verified caller past its share of `http.max_in_flight`
    /// (`http.anonymous_share`), and new orders the order writer does not let in
    /// (`orderly_service::OrderPlacement::admit`). It runs before the request's span, its log
    /// line and the rate limiter, so that a refusal costs next to nothing: under ten times the
    /// requests the process can serve, refusals that each cost a span and a log line took the
    /// CPU the admitted requests needed. Refusals are counted in the metrics as every request
    /// is, and logged as one summary line a second ([`ShedLog`]), not a line each. `/healthz`,
    /// `/readyz` and `/metrics` are never shed: an overloaded process must still say how it is.
    async fn admit_and_run<S>(&self, mut request: Request, mut inner: S) -> Response<Body>
    where
        S: tower::Service<Request, Error = Infallible>,
        S::Response: IntoResponse,
    {
        if matches!(request.uri().path(), "/healthz" | "/readyz" | "/metrics") {
            return run(&mut inner, request).await;
        }
        let Ok(_admitted) = self.in_flight.try_acquire() else {
            return shed("in_flight", ApiError::Overloaded);
        };
        if self.state.store.database_away() {
            return shed("database_away", ApiError::DatabaseAway);
        }
        let _anonymous = match self.verify_caller(&mut request).await {
            Ok(true) => None,
            Ok(false) => match self.anonymous.try_acquire() {
                Ok(permit) => Some(AnonymousInFlight::new(permit)),
                Err(_) => return shed("anonymous", ApiError::Overloaded),
            },
            Err(response) => return self.noting_unreachable(response),
        };
        let _order = if request.method() == Method::POST && request.uri().path() == "/v1/orders" {
            let Some(order) = self.state.placement.admit() else {
                SHED_LOG.refused();
                return ApiError::Overloaded.into_response();
            };
            Some(order)
        } else {
            None
        };
        let response = run(&mut inner, request).await;
        self.noting_unreachable(response)
    }

    /// `response`, after telling the store when it says the database could not be reached.
    fn noting_unreachable(&self, response: Response<Body>) -> Response<Body> {
        if response.extensions().get::<DatabaseUnreachable>().is_some() {
            self.state.store.report_unreachable();
        }
        response
    }

    /// Whether the request comes from a keyed caller: an API key that is live (from the key
    /// cache, or looked up), or a live console session. What was found is left in the
    /// request's extensions, so the rate limiter and the handler's extractors do not look
    /// again. A made-up `Bearer oly_…` is anonymous.
    async fn verify_caller(&self, request: &mut Request) -> Result<bool, Response<Body>> {
        let state = &self.state;
        if let Some(digest) = presented_digest(request.headers()) {
            let caller = state
                .keys
                .caller(state, &digest)
                .await
                .map_err(IntoResponse::into_response)?;
            let known = caller.is_some();
            request.extensions_mut().insert(Authenticated(caller));
            return Ok(known);
        }
        if state.settings.console.is_some() && request.uri().path().starts_with("/console") {
            let verified = crate::console::session::verify(state, request.headers())
                .await
                .map_err(|e| ApiError::from(e).into_response())?;
            if let Some(verified) = verified {
                let live = verified.is_live();
                request.extensions_mut().insert(verified);
                return Ok(live);
            }
        }
        Ok(false)
    }
}

fn shed(reason: &'static str, error: ApiError) -> Response<Body> {
    metrics::counter!("http_requests_shed_total", "reason" => reason).increment(1);
    SHED_LOG.refused();
    error.into_response()
}

/// An anonymous request's permit, counted in `http_requests_in_flight_anonymous` while held.
struct AnonymousInFlight<'a> {
    _permit: tokio::sync::SemaphorePermit<'a>,
}

impl<'a> AnonymousInFlight<'a> {
    fn new(permit: tokio::sync::SemaphorePermit<'a>) -> Self {
        anonymous_gauge().increment(1.0);
        Self { _permit: permit }
    }
}

impl Drop for AnonymousInFlight<'_> {
    fn drop(&mut self) {
        anonymous_gauge().decrement(1.0);
    }
}

fn anonymous_gauge() -> &'static metrics::Gauge {
    static GAUGE: OnceLock<metrics::Gauge> = OnceLock::new();
    GAUGE.get_or_init(|| metrics::gauge!("http_requests_in_flight_anonymous"))
}

async fn run<S>(inner: &mut S, request: Request) -> Response<Body>
where
    S: tower::Service<Request, Error = Infallible>,
    S::Response: IntoResponse,
{
    match inner.call(request).await {
        Ok(response) => response.into_response(),
        Err(never) => match never {},
    }
}

/// Puts [`EdgeService`] around a route.
#[derive(Debug, Clone)]
pub struct EdgeLayer(Arc<Edge>);

impl EdgeLayer {
    pub fn new(state: AppState) -> Self {
        let settings = &state.settings;
        Self(Arc::new(Edge {
            in_flight: tokio::sync::Semaphore::new(settings.max_in_flight.max(1)),
            anonymous: tokio::sync::Semaphore::new(settings.anonymous_in_flight.max(1)),
            state,
        }))
    }
}

impl<S> tower::Layer<S> for EdgeLayer {
    type Service = EdgeService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        EdgeService {
            inner,
            edge: self.0.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct EdgeService<S> {
    inner: S,
    edge: Arc<Edge>,
}

impl<S> tower::Service<Request> for EdgeService<S>
where
    S: tower::Service<Request, Error = Infallible> + Clone + Send + 'static,
    S::Response: IntoResponse,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // The service that was polled ready is the one to call; a clone takes its place.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let edge = self.edge.clone();
        Box::pin(async move { Ok(edge.handle(request, inner).await) })
    }
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
    // Written by hand: `format!` and then copying into the header cost two allocations.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = Vec::with_capacity(25);
    id.extend(
        (0..8)
            .rev()
            .map(|i| HEX[(*process >> (i * 4)) as usize & 0xf]),
    );
    id.push(b'-');
    id.extend((0..16).rev().map(|i| HEX[(n >> (i * 4)) as usize & 0xf]));
    HeaderValue::from_maybe_shared(bytes::Bytes::from(id)).unwrap_or(HeaderValue::from_static("-"))
}

/// A client's `X-Request-Id` is kept only if it is a sane token (1–128 visible ASCII
/// characters), so it cannot forge log lines.
fn is_sane_request_id(id: &[u8]) -> bool {
    (1..=128).contains(&id.len()) && id.iter().all(|b| b.is_ascii_graphic())
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
