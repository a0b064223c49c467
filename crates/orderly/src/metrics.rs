//! The process's Prometheus metrics: the global recorder, histogram buckets, `build_info`, and
//! process memory, CPU and files sampled at scrape time (metrics-process). Every part of orderly records with
//! the `metrics` macros; this module decides how they are exported.

use std::sync::{Arc, OnceLock};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use orderly_http::MetricsRenderer;

/// Buckets (seconds) for request and job durations: 1 ms to 10 s.
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Installs the recorder (once per process; later calls share it) and returns what renders
/// `/metrics`.
pub fn install() -> MetricsRenderer {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    let handle = HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), DURATION_BUCKETS)
                .and_then(|builder| {
                    builder.set_buckets_for_metric(
                        Matcher::Full("worker_coalesced_batch_size".into()),
                        &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0],
                    )
                })
                .unwrap_or_else(|_| PrometheusBuilder::new())
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder already installed (a test harness): keep its handle's view.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            metrics::gauge!(
                "orderly_build_info",
                "version" => env!("CARGO_PKG_VERSION"),
                "revision" => env!("ORDERLY_GIT_REVISION"),
            )
            .set(1.0);
            handle
        })
        .clone();
    MetricsRenderer(Arc::new(move || {
        record_process();
        handle.render()
    }))
}

/// Help text for every series, as Prometheus (and `promtool check metrics`) expects.
#[allow(clippy::too_many_lines)] // A table: one entry per metric the service exports.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "http_requests_total",
        "HTTP requests answered, by method, route template and status"
    );
    describe_histogram!(
        "http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer an HTTP request"
    );
    describe_gauge!(
        "http_requests_in_flight",
        "HTTP requests being answered now"
    );
    describe_gauge!(
        "http_connections_open",
        "HTTP connections open now (at http.max_connections, new ones wait to be accepted)"
    );
    describe_counter!(
        "http_requests_shed_total",
        "API requests refused at once with 503, by reason: in_flight (http.max_in_flight were \
         being answered), database_away (the database could not be reached and has not \
         answered since), anonymous (requests without a verified key or console session held \
         their share of http.max_in_flight, http.anonymous_share)"
    );
    describe_gauge!(
        "http_requests_in_flight_anonymous",
        "API requests without a verified key or console session being answered now (at most \
         http.anonymous_share percent of http.max_in_flight)"
    );
    describe_counter!(
        "orders_shed_total",
        "Orders refused with 503 overloaded at the order writer, by reason: congested (at the door: the adaptive limit reached, or just after a shed), standing_queue (waited past orders.queue_wait_target in a standing queue), queue_wait (waited longer than orders.max_queue_wait behind a full batch), queue_full"
    );
    describe_gauge!(
        "orderly_database_away",
        "1 while API requests are refused at once because the database could not be reached"
    );
    describe_counter!(
        "http_requests_rate_limited_total",
        "API requests refused with 429 rate_limited, by policy (admin, storefront, anonymous)"
    );
    describe_counter!(
        "rate_limit_redis_failures_total",
        "Rate-limit checks Redis failed (each process then limits on its own for a second)"
    );
    describe_counter!(
        "http_accept_errors_total",
        "Failed accepts of HTTP connections (most often: out of file descriptors)"
    );
    describe_counter!("orders_created_total", "Orders placed");
    describe_counter!("jobs_enqueued_total", "Jobs enqueued, by kind");
    describe_counter!("jobs_completed_total", "Job runs that succeeded, by kind");
    describe_histogram!(
        "worker_coalesced_batch_size",
        "Requests answered by one statement for jobs running together (receipts' order reads \
         and receipt_sent_at updates)"
    );
    describe_counter!(
        "jobs_retried_total",
        "Job runs that failed and will be retried, by kind"
    );
    describe_counter!(
        "jobs_discarded_total",
        "Jobs discarded after failing for good, by kind"
    );
    describe_histogram!(
        "job_run_duration_seconds",
        Unit::Seconds,
        "Time one run of a job took, by kind"
    );
    describe_histogram!(
        "job_start_latency_seconds",
        Unit::Seconds,
        "Time from a job being due to its run starting, by kind"
    );
    describe_gauge!(
        "jobs",
        "Jobs available, running, discarded and cancelled, sampled by workers (each reports the whole table's count: take the max across processes); completed jobs are counted by jobs_completed_total"
    );
    describe_gauge!(
        "job_limit",
        "A fleet-wide limit on jobs, by scope (queue, kind, partition: jobs at once; kind_rate, partition_rate: jobs per second) and the queue or kind it limits"
    );
    describe_gauge!(
        "job_limit_in_use",
        "Jobs running (or fetched ahead) under a concurrency limit across the fleet; for a partition limit, in its busiest partition"
    );
    describe_gauge!(
        "job_limit_waiting",
        "Due jobs a fleet-wide limit holds back now"
    );
    describe_counter!(
        "job_limit_admitted_total",
        "Jobs a rate limit has let start, across the fleet (its rate is this counter's rate)"
    );
    describe_gauge!(
        "orderly_database_up",
        "1 when the database answered a ping at scrape time, else 0"
    );
    describe_gauge!(
        "jobs_oldest_due_age_seconds",
        Unit::Seconds,
        "How long the oldest due, available job has waited to start"
    );
    describe_gauge!(
        "worker_heartbeat_timestamp_seconds",
        Unit::Seconds,
        "Unix time a worker last ran its housekeeping (rescue, job counts)"
    );
    describe_counter!(
        "cache_requests_total",
        "Product cache lookups, by tier and result (local/redis hits, database loads)"
    );
    describe_counter!("cache_errors_total", "Failed calls to a cache tier");
    describe_counter!(
        "cache_fallbacks_total",
        "Reads that skipped a failing cache tier"
    );
    describe_counter!(
        "webhook_attempts_total",
        "Webhook delivery attempts, by outcome (succeeded, failed, blocked)"
    );
    describe_histogram!(
        "webhook_attempt_duration_seconds",
        Unit::Seconds,
        "How long one webhook delivery attempt took"
    );
    describe_histogram!(
        "webhook_delivery_lag_seconds",
        Unit::Seconds,
        "From an event's commit to its successful delivery"
    );
    describe_counter!(
        "webhook_endpoints_disabled_total",
        "Webhook endpoints disabled automatically (410 Gone, or failing too long)"
    );
    describe_gauge!(
        "db_pool_connections",
        "Database pool connections, idle and in use"
    );
    describe_gauge!(
        "orderly_build_info",
        "Always 1; the labels name the version and git revision"
    );
    process_collector();
}

/// The process collector: resident memory, CPU time, threads and open files.
fn process_collector() -> &'static metrics_process::Collector {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR.get_or_init(|| {
        let collector = metrics_process::Collector::default();
        collector.describe();
        collector
    })
}

/// Samples the process figures, at scrape time.
fn record_process() {
    process_collector().collect();
}
