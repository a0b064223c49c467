//! The operator's console at `/console`: server-rendered pages (maud) with a little
//! JavaScript, embedded in the binary, served by every API process when `console.enabled`.
//!
//! - `session.rs`: signing in with an admin key (a session cookie, HttpOnly, SameSite=Strict,
//!   Secure behind HTTPS), the CSRF token every action carries, signing out.
//! - `extract.rs`: paths, queries and forms checked as the API checks them, refused as pages.
//! - `layout.rs`: the page shell, its security headers, and the small pieces pages share.
//! - one module per page: `overview.rs` (live figures, `figures.rs` reads this process's
//!   metrics), `orders.rs`, `jobs.rs`, `queues.rs` (queues and schedules), `webhooks.rs`,
//!   `audit.rs` (every action taken here, kept in the database).
//! - `assets/`: the stylesheet and script, written by hand (no build step).
//!
//! Every action goes through the same store calls as the API, and is recorded in the audit
//! log with the key id, the client address and what it changed.

mod audit;
mod charts;
mod extract;
mod figures;
mod jobs;
mod layout;
mod order_changes;
mod orders;
mod overview;
mod queues;
pub(crate) mod session;
mod sign_in;
mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::routing::{get, post};

use crate::AppState;
use crate::error::ApiError;

/// What the console needs from the configuration.
#[derive(Debug)]
pub struct ConsoleSettings {
    /// How long a session lasts from sign-in.
    pub session_ttl: time::Duration,
    /// Mark the session cookie `Secure` whatever the request said.
    pub secure_cookie: bool,
    /// The configured schedules, as the queues page shows them.
    pub schedules: Vec<Arc<orderly_service::Schedule>>,
    /// The domain of receipts' `Message-ID` (`<receipt-<order id>@<domain>>`).
    pub receipt_domain: String,
}

/// The console's routes (merged only when the console is enabled).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(overview::show))
        .route("/console/overview/live", get(overview::live))
        .route(
            "/console/sign-in",
            get(sign_in::sign_in_page).post(sign_in::sign_in),
        )
        .route("/console/sign-out", post(session::sign_out))
        .route("/console/orders", get(orders::list))
        .route("/console/orders/{id}", get(orders::show))
        .route("/console/orders/{id}/{action}", post(orders::act))
        .route(
            "/console/orders/{id}/changes/{route}",
            post(order_changes::change),
        )
        .route("/console/jobs", get(jobs::list))
        .route("/console/jobs/retry-discarded", post(jobs::retry_discarded))
        .route("/console/jobs/{id}", get(jobs::show))
        .route("/console/jobs/{id}/{action}", post(jobs::act))
        .route("/console/queues", get(queues::show))
        .route("/console/queues/{name}/{action}", post(queues::act))
        .route(
            "/console/schedules/{name}/{action}",
            post(queues::act_on_schedule),
        )
        .route("/console/webhooks", get(webhooks::list))
        .route("/console/webhooks/{id}", get(webhooks::show))
        .route("/console/webhooks/{id}/enable", post(webhooks::enable))
        .route("/console/webhooks/{id}/replay", post(webhooks::replay))
        .route(
            "/console/webhooks/{id}/rotate-secret",
            post(webhooks::rotate_secret),
        )
        .route(
            "/console/webhooks/{id}/deliveries/{attempt}/redeliver",
            post(webhooks::redeliver),
        )
        .route("/console/audit", get(audit::show))
        .route("/console/assets/console.css", get(stylesheet))
        .route("/console/assets/console.js", get(script))
}

async fn stylesheet() -> impl axum::response::IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("assets/console.css"),
    )
}

async fn script() -> impl axum::response::IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("assets/console.js"),
    )
}

/// An API error answered as a console page (its status and headers kept), for what refuses a
/// console request before its handler runs (the rate limit).
pub(crate) fn error_page(error: ApiError) -> axum::response::Response {
    axum::response::IntoResponse::into_response(layout::PageError::Api(error))
}
