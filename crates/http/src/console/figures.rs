//! This process's request and cache figures for the overview, read from its own Prometheus
//! text (what `/metrics` serves) rather than counted again on every request. Rates need two
//! readings: each overview keeps its reading, and the figures are the difference from the
//! oldest reading of the last minute (from process start on the first view).
//!
//! The Prometheus text is parsed by hand: only counters and histogram buckets of a few known
//! series are read, which a dozen lines do; no crate of the ecosystem's core parses it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Totals read at one instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Reading {
    /// API requests (`/v1/…`) answered, and how many of them with a 5xx.
    pub(crate) requests: f64,
    pub(crate) errors: f64,
    /// Cumulative request counts by bucket bound (seconds, as written).
    pub(crate) buckets: BTreeMap<OrderedBound, f64>,
    /// Product reads served from the cache (either tier) and loaded from the database.
    pub(crate) cache_hits: f64,
    pub(crate) cache_loads: f64,
}

/// A bucket's upper bound, ordered (`+Inf` last).
#[derive(Debug, Clone, Copy)]
pub(crate) struct OrderedBound(pub(crate) f64);

impl PartialEq for OrderedBound {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for OrderedBound {}

impl PartialOrd for OrderedBound {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrderedBound {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// What the overview shows of this process's traffic.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Figures {
    /// Over how long; `None`: since the process started.
    pub(crate) over: Option<Duration>,
    pub(crate) requests: f64,
    pub(crate) error_ratio: Option<f64>,
    /// The bucket bound under which 99% of the requests were answered, in seconds.
    pub(crate) p99: Option<f64>,
    pub(crate) cache_hit_ratio: Option<f64>,
}

/// The value of label `name` in `{a="x",b="y"}`.
fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    labels
        .trim_start_matches('{')
        .trim_end_matches('}')
        .split("\",")
        .filter_map(|pair| pair.split_once("=\""))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_end_matches('"'))
}

/// Reads the series the overview needs from Prometheus text.
pub(crate) fn read(text: &str) -> Reading {
    let mut reading = Reading::default();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = series.split_at(series.find('{').unwrap_or(series.len()));
        let api = label(labels, "route").is_some_and(|r| r.starts_with("/v1/"));
        match name {
            "http_requests_total" if api => {
                reading.requests += value;
                if label(labels, "status").is_some_and(|s| s.starts_with('5')) {
                    reading.errors += value;
                }
            }
            "http_request_duration_seconds_bucket" if api => {
                let bound = match label(labels, "le") {
                    Some("+Inf") => f64::INFINITY,
                    Some(le) => le.parse().unwrap_or(f64::INFINITY),
                    None => continue,
                };
                *reading.buckets.entry(OrderedBound(bound)).or_default() += value;
            }
            "cache_requests_total" => match (label(labels, "tier"), label(labels, "result")) {
                (Some("local" | "redis"), Some("hit")) => reading.cache_hits += value,
                (Some("database"), Some("load")) => reading.cache_loads += value,
                _ => {}
            },
            _ => {}
        }
    }
    reading
}

/// The figures between two readings.
pub(crate) fn between(earlier: &Reading, later: &Reading, over: Option<Duration>) -> Figures {
    let requests = later.requests - earlier.requests;
    let errors = later.errors - earlier.errors;
    let p99 = (requests > 0.0)
        .then(|| {
            later
                .buckets
                .iter()
                .map(|(bound, count)| {
                    (
                        bound.0,
                        count - earlier.buckets.get(bound).copied().unwrap_or(0.0),
                    )
                })
                .find(|(_, count)| *count >= requests * 0.99)
                .map(|(bound, _)| bound)
        })
        .flatten();
    let hits = later.cache_hits - earlier.cache_hits;
    let loads = later.cache_loads - earlier.cache_loads;
    Figures {
        over,
        requests,
        error_ratio: (requests > 0.0).then(|| errors / requests),
        p99,
        cache_hit_ratio: (hits + loads > 0.0).then(|| hits / (hits + loads)),
    }
}

/// The readings of the last minute, at most one per overview refresh (bounded: 64).
static READINGS: Mutex<VecDeque<(Instant, Reading)>> = Mutex::new(VecDeque::new());

/// Takes a reading of `text` and returns the figures since the oldest reading of the last
/// minute.
pub(crate) fn sample(text: &str) -> Figures {
    let now = Instant::now();
    let reading = read(text);
    let mut readings = READINGS.lock().unwrap_or_else(PoisonError::into_inner);
    while readings
        .front()
        .is_some_and(|(at, _)| now.duration_since(*at) > Duration::from_secs(60))
        || readings.len() >= 64
    {
        readings.pop_front();
    }
    let figures = match readings.front() {
        Some((at, earlier)) if now.duration_since(*at) >= Duration::from_secs(1) => {
            between(earlier, &reading, Some(now.duration_since(*at)))
        }
        _ => between(&Reading::default(), &reading, None),
    };
    readings.push_back((now, reading));
    figures
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# TYPE http_requests_total counter
http_requests_total{method="GET",route="/v1/products/{id}",status="200"} 98
http_requests_total{method="POST",route="/v1/orders",status="503"} 2
http_requests_total{method="GET",route="/console",status="200"} 40
http_request_duration_seconds_bucket{method="GET",route="/v1/products/{id}",status="200",le="0.005"} 90
http_request_duration_seconds_bucket{method="GET",route="/v1/products/{id}",status="200",le="0.01"} 98
http_request_duration_seconds_bucket{method="GET",route="/v1/products/{id}",status="200",le="+Inf"} 98
http_request_duration_seconds_bucket{method="POST",route="/v1/orders",status="503",le="0.005"} 0
http_request_duration_seconds_bucket{method="POST",route="/v1/orders",status="503",le="0.01"} 1
http_request_duration_seconds_bucket{method="POST",route="/v1/orders",status="503",le="+Inf"} 2
cache_requests_total{tier="local",result="hit"} 30
cache_requests_total{tier="local",result="miss"} 10
cache_requests_total{tier="redis",result="hit"} 6
cache_requests_total{tier="database",result="load"} 4
"#;

    #[test]
    fn api_requests_errors_p99_and_cache_hits_are_read_from_the_text() {
        let figures = between(&Reading::default(), &read(TEXT), None);
        assert_eq!(figures.requests, 100.0, "console routes are not the API's");
        assert_eq!(figures.error_ratio, Some(0.02));
        assert_eq!(figures.p99, Some(0.01), "99 of 100 answered within 10 ms");
        assert_eq!(figures.cache_hit_ratio, Some(0.9));
        let same = between(&read(TEXT), &read(TEXT), Some(Duration::from_secs(5)));
        assert_eq!(
            (same.requests, same.error_ratio, same.p99),
            (0.0, None, None)
        );
    }
}
