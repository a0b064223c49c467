//! orderly's HTTP API: the router with every route, the authentication extractors, the
//! `application/problem+json` error type, request ids and spans, health checks, and the
//! OpenAPI document generated from the handlers.

pub mod auth;
pub mod bodies;
pub mod body_deadline;
pub mod console;
mod docs;
mod duplicate_keys;
mod edge;
mod error;
mod events;
mod extract;
mod fields;
mod health;
mod jobs;
mod middleware;
mod openapi;
mod orders;
pub use orders::ChangeRoute;
mod pagination;
mod products;
mod queues;
mod rate_limit;
pub mod tracing_context;
mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use orderly_domain::Currency;
use orderly_storage::Store;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::classify::StatusInRangeAsFailures;
use tower_http::trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use error::{ApiError, PROBLEM_JSON, Problem};
pub use health::Drain;
pub use rate_limit::RateLimits;

/// Settings the HTTP layer needs from the configuration.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// The one currency the store sells in.
    pub currency: Currency,
    /// Largest accepted request body, in bytes.
    pub body_limit: usize,
    /// Longest a request body may take to arrive, in all.
    pub body_read_timeout: std::time::Duration,
    /// Longest a request may take, from its header read to its answer.
    pub request_timeout: std::time::Duration,
    /// Most API requests answered at once; past it they are shed (`503 overloaded`).
    pub max_in_flight: usize,
    /// Of those, most answered at once for callers without a verified API key or console
    /// session; past it such requests are shed, and the rest stays free for keyed callers.
    pub anonymous_in_flight: usize,
    /// Whether webhook URLs may be `http` and point at internal addresses.
    pub webhooks_allow_private: bool,
    /// When events are relayed to NATS: how old the oldest event not yet relayed may be
    /// before readiness reports the relay `degraded`. `None`: no relay.
    pub relay_lag_threshold: Option<std::time::Duration>,
    /// The operator's console at `/console`; `None` serves none.
    pub console: Option<Arc<console::ConsoleSettings>>,
}

/// Produces the Prometheus text for `/metrics` (installed by the binary, which owns the
/// global recorder).
#[derive(Clone)]
pub struct MetricsRenderer(pub Arc<dyn Fn() -> String + Send + Sync>);

impl std::fmt::Debug for MetricsRenderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsRenderer")
    }
}

/// What every handler can reach. Cloned per extractor, so it is one `Arc`.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The services and settings behind [`AppState`].
#[derive(Debug)]
pub struct Shared {
    /// The use cases (the service layer): what a handler calls to change anything.
    pub services: orderly_service::Services,
    pub store: Store,
    /// Places orders (admission, group commit, what follows an order).
    pub placement: orderly_service::OrderPlacement,
    /// Recently verified API keys.
    pub keys: auth::KeyCache,
    /// The product read cache; `None` when caching is off.
    pub cache: Option<orderly_cache::ProductCache>,
    /// Renders `/metrics`; `None` serves no metrics.
    pub metrics: Option<MetricsRenderer>,
    pub settings: Arc<HttpSettings>,
    /// Per-key and per-address request rates; `None` limits nothing.
    pub rate_limits: Option<RateLimits>,
    /// Set when shutdown begins: `/readyz` turns `503` while requests are still served.
    pub drain: Drain,
}

fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(products::router())
        .merge(orders::router())
        .merge(jobs::router())
        .merge(queues::router())
        .merge(events::router())
        .merge(webhooks::router())
        .merge(health::router())
}

/// `/metrics` in the Prometheus text format; pool figures are sampled at scrape time.
async fn metrics(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> axum::response::Response {
    let Some(render) = &state.metrics else {
        return ApiError::NotFound("resource").into_response();
    };
    let database_up = tokio::time::timeout(std::time::Duration::from_secs(1), state.store.ping())
        .await
        .is_ok_and(|r| r.is_ok());
    metrics::gauge!("orderly_database_up").set(if database_up { 1.0 } else { 0.0 });
    let (size, idle) = state.store.pool_usage();
    metrics::gauge!("db_pool_connections", "state" => "idle").set(idle as f64);
    metrics::gauge!("db_pool_connections", "state" => "in_use")
        .set(size.saturating_sub(idle as u32) as f64);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        (render.0)(),
    )
        .into_response()
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    let body_limit = state.settings.body_limit;
    let edge = edge::EdgeLayer::new(state.clone());
    let (api, mut document) = api_routes().split_for_parts();
    openapi::add_shared_problems(&mut document);
    openapi::close_request_objects(&mut document);
    let mut document = serde_json::to_value(&document).unwrap_or_default();
    openapi::add_field_rules(&mut document, state.settings.currency.as_str());
    let document_json: Arc<str> = document.to_string().into();
    let docs_page: Arc<str> = docs::page(&document_json).into();
    api.route(
        "/openapi.json",
        get(move || {
            let json = document_json.clone();
            async move {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    json.to_string(),
                )
            }
        }),
    )
    .merge(if state.settings.console.is_some() {
        console::router()
    } else {
        Router::new()
    })
    .route("/metrics", get(metrics))
    .route(
        "/docs",
        get(move || {
            let page = docs_page.clone();
            async move { docs::respond(&page) }
        }),
    )
    .fallback(|| async { ApiError::NotFound("resource").into_response() })
    .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed.into_response() })
    // One layer of the whole stack: each `Router::layer` call boxes every route again, and
    // cloning a route (done per request) then clones each box in turn.
    .layer(
        tower::ServiceBuilder::new()
            // Outside the span and its log line: a refusal must cost next to nothing.
            .layer(edge)
            .layer(
                // Only 500–502 are logged as failures: a 503 (shed, or a dependency away) and
                // a 507 are logged once by the error itself, and a flood of shed requests must
                // not double the log lines it costs.
                TraceLayer::new(StatusInRangeAsFailures::new(500..=502).into_make_classifier())
                    .make_span_with(middleware::request_span)
                    .on_request(())
                    .on_response(
                        DefaultOnResponse::new()
                            .level(Level::INFO)
                            .latency_unit(tower_http::LatencyUnit::Micros),
                    )
                    .on_failure(DefaultOnFailure::new().level(Level::ERROR)),
            )
            .layer(CatchPanicLayer::custom(middleware::panic_response))
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                middleware::guard,
            ))
            .layer(DefaultBodyLimit::max(body_limit)),
    )
    .with_state(state)
}
