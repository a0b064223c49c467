//! `orderly bench orders`: places real orders over HTTP, each with a fresh idempotency key,
//! from `concurrency` clients for `duration` seconds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;

use super::{Report, Tally, XorShift};
use crate::cli::OrdersBenchArgs;

pub async fn run(args: OrdersBenchArgs) -> anyhow::Result<Report> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .timeout(Duration::from_secs(30))
        .build()?;
    let base = args.url.trim_end_matches('/').to_owned();
    let skus = create_products(&client, &base, &args.key, args.products).await?;
    eprintln!(
        "placing orders of {} line(s) over {} products from {} clients for {} s",
        args.lines, args.products, args.concurrency, args.duration
    );
    let skus = Arc::new(skus);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.duration);
    let mut workers = Vec::new();
    for worker in 0..args.concurrency {
        let (client, base, key, skus) =
            (client.clone(), base.clone(), args.key.clone(), skus.clone());
        let lines = args.lines;
        workers.push(tokio::spawn(async move {
            let mut rng = XorShift::new(worker as u64 + 1);
            let mut tally = Tally::default();
            while Instant::now() < deadline {
                let first = rng.below(skus.len());
                let order_lines: Vec<_> = (0..lines)
                    .map(|i| json!({"sku": skus[(first + i) % skus.len()], "quantity": 1}))
                    .collect();
                let body = json!({
                    "customer": {"email": "bench@example.com", "name": "Bench"},
                    "lines": order_lines,
                });
                let sent = Instant::now();
                let result = client
                    .post(format!("{base}/v1/orders"))
                    .bearer_auth(&key)
                    .header("idempotency-key", uuid::Uuid::new_v4().to_string())
                    .json(&body)
                    .send()
                    .await;
                let ok = matches!(&result, Ok(r) if r.status() == reqwest::StatusCode::CREATED);
                if let Ok(response) = result {
                    let _ = response.bytes().await;
                }
                tally.record(ok, sent.elapsed());
            }
            tally
        }));
    }
    let mut total = Tally::default();
    for worker in workers {
        total.merge(&worker.await?);
    }
    Ok(total.report("orderly over HTTP", args.concurrency, started.elapsed()))
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
