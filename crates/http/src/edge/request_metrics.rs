//! The request metrics the edge keeps: `http_requests_total` and
//! `http_request_duration_seconds` by method, route template and status, and
//! `http_requests_in_flight`, with the series handles kept per thread.

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use metrics::{Counter, Histogram};

/// Counts and times one request by method, route template and status, and keeps
/// `http_requests_in_flight`; a request whose client went away before its answer is taken
/// off the gauge too (when its future is dropped).
pub(super) struct RequestTiming {
    method: &'static str,
    route: Option<MatchedPath>,
    started: std::time::Instant,
}

impl RequestTiming {
    pub(super) fn start(request: &Request) -> Self {
        in_flight_gauge().increment(1.0);
        Self {
            method: method_label(request.method()),
            route: request.extensions().get::<MatchedPath>().cloned(),
            started: std::time::Instant::now(),
        }
    }

    pub(super) fn route(&self) -> &str {
        self.route.as_ref().map_or("unmatched", MatchedPath::as_str)
    }

    /// Records the answer's series; the gauge is taken down when `self` drops, here or when the
    /// client went away first.
    pub(super) fn finish(self, status: u16) {
        let route = self.route();
        let elapsed = self.started.elapsed().as_secs_f64();
        with_request_series(self.method, route, status, |count, duration| {
            count.increment(1);
            duration.record(elapsed);
        });
    }
}

impl Drop for RequestTiming {
    fn drop(&mut self) {
        in_flight_gauge().decrement(1.0);
    }
}

pub(super) fn in_flight_gauge() -> &'static metrics::Gauge {
    static GAUGE: OnceLock<metrics::Gauge> = OnceLock::new();
    GAUGE.get_or_init(|| metrics::gauge!("http_requests_in_flight"))
}

/// The most series of `http_requests_total` one thread keeps handles to; past it a request's
/// series is looked up in the recorder each time, as the `metrics` macros do.
const SERIES_PER_THREAD: usize = 1024;

/// Runs `f` with the handles of the request series for these labels. Each thread keeps the
/// handles it has used: looking a series up in the recorder builds its key (an allocation per
/// label) and hashes it, on every request. Handles are taken once the recorder is installed,
/// which the binary does before it serves a request.
fn with_request_series(
    method: &'static str,
    route: &str,
    status: u16,
    f: impl FnOnce(&Counter, &Histogram),
) {
    /// By method and status, then by route: a route is looked up as the `&str` it is.
    type Series = HashMap<(&'static str, u16), HashMap<Box<str>, (Counter, Histogram)>>;
    thread_local! {
        static SERIES: std::cell::RefCell<(usize, Series)> =
            std::cell::RefCell::new((0, HashMap::new()));
    }
    SERIES.with_borrow_mut(|(kept, series)| {
        let by_route = series.entry((method, status)).or_default();
        if let Some((count, duration)) = by_route.get(route) {
            return f(count, duration);
        }
        let labels = [
            ("method", method.to_owned()),
            ("route", route.to_owned()),
            ("status", status.to_string()),
        ];
        let count = metrics::counter!("http_requests_total", &labels);
        let duration = metrics::histogram!("http_request_duration_seconds", &labels);
        f(&count, &duration);
        if *kept < SERIES_PER_THREAD {
            *kept += 1;
            by_route.insert(route.into(), (count, duration));
        }
    });
}

/// The method as a metric label or log field: one of the standard methods, or `other`. Any
/// client may send any token as a method; each new one would add series to `/metrics` (and
/// a long one would go into every log line of its request).
pub fn method_label(method: &Method) -> &'static str {
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
