//! `orderly bench events`: the relay to NATS under the order benchmark's load. Runs orderly
//! (API and worker, relaying to a stream of its own) in this process, places orders over
//! HTTP for `duration` seconds as `bench orders` does, and subscribes to what is published:
//! events/s from commit to the broker, the lag from each event's commit to its arrival through
//! NATS (p50/p99), and how long the relay took to catch up after the orders stopped.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use orderly_domain::Role;
use orderly_storage::{NATS_RELAY, NewApiKey};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio_util::sync::CancellationToken;

use crate::app::{Application, Roles};
use crate::cli::{EventsBenchArgs, OrdersBenchArgs};
use crate::config::{Config, SecretUrl};

#[derive(Debug, Serialize)]
struct EventsReport {
    backend: &'static str,
    orders_per_s: f64,
    events: u64,
    /// Events relayed a second, from the first order to the last event's arrival.
    relayed_per_s: f64,
    lag_p50_ms: f64,
    lag_p99_ms: f64,
    lag_max_ms: f64,
    /// From the last order's answer to the last event's arrival.
    caught_up_after_ms: f64,
}

/// What the subscriber saw: how many events, when the last came, and each one's lag (µs).
struct Arrivals {
    count: u64,
    last: Option<Instant>,
    lag_us: Histogram<u64>,
}

pub async fn run(args: EventsBenchArgs, config: &Config) -> anyhow::Result<()> {
    let tag = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let outbox = std::env::temp_dir().join(format!("orderly-bench-{tag}"));
    let config = bench_config(&args, config, &tag, &outbox);
    let nats = async_nats::connect(args.nats_url.as_str())
        .await
        .context("connecting to NATS")?;
    let arrivals = Arc::new(Mutex::new(Arrivals {
        count: 0,
        last: None,
        lag_us: Histogram::new_with_bounds(1, 600_000_000, 3)?,
    }));
    let listening = listen(&nats, &config.events.subject_prefix, arrivals.clone()).await?;

    let app = Application::build(&config, Roles::ALL).await?;
    let store = app.store().clone();
    let base = format!("http://127.0.0.1:{}", app.port());
    let (_, key) = store
        .create_api_key(&NewApiKey {
            name: "bench events".into(),
            role: Role::Admin,
        })
        .await?;
    let stop = CancellationToken::new();
    let serving = tokio::spawn(app.serve(stop.clone()));

    let started = Instant::now();
    let orders = super::orders::run(OrdersBenchArgs {
        url: base,
        key,
        concurrency: args.concurrency,
        duration: args.duration,
        rate: None,
        products: 100,
        lines: 1,
        retry: false,
        retry_for: Duration::from_secs(30),
        timeout: Duration::from_secs(10),
        record: None,
        json: false,
    })
    .await?;
    let orders_done = Instant::now();
    let events = caught_up(&store, &arrivals, orders_done, args.timeout_secs).await?;
    stop.cancel();
    serving.await??;
    listening.abort();
    let report = {
        let arrivals = arrivals.lock().unwrap_or_else(PoisonError::into_inner);
        let last = arrivals.last.unwrap_or(orders_done);
        let ms = |q| arrivals.lag_us.value_at_quantile(q) as f64 / 1_000.0;
        EventsReport {
            backend: store.kind().as_str(),
            orders_per_s: orders.orders_per_s,
            events,
            relayed_per_s: events as f64 / (last - started).as_secs_f64(),
            lag_p50_ms: ms(0.5),
            lag_p99_ms: ms(0.99),
            lag_max_ms: arrivals.lag_us.max() as f64 / 1_000.0,
            caught_up_after_ms: last.saturating_duration_since(orders_done).as_secs_f64() * 1_000.0,
        }
    };
    let _ = async_nats::jetstream::new(nats)
        .delete_stream(&config.events.stream)
        .await;
    let _ = std::fs::remove_dir_all(&outbox);
    report.print(args.json)
}

/// The configuration the benchmark runs with: every role in one process, no rate limits,
/// events relayed to a stream and subjects of its own (`tag`), receipts written to `outbox`.
fn bench_config(
    args: &EventsBenchArgs,
    config: &Config,
    tag: &str,
    outbox: &std::path::Path,
) -> Config {
    let mut config = config.clone();
    if let Some(url) = &args.database_url {
        config.database.url = SecretUrl::new(url.clone());
    }
    config.http.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    config.worker.scheduler = false;
    // The benchmark's admin key would be held to 1,000 orders/s: measure the relay at the
    // rate the service can take.
    config.rate_limits.enabled = false;
    config.mail.smtp_url = SecretUrl::new("");
    config.mail.outbox = outbox.to_owned();
    config.events.nats_url = SecretUrl::new(args.nats_url.clone());
    config.events.subject_prefix = format!("bench_{tag}");
    config.events.stream = format!("BENCH_{tag}");
    config.database.max_connections = config.database.max_connections.max(16);
    config
}

/// Counts the events published under `prefix` and how long each took from its commit.
async fn listen(
    nats: &async_nats::Client,
    prefix: &str,
    arrivals: Arc<Mutex<Arrivals>>,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<()>>> {
    let mut subscriber = nats.subscribe(format!("{prefix}.>")).await?;
    Ok(tokio::spawn(async move {
        while let Some(message) = subscriber.next().await {
            let now = OffsetDateTime::now_utc();
            let event: serde_json::Value = serde_json::from_slice(&message.payload)?;
            let occurred =
                OffsetDateTime::parse(event["occurred_at"].as_str().unwrap_or_default(), &Rfc3339)?;
            let lag = (now - occurred).whole_microseconds().max(1) as u64;
            let mut arrivals = arrivals.lock().unwrap_or_else(PoisonError::into_inner);
            arrivals.count += 1;
            arrivals.last = Some(Instant::now());
            arrivals.lag_us.saturating_record(lag);
        }
        anyhow::Ok(())
    }))
}

/// Waits until the relay has published every event and each has arrived; how many.
async fn caught_up(
    store: &orderly_storage::Store,
    arrivals: &Mutex<Arrivals>,
    orders_done: Instant,
    timeout_secs: u64,
) -> anyhow::Result<u64> {
    let deadline = orders_done + Duration::from_secs(timeout_secs);
    loop {
        let relay = store.relay_state(NATS_RELAY).await?;
        let count = arrivals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .count;
        if relay.waiting == 0 && relay.position > 0 && count >= relay.position as u64 {
            return Ok(relay.position as u64);
        }
        if Instant::now() > deadline {
            bail!(
                "the relay had not caught up {timeout_secs} s after the orders stopped ({} waiting)",
                relay.waiting
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

impl EventsReport {
    fn print(&self, json: bool) -> anyhow::Result<()> {
        if json {
            println!("{}", serde_json::to_string(self)?);
        } else {
            println!(
                "{}: {:.0} orders/s; {} events relayed at {:.0}/s, commit to NATS p50 {:.1} ms, \
                 p99 {:.1} ms, max {:.1} ms; caught up {:.0} ms after the last order",
                self.backend,
                self.orders_per_s,
                self.events,
                self.relayed_per_s,
                self.lag_p50_ms,
                self.lag_p99_ms,
                self.lag_max_ms,
                self.caught_up_after_ms
            );
        }
        Ok(())
    }
}
