//! `orderly bench orders`: places real orders over HTTP, each with a fresh idempotency key,
//! from `concurrency` clients for `duration` seconds. With `--retry` each client follows the
//! retry rule the README gives clients: a connection error, a timeout, `502`, `503`, `429` or
//! `409 idempotency_key_in_flight` sends the same order again with the same key.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::{Report, Tally, XorShift};
use crate::cli::OrdersBenchArgs;

/// Acknowledged orders waiting to be written to `--record`; a full channel makes clients wait
/// for the file, which is the bound.
const RECORD_BACKLOG: usize = 4096;

/// The pause before the first retry; it doubles up to [`MAX_BACKOFF`]. A server's
/// `Retry-After` replaces it, capped at [`MAX_BACKOFF`] too.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

pub async fn run(args: OrdersBenchArgs) -> anyhow::Result<Report> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .timeout(args.timeout)
        .build()?;
    let base = args.url.trim_end_matches('/').to_owned();
    let skus = create_products(&client, &base, &args.key, args.products).await?;
    eprintln!(
        "placing orders of {} line(s) over {} products from {} clients for {} s{}",
        args.lines,
        args.products,
        args.concurrency,
        args.duration,
        if args.retry {
            ", retrying with the same key"
        } else {
            ""
        }
    );
    let (record, recorder) = match &args.record {
        Some(path) => {
            let (sender, receiver) = mpsc::channel(RECORD_BACKLOG);
            (
                Some(sender),
                Some(tokio::spawn(write_record(path.clone(), receiver))),
            )
        }
        None => (None, None),
    };
    let client = Client {
        http: client,
        orders_url: format!("{base}/v1/orders"),
        key: args.key.clone(),
        retry_for: args.retry.then_some(args.retry_for),
    };
    let skus = Arc::new(skus);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.duration);
    if let Some(rate) = args.rate {
        let total = offer(
            rate,
            args.concurrency,
            deadline,
            args.lines,
            client,
            skus,
            record,
        )
        .await;
        let elapsed = started.elapsed();
        if let Some(recorder) = recorder {
            recorder.await??;
        }
        return Ok(total.report("orderly over HTTP", args.concurrency, elapsed));
    }
    let mut workers = Vec::new();
    for worker in 0..args.concurrency {
        let (client, skus, record) = (client.clone(), skus.clone(), record.clone());
        let lines = args.lines;
        workers.push(tokio::spawn(async move {
            let mut rng = XorShift::new(worker as u64 + 1);
            let mut tally = Tally::default();
            while Instant::now() < deadline {
                let body = order_body(&skus, lines, &mut rng);
                client.place_one(&body, &mut tally, record.as_ref()).await;
            }
            tally
        }));
    }
    drop(record);
    let mut total = Tally::default();
    for worker in workers {
        total.merge(&worker.await?);
    }
    let elapsed = started.elapsed();
    if let Some(recorder) = recorder {
        recorder.await??;
    }
    Ok(total.report("orderly over HTTP", args.concurrency, elapsed))
}

/// An order of `lines` lines over consecutive products from a random one.
fn order_body(skus: &[String], lines: usize, rng: &mut XorShift) -> serde_json::Value {
    let first = rng.below(skus.len());
    let order_lines: Vec<_> = (0..lines)
        .map(|i| json!({"sku": skus[(first + i) % skus.len()], "quantity": 1}))
        .collect();
    json!({
        "customer": {"email": "bench@example.com", "name": "Bench"},
        "lines": order_lines,
    })
}

/// Open loop (`--rate`): starts `rate` orders a second whatever the answers, each as its own
/// task, with at most `outstanding` unanswered; past that an order is not sent and counts as
/// skipped (the load generator, not the server, was the limit).
async fn offer(
    rate: f64,
    outstanding: usize,
    deadline: Instant,
    lines: usize,
    client: Client,
    skus: Arc<Vec<String>>,
    record: Option<mpsc::Sender<String>>,
) -> Tally {
    let permits = Arc::new(tokio::sync::Semaphore::new(outstanding.max(1)));
    let total = Arc::new(std::sync::Mutex::new(Tally::default()));
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.001)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut rng = XorShift::new(7);
    let mut tasks = tokio::task::JoinSet::new();
    while Instant::now() < deadline {
        ticks.tick().await;
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            total.lock().unwrap_or_else(|e| e.into_inner()).skipped();
            continue;
        };
        let (client, total, record) = (client.clone(), total.clone(), record.clone());
        let body = order_body(&skus, lines, &mut rng);
        tasks.spawn(async move {
            let mut tally = Tally::default();
            client.place_one(&body, &mut tally, record.as_ref()).await;
            total
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .merge(&tally);
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    drop(record);
    Arc::into_inner(total)
        .map(|t| t.into_inner().unwrap_or_else(|e| e.into_inner()))
        .unwrap_or_default()
}

/// One client's way of placing an order.
#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    orders_url: String,
    key: String,
    /// With `--retry`: how long one order may be retried.
    retry_for: Option<Duration>,
}

/// What one attempt came to.
enum Attempt {
    Placed(String),
    /// Worth sending again with the same key; the server may say how long to wait.
    Retry(Option<Duration>),
    /// Refused at once for load (`503 overloaded`, `429 rate_limited`): worth sending again.
    Shed(Option<Duration>),
    Failed,
}

impl Client {
    /// Places `body` under a fresh key, tallies it, and records it when acknowledged.
    async fn place_one(
        &self,
        body: &serde_json::Value,
        tally: &mut Tally,
        record: Option<&mpsc::Sender<String>>,
    ) {
        let key = uuid::Uuid::new_v4().to_string();
        let sent = Instant::now();
        let placed = self.place(&key, body, tally).await;
        tally.record(placed.is_some(), sent.elapsed());
        if let (Some(id), Some(record)) = (placed, record) {
            let _ = record.send(format!("{key} {id}\n")).await;
        }
    }

    /// Places one order under `key`; its id once acknowledged, `None` when it finally failed.
    async fn place(
        &self,
        key: &str,
        body: &serde_json::Value,
        tally: &mut Tally,
    ) -> Option<String> {
        let started = Instant::now();
        let mut backoff = FIRST_BACKOFF;
        loop {
            let wait = match self.attempt(key, body).await {
                Attempt::Placed(id) => return Some(id),
                Attempt::Failed => return None,
                Attempt::Shed(after) => {
                    tally.shed();
                    after.unwrap_or(backoff)
                }
                Attempt::Retry(after) => after.unwrap_or(backoff),
            };
            let retry_for = self.retry_for?;
            if started.elapsed() + wait > retry_for {
                return None;
            }
            tally.retried();
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    async fn attempt(&self, key: &str, body: &serde_json::Value) -> Attempt {
        let response = match self
            .http
            .post(&self.orders_url)
            .bearer_auth(&self.key)
            .header("idempotency-key", key)
            .json(body)
            .send()
            .await
        {
            Ok(response) => response,
            // Refused, reset, or timed out: the order may or may not have been placed, which
            // is what the key is for.
            Err(_) => return Attempt::Retry(None),
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .map(|s| Duration::from_secs(s).min(MAX_BACKOFF));
        let Ok(bytes) = response.bytes().await else {
            return Attempt::Retry(None);
        };
        match status {
            StatusCode::CREATED => serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v["id"].as_str().map(str::to_owned))
                .map_or(Attempt::Failed, Attempt::Placed),
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE if is_shed(&bytes) => {
                Attempt::Shed(retry_after)
            }
            StatusCode::BAD_GATEWAY
            | StatusCode::TOO_MANY_REQUESTS
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT => Attempt::Retry(retry_after),
            StatusCode::CONFLICT if is_in_flight(&bytes) => Attempt::Retry(retry_after),
            _ => Attempt::Failed,
        }
    }
}

/// Whether a `409` says the same key is still being processed (rather than short stock).
fn is_in_flight(body: &[u8]) -> bool {
    problem_code(body).is_some_and(|code| code == "idempotency_key_in_flight")
}

/// Whether the answer is load shedding: `503 overloaded` or `429 rate_limited`.
fn is_shed(body: &[u8]) -> bool {
    problem_code(body).is_some_and(|code| code == "overloaded" || code == "rate_limited")
}

fn problem_code(body: &[u8]) -> Option<String> {
    let problem = serde_json::from_slice::<serde_json::Value>(body).ok()?;
    problem["code"].as_str().map(str::to_owned)
}

async fn write_record(
    path: std::path::PathBuf,
    mut lines: mpsc::Receiver<String>,
) -> anyhow::Result<()> {
    let file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .await
        .with_context(|| format!("cannot open {}", path.display()))?;
    let mut file = tokio::io::BufWriter::new(file);
    while let Some(line) = lines.recv().await {
        file.write_all(line.as_bytes()).await?;
    }
    file.flush().await?;
    Ok(())
}

/// Creates `count` products with stock enough for any run, and returns their skus.
async fn create_products(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    count: usize,
) -> anyhow::Result<Vec<String>> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut skus = Vec::with_capacity(count);
    for i in 0..count {
        let sku = format!("BENCH-{}-{i}", &run[..8]);
        let response = client
            .post(format!("{base}/v1/products"))
            .bearer_auth(key)
            .json(&json!({"sku": sku, "name": format!("Bench product {i}"), "price": 1250, "stock": 1_000_000_000}))
            .send()
            .await
            .context("cannot reach orderly")?;
        if response.status() != reqwest::StatusCode::CREATED {
            bail!(
                "creating bench products failed ({}); --key must be an admin key",
                response.status()
            );
        }
        skus.push(sku);
    }
    Ok(skus)
}
