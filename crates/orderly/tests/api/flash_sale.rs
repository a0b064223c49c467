//! A flash sale: one product with 100 in stock, 2,000 clients ordering one each at once.
//! Exactly 100 orders are placed; every other client hears `409 insufficient_stock`, or is
//! shed (`503 overloaded`, `429 rate_limited`); no other 5xx. Prints how fast the
//! rejections came (docs/reliability.md keeps the figures).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{StatusCode, TestApp, backend_tests};

const STOCK: i64 = 100;
const CLIENTS: usize = 2_000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// `CLIENTS` clients on connections opened beforehand, each ordering one unit at once: each
/// client's status, problem code and time to its answer; and when the sale opened.
async fn open_the_sale(
    app: &TestApp,
) -> (
    Vec<tokio::task::JoinHandle<(StatusCode, String, Duration)>>,
    Instant,
) {
    // One connection per client, opened before the sale starts, as 2,000 browsers' requests
    // arriving through a balancer's kept-alive connections would be.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .build()
        .unwrap();
    let url = app.url("/v1/orders");
    let warm: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let request = client.get(app.url("/healthz")).send();
            tokio::spawn(async move { request.await.map(|r| r.status()) })
        })
        .collect();
    for connection in warm {
        assert_eq!(connection.await.unwrap().unwrap(), StatusCode::OK);
    }
    let start = Arc::new(tokio::sync::Barrier::new(CLIENTS));
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (client, url, key, start) = (
                client.clone(),
                url.clone(),
                app.storefront_key.clone(),
                start.clone(),
            );
            tokio::spawn(async move {
                start.wait().await;
                let started = Instant::now();
                let response = client
                    .post(&url)
                    .bearer_auth(&key)
                    .header("idempotency-key", format!("flash-{i}"))
                    .json(&json!({
                        "customer": {"email": format!("fan{i}@example.com"), "name": "Fan"},
                        "lines": [{"sku": "FLASH", "quantity": 1}],
                    }))
                    .send()
                    .await
                    .expect("every client is answered");
                let status = response.status();
                let body: Value = response.json().await.unwrap_or_default();
                let code = body["code"].as_str().unwrap_or_default().to_owned();
                (status, code, started.elapsed())
            })
        })
        .collect();
    let sale = Instant::now();
    (tasks, sale)
}

async fn flash_sale(app: TestApp) {
    app.create_product("FLASH", 2_500, STOCK).await;
    let (tasks, sale) = open_the_sale(&app).await;
    let mut answers = Vec::with_capacity(CLIENTS);
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    let took = sale.elapsed();

    let count = |status: StatusCode, code: &str| {
        answers
            .iter()
            .filter(|(s, c, _)| *s == status && (code.is_empty() || c == code))
            .count()
    };
    let created = count(StatusCode::CREATED, "");
    let sold_out = count(StatusCode::CONFLICT, "insufficient_stock");
    let shed = count(StatusCode::SERVICE_UNAVAILABLE, "overloaded")
        + count(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    let unexpected: Vec<_> = answers
        .iter()
        .filter(|(s, c, _)| {
            !(*s == StatusCode::CREATED
                || (*s == StatusCode::CONFLICT && c == "insufficient_stock")
                || (*s == StatusCode::SERVICE_UNAVAILABLE && c == "overloaded")
                || (*s == StatusCode::TOO_MANY_REQUESTS && c == "rate_limited"))
        })
        .take(5)
        .collect();
    assert!(unexpected.is_empty(), "unexpected answers: {unexpected:?}");
    assert_eq!(created as i64, STOCK, "exactly the stock is sold");
    assert_eq!(created + sold_out + shed, CLIENTS);

    let mut rejected: Vec<Duration> = answers
        .iter()
        .filter(|(s, ..)| *s != StatusCode::CREATED)
        .map(|(.., took)| *took)
        .collect();
    rejected.sort();
    let mut placed: Vec<Duration> = answers
        .iter()
        .filter(|(s, ..)| *s == StatusCode::CREATED)
        .map(|(.., took)| *took)
        .collect();
    placed.sort();
    eprintln!(
        "flash sale ({:?}): {CLIENTS} clients, stock {STOCK}, all answered in {took:.2?}: \
         {created} placed (p99 {:.1?}), {sold_out} insufficient_stock, {shed} shed; \
         rejections p50 {:.1?}, p99 {:.1?}, max {:.1?}",
        app.backend,
        percentile(&placed, 0.99),
        percentile(&rejected, 0.50),
        percentile(&rejected, 0.99),
        rejected.last().copied().unwrap_or_default(),
    );

    // The database agrees: 100 orders, stock 0, never below.
    assert_eq!(app.scalar("SELECT COUNT(*) FROM orders").await, STOCK);
    assert_eq!(
        app.scalar("SELECT stock FROM products WHERE sku = 'FLASH'")
            .await,
        0
    );
}

backend_tests! {
    async fn two_thousand_clients_buy_a_hundred_in_stock(app) {
        flash_sale(app).await;
    }
}
