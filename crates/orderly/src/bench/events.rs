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
    let mut config = config.clone();
    if let Some(url) = &args.database_url {
        config.database.url = SecretUrl::new(url.clone());
    }
    config.http.listen = "127.0.0.1:0".parse()?;
    config.worker.scheduler = false;
    // The benchmark's admin key would be held to 1,000 orders/s: measure the relay at the
    // rate the service can take.
    config.rate_limits.enabled = false;
    config.mail.smtp_url = SecretUrl::new("");
    let outbox = std::env::temp_dir().join(format!("orderly-bench-{tag}"));
    config.mail.outbox = outbox.clone();
    config.events.nats_url = SecretUrl::new(args.nats_url.clone());
    config.events.subject_prefix = format!("bench_{tag}");
    config.events.stream = format!("BENCH_{tag}");
    config.database.max_connections = config.database.max_connections.max(16);

    let nats = async_nats::connect(args.nats_url.as_str())
        .await
        .context("connecting to NATS")?;
    let mut subscriber = nats
        .subscribe(format!("{}.>", config.events.subject_prefix))
        .await?;
    let arrivals = Arc::new(Mutex::new(Arrivals {
        count: 0,
        last: None,
        lag_us: Histogram::new_with_bounds(1, 600_000_000, 3)?,
    }));
    let listening = {
        let arrivals = arrivals.clone();
        tokio::spawn(async move {
            while let Some(message) = subscriber.next().await {
                let now = OffsetDateTime::now_utc();
                let event: serde_json::Value = serde_json::from_slice(&message.payload)?;
                let occurred = OffsetDateTime::parse(
                    event["occurred_at"].as_str().unwrap_or_default(),
                    &Rfc3339,
                )?;
                let lag = (now - occurred).whole_microseconds().max(1) as u64;
                let mut arrivals = arrivals.lock().unwrap_or_else(PoisonError::into_inner);
                arrivals.count += 1;
                arrivals.last = Some(Instant::now());
                arrivals.lag_us.saturating_record(lag);
            }
            anyhow::Ok(())
        })
    };

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
    let deadline = orders_done + Duration::from_secs(args.timeout_secs);
    let events = loop {
        let relay = store.relay_state(NATS_RELAY).await?;
        let count = arrivals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .count;
        if relay.waiting == 0 && relay.position > 0 && count >= relay.position as u64 {
            break relay.position as u64;
        }
        if Instant::now() > deadline {
            bail!(
                "the relay had not caught up {} s after the orders stopped ({} waiting)",
                args.timeout_secs,
                relay.waiting
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
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
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{}: {:.0} orders/s; {} events relayed at {:.0}/s, commit to NATS p50 {:.1} ms, \
             p99 {:.1} ms, max {:.1} ms; caught up {:.0} ms after the last order",
            report.backend,
            report.orders_per_s,
            report.events,
            report.relayed_per_s,
            report.lag_p50_ms,
            report.lag_p99_ms,
            report.lag_max_ms,
            report.caught_up_after_ms
        );
    }
    Ok(())
}
