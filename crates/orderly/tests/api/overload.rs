//! More work than a process takes on: past `http.max_in_flight` API requests, and past a full
//! order queue, requests are refused at once with `503 overloaded` and `Retry-After`, while
//! health and readiness are still answered. The database is made slow by a trigger.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, StatusCode, TestApp};

/// `n` requests at once; each one's status, problem code and how long it took.
async fn burst<F, Fut>(n: usize, send: F) -> Vec<(StatusCode, String, Duration)>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = reqwest::Response> + Send + 'static,
{
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let request = send(i);
            tokio::spawn(async move {
                let started = Instant::now();
                let response = request.await;
                let status = response.status();
                let retry_after = response.headers().get("retry-after").is_some();
                let body: Value = response.json().await.unwrap_or_default();
                let code = body["code"].as_str().unwrap_or_default().to_owned();
                if code == "overloaded" {
                    assert!(retry_after, "overloaded without Retry-After");
                }
                (status, code, started.elapsed())
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

/// Checks every answer was `201` or a `503 overloaded` given in under 500 ms, at least
/// `min_created` of the first and one of the second; returns how many were created.
fn only_created_or_shed_fast(
    answers: &[(StatusCode, String, Duration)],
    min_created: usize,
) -> usize {
    let created = answers
        .iter()
        .filter(|(s, ..)| *s == StatusCode::CREATED)
        .count();
    let shed: Vec<Duration> = answers
        .iter()
        .filter(|(status, code, _)| {
            *status == StatusCode::SERVICE_UNAVAILABLE && code == "overloaded"
        })
        .map(|(_, _, took)| *took)
        .collect();
    assert!(created >= min_created && !shed.is_empty(), "{answers:?}");
    assert_eq!(
        created + shed.len(),
        answers.len(),
        "only 201 or a shed 503: {answers:?}"
    );
    assert!(
        shed.iter().all(|took| *took < Duration::from_millis(500)),
        "{shed:?}"
    );
    created
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_in_flight_requests_are_shed_at_once_and_health_is_still_answered() {
    let Some(app) =
        TestApp::spawn_with(Backend::Postgres, &[("ORDERLY_HTTP__MAX_IN_FLIGHT", "2")]).await
    else {
        return;
    };
    app.slow_inserts("products", 1).await;
    let client = app.client.clone();
    let (url, key) = (app.url("/v1/products"), app.admin_key.clone());
    let slow = tokio::spawn(burst(6, move |i| {
        let request = client
            .post(&url)
            .bearer_auth(&key)
            .json(&json!({"sku": format!("SHED-{i}"), "name": "Shed", "price": 100, "stock": 1}));
        async move { request.send().await.unwrap() }
    }));
    tokio::time::sleep(Duration::from_millis(300)).await;
    for path in ["/healthz", "/readyz"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path} while overloaded");
    }
    let answers = slow.await.unwrap();
    let created = only_created_or_shed_fast(&answers, 2);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM products").await as usize,
        created
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_order_queue_refuses_new_orders_at_once() {
    let Some(app) = TestApp::spawn_with(
        Backend::Postgres,
        &[
            ("ORDERLY_ORDERS__QUEUE", "1"),
            ("ORDERLY_ORDERS__MAX_BATCH", "1"),
            ("ORDERLY_ORDERS__WRITERS", "1"),
        ],
    )
    .await
    else {
        return;
    };
    app.create_product("QUEUED", 100, 1_000).await;
    app.slow_inserts("orders", 1).await;
    let client = app.client.clone();
    let (url, key) = (app.url("/v1/orders"), app.storefront_key.clone());
    let answers = burst(6, move |i| {
        let request = client
            .request(Method::POST, &url)
            .bearer_auth(&key)
            .header("idempotency-key", format!("queued-{i}"))
            .json(
                &json!({"customer": {"email": "ana@example.com", "name": "Ana"},
                          "lines": [{"sku": "QUEUED", "quantity": 1}]}),
            );
        async move { request.send().await.unwrap() }
    })
    .await;
    let created = only_created_or_shed_fast(&answers, 1);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM orders").await as usize,
        created
    );
}
