//! `orderly bench webhooks`: webhook fan-out. Runs orderly (API and worker) in this process
//! with `endpoints` local receivers subscribed to `order.created`, places `events` orders over
//! HTTP, and measures deliveries per second and the time from each event's commit to its
//! arrival at a receiver.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::bail;
use axum::body::Bytes;
use axum::extract::State;
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio_util::sync::CancellationToken;

use super::shop::Shop;
use crate::app::{Application, Roles};
use crate::cli::WebhooksBenchArgs;
use crate::config::{Config, SecretUrl};

/// The product every order is for.
const SKU: &str = "BENCH-HOOK";

/// What every receiver shares: how many deliveries arrived, when the last one did, and the
/// commit-to-arrival times (µs).
#[derive(Debug)]
struct Arrivals {
    count: AtomicU64,
    last: Mutex<Option<Instant>>,
    lag_us: Mutex<Histogram<u64>>,
}

async fn receive(State(arrivals): State<Arc<Arrivals>>, body: Bytes) -> &'static str {
    let now = OffsetDateTime::now_utc();
    let committed = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|event| OffsetDateTime::parse(event["timestamp"].as_str()?, &Rfc3339).ok());
    if let Some(committed) = committed {
        let lag = (now - committed).whole_microseconds().max(1);
        let _ = arrivals
            .lag_us
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(u64::try_from(lag).unwrap_or(u64::MAX));
    }
    *arrivals.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
    arrivals.count.fetch_add(1, Ordering::Relaxed);
    "ok"
}

#[derive(Debug, Serialize)]
struct WebhooksReport {
    backend: &'static str,
    events: usize,
    endpoints: usize,
    deliveries: u64,
    seconds: f64,
    deliveries_per_s: f64,
    commit_to_receipt_p50_ms: f64,
    commit_to_receipt_p99_ms: f64,
    orders_per_s: f64,
}

pub async fn run(args: WebhooksBenchArgs, config: &Config) -> anyhow::Result<()> {
    let outbox = std::env::temp_dir().join(format!("orderly-bench-{}", uuid::Uuid::new_v4()));
    let config = bench_config(&args, config, &outbox);
    let app = Application::build(&config, Roles::ALL).await?;
    let store = app.store().clone();
    let shop = Shop::open(&store, app.port(), "bench webhooks").await?;
    let stop = CancellationToken::new();
    let serving = tokio::spawn(app.serve(stop.clone()));

    let arrivals = Arc::new(Arrivals {
        count: AtomicU64::new(0),
        last: Mutex::new(None),
        lag_us: Mutex::new(Histogram::new_with_bounds(1, 600_000_000, 3)?),
    });
    register_receivers(&shop, args.endpoints, &arrivals).await?;
    shop.create_product(SKU).await?;
    eprintln!(
        "placing {} orders, each event to {} endpoints",
        args.events, args.endpoints
    );
    let started = Instant::now();
    shop.place_orders(SKU, args.events as u64, args.order_clients)
        .await?;
    let orders_per_s = args.events as f64 / started.elapsed().as_secs_f64();
    let expected = (args.events * args.endpoints) as u64;
    arrivals.wait_for(expected, args.timeout_secs).await?;
    let (seconds, p50, p99) = arrivals.figures(started);
    let report = WebhooksReport {
        backend: store.kind().as_str(),
        events: args.events,
        endpoints: args.endpoints,
        deliveries: expected,
        seconds,
        deliveries_per_s: expected as f64 / seconds,
        commit_to_receipt_p50_ms: p50,
        commit_to_receipt_p99_ms: p99,
        orders_per_s,
    };
    stop.cancel();
    serving.await??;
    let _ = std::fs::remove_dir_all(&outbox);
    report.print(args.json)
}

/// The configuration the benchmark runs with: every role in one process, deliveries to
/// loopback allowed, receipts written to `outbox`.
fn bench_config(args: &WebhooksBenchArgs, config: &Config, outbox: &std::path::Path) -> Config {
    let mut config = config.clone();
    if let Some(url) = &args.database_url {
        config.database.url = SecretUrl::new(url.clone());
    }
    config.http.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    config.webhooks.allow_private = true;
    config.worker.scheduler = false;
    config.mail.smtp_url = SecretUrl::new("");
    config.mail.outbox = outbox.to_owned();
    if let Some(concurrency) = args.concurrency {
        config.worker.queues.insert("webhooks".into(), concurrency);
    }
    config.database.max_connections = config.database.max_connections.max(16);
    config
}

/// `endpoints` local receivers, each registered with `shop` for `order.created`.
async fn register_receivers(
    shop: &Shop,
    endpoints: usize,
    arrivals: &Arc<Arrivals>,
) -> anyhow::Result<()> {
    for _ in 0..endpoints {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        let router = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(arrivals.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        let created = shop
            .client
            .post(format!("{}/v1/webhooks", shop.base))
            .bearer_auth(&shop.key)
            .json(&json!({"url": url, "event_types": ["order.created"]}))
            .send()
            .await?;
        if !created.status().is_success() {
            bail!("creating an endpoint: {}", created.text().await?);
        }
    }
    Ok(())
}

impl Arrivals {
    /// Waits until `expected` deliveries arrived, for at most `timeout_secs`.
    async fn wait_for(&self, expected: u64, timeout_secs: u64) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(timeout_secs);
        while self.count.load(Ordering::Relaxed) < expected {
            if Instant::now() > deadline {
                bail!(
                    "only {} of {expected} deliveries arrived within {timeout_secs} s",
                    self.count.load(Ordering::Relaxed),
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }

    /// Seconds from `started` to the last arrival, and the p50 and p99 of commit to arrival
    /// in milliseconds.
    fn figures(&self, started: Instant) -> (f64, f64, f64) {
        let last = self
            .last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .unwrap_or_else(Instant::now);
        let lags = self.lag_us.lock().unwrap_or_else(PoisonError::into_inner);
        let ms = |q| lags.value_at_quantile(q) as f64 / 1_000.0;
        ((last - started).as_secs_f64(), ms(0.5), ms(0.99))
    }
}

impl WebhooksReport {
    fn print(&self, json: bool) -> anyhow::Result<()> {
        if json {
            println!("{}", serde_json::to_string(self)?);
        } else {
            println!(
                "{} events x {} endpoints on {}: {} deliveries in {:.2} s = {:.0} deliveries/s; \
                 event commit to receipt p50 {:.1} ms, p99 {:.1} ms (orders placed at {:.0}/s)",
                self.events,
                self.endpoints,
                self.backend,
                self.deliveries,
                self.seconds,
                self.deliveries_per_s,
                self.commit_to_receipt_p50_ms,
                self.commit_to_receipt_p99_ms,
                self.orders_per_s
            );
        }
        Ok(())
    }
}
