//! More work than a process takes on: past `http.max_in_flight` API requests, and past a full
//! order queue, requests are refused at once with `503 overloaded` and `Retry-After`, while
//! health and readiness are still answered. The database is made slow by a trigger.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, StatusCode, TestApp, eventually};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_that_waited_too_long_are_shed_unwritten_and_new_ones_refused_at_once() {
    let Some(app) = TestApp::spawn_with(
        Backend::Postgres,
        &[
            ("ORDERLY_ORDERS__MAX_QUEUE_WAIT", "400ms"),
            ("ORDERLY_ORDERS__QUEUE_WAIT_TARGET", "400ms"),
            ("ORDERLY_ORDERS__MAX_BATCH", "1"),
            ("ORDERLY_ORDERS__WRITERS", "1"),
        ],
    )
    .await
    else {
        return;
    };
    app.create_product("WAITED", 100, 1_000).await;
    // Each order's transaction takes a second: the first is written, the ones queued behind
    // it wait past 400 ms.
    app.slow_inserts("orders", 1).await;
    let order = |i: usize| {
        app.client
            .post(app.url("/v1/orders"))
            .bearer_auth(&app.storefront_key)
            .header("idempotency-key", format!("waited-{i}"))
            .json(
                &json!({"customer": {"email": "ana@example.com", "name": "Ana"},
                          "lines": [{"sku": "WAITED", "quantity": 1}]}),
            )
    };
    let answers = all_at_once((0..4).map(order).collect()).await;
    let statuses: Vec<StatusCode> = answers.iter().map(|r| r.status()).collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::SERVICE_UNAVAILABLE)
            .count(),
        3,
        "{statuses:?}"
    );
    // Right after, the writer is congested: a new order is refused at once, before its body
    // is read.
    let started = Instant::now();
    let response = order(9).send().await.unwrap();
    let took = started.elapsed();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().get("retry-after").is_some());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "overloaded");
    assert!(took < Duration::from_millis(200), "{took:?}");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM orders").await, 1);
}

/// Orders that waited past `orders.max_queue_wait` behind one slow commit, but that a single
/// batch takes whole, are written, not shed: they share one commit, so refusing some would
/// spare the database nothing (a slow disk is not an overload).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_behind_one_slow_commit_that_a_batch_takes_whole_are_written() {
    let Some(app) = TestApp::spawn_with(
        Backend::Postgres,
        &[
            ("ORDERLY_ORDERS__MAX_QUEUE_WAIT", "400ms"),
            ("ORDERLY_ORDERS__QUEUE_WAIT_TARGET", "400ms"),
            ("ORDERLY_ORDERS__WRITERS", "1"),
        ],
    )
    .await
    else {
        return;
    };
    app.create_product("BEHIND", 100, 1_000).await;
    // Each order row takes a second to insert: the orders sent while the first is written
    // wait about a second, well past 400 ms.
    app.slow_inserts("orders", 1).await;
    let order = |i: usize| {
        app.client
            .post(app.url("/v1/orders"))
            .bearer_auth(&app.storefront_key)
            .header("idempotency-key", format!("behind-{i}"))
            .json(
                &json!({"customer": {"email": "ana@example.com", "name": "Ana"},
                          "lines": [{"sku": "BEHIND", "quantity": 1}]}),
            )
            .send()
    };
    let first = tokio::spawn(order(0));
    eventually(10, "the first order's insert to be running", || async {
        (app.scalar(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep' \
             AND datname = current_database()",
        )
        .await
            == 1)
            .then_some(())
    })
    .await;
    let behind: Vec<_> = (1..4).map(|i| tokio::spawn(order(i))).collect();
    let mut statuses = vec![first.await.unwrap().unwrap().status()];
    for answer in behind {
        statuses.push(answer.await.unwrap().unwrap().status());
    }
    assert!(
        statuses.iter().all(|s| *s == StatusCode::CREATED),
        "{statuses:?}"
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM orders").await, 4);
}

/// A standing queue (every order taken for a whole interval had waited past the target) sheds
/// what waited past the target, however far below `orders.max_queue_wait`, and refuses new
/// orders at once for half an interval; once an order is taken that waited less, orders are
/// served again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standing_queue_sheds_what_waited_past_the_target_and_a_burst_does_not() {
    let Some(app) = TestApp::spawn_with(
        Backend::Postgres,
        &[
            ("ORDERLY_ORDERS__QUEUE_WAIT_TARGET", "50ms"),
            ("ORDERLY_ORDERS__QUEUE_WAIT_INTERVAL", "600ms"),
            ("ORDERLY_ORDERS__MAX_BATCH", "1"),
            ("ORDERLY_ORDERS__WRITERS", "1"),
        ],
    )
    .await
    else {
        return;
    };
    app.create_product("STANDING", 100, 1_000).await;
    // Each order's transaction takes a second. The first is written at once; the second,
    // taken after waiting a second, starts the interval and is written (a burst may wait);
    // the third and fourth, taken another second on, find the queue standing.
    app.slow_inserts("orders", 1).await;
    let order = |i: usize| {
        app.client
            .post(app.url("/v1/orders"))
            .bearer_auth(&app.storefront_key)
            .header("idempotency-key", format!("standing-{i}"))
            .json(
                &json!({"customer": {"email": "ana@example.com", "name": "Ana"},
                          "lines": [{"sku": "STANDING", "quantity": 1}]}),
            )
    };
    let answers = all_at_once((0..4).map(order).collect()).await;
    let statuses: Vec<StatusCode> = answers.iter().map(|r| r.status()).collect();
    let count = |status| statuses.iter().filter(|s| **s == status).count();
    assert_eq!(count(StatusCode::CREATED), 2, "{statuses:?}");
    assert_eq!(count(StatusCode::SERVICE_UNAVAILABLE), 2, "{statuses:?}");
    let started = Instant::now();
    let refused = order(8).send().await.unwrap();
    let took = started.elapsed();
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(took < Duration::from_millis(200), "{took:?}");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM orders").await, 2);

    // The queue is empty now: the next order waits less than the target and is written.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let served = order(9).send().await.unwrap();
    assert_eq!(served.status(), StatusCode::CREATED);
}

/// Runs the requests at once and waits for every answer.
async fn all_at_once(requests: Vec<reqwest::RequestBuilder>) -> Vec<reqwest::Response> {
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|request| tokio::spawn(async move { request.send().await.unwrap() }))
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}
