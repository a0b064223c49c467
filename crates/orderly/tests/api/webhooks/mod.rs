//! Webhooks end to end: real receivers (axum servers on port 0) get each event for each
//! subscribed endpoint, and check the signature with the Standard Webhooks reference crate
//! (`standardwebhooks`), not with our signer. Retries, `410 Gone`, `Retry-After`, the
//! per-endpoint bound, the time limit and the SSRF guard are each driven through the real
//! worker.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, StatusCode, TestApp, backend_tests, eventually, outbox_message, problem,
};

mod safety;

mod breaker;
mod failures;
mod replay;

/// One answer a receiver gives.
#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

impl Reply {
    fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: String::new(),
            delay: Duration::ZERO,
        }
    }
}

/// A request a receiver got.
#[derive(Clone)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
    at: Instant,
}

#[derive(Default)]
struct ReceiverState {
    received: Mutex<Vec<Received>>,
    /// Answers to give, in order; `200 ok` once they run out.
    script: Mutex<VecDeque<Reply>>,
    /// Answer every request after this long (a slow receiver).
    delay: Mutex<Duration>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

/// An HTTP server on port 0 that records what it gets and answers as scripted.
#[derive(Clone)]
struct Receiver {
    url: String,
    state: Arc<ReceiverState>,
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.max_in_flight.fetch_max(now, Ordering::SeqCst);
    state.received.lock().unwrap().push(Received {
        headers,
        body,
        at: Instant::now(),
    });
    let reply = state.script.lock().unwrap().pop_front();
    let delay = *state.delay.lock().unwrap();
    let reply = reply.unwrap_or(Reply {
        delay,
        body: "ok".into(),
        ..Reply::status(200)
    });
    tokio::time::sleep(reply.delay).await;
    state.in_flight.fetch_sub(1, Ordering::SeqCst);
    let mut response = (
        axum::http::StatusCode::from_u16(reply.status).unwrap(),
        reply.body,
    )
        .into_response();
    for (name, value) in reply.headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}

impl Receiver {
    async fn start() -> Self {
        let state = Arc::new(ReceiverState::default());
        let router = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { url, state }
    }

    fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.script.lock().unwrap().extend(replies);
    }

    fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// Waits until `n` requests have arrived.
    async fn wait_for(&self, n: usize, seconds: u64) -> Vec<Received> {
        eventually(seconds, &format!("{n} webhook requests"), || async {
            let got = self.received();
            (got.len() >= n).then_some(got)
        })
        .await
    }
}

/// Checks `request` against `secret` with the reference implementation, and returns its body.
fn verified(request: &Received, secret: &str) -> Value {
    let webhook = standardwebhooks::Webhook::new(secret).expect("a Standard Webhooks secret");
    webhook
        .verify(&request.body, &request.headers)
        .unwrap_or_else(|e| panic!("the signature verifies with {secret}: {e:?}"));
    serde_json::from_slice(&request.body).unwrap()
}

/// An app with a worker whose webhooks may go to this machine, retrying after `schedule`.
async fn app_with(backend: Backend, schedule: &str, extra: &[(&str, &str)]) -> Option<TestApp> {
    let mut settings = vec![
        ("ORDERLY_WEBHOOKS_ALLOW_PRIVATE", "true"),
        ("ORDERLY_WEBHOOKS__RETRY_SCHEDULE", schedule),
    ];
    settings.extend_from_slice(extra);
    TestApp::spawn_with_worker(backend, &settings).await
}

async fn create_endpoint(app: &TestApp, url: &str, types: &[&str]) -> Value {
    let response = app
        .admin(Method::POST, "/v1/webhooks")
        .json(&json!({"url": url, "event_types": types, "description": "test receiver"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

async fn order(app: &TestApp) -> String {
    let placed: Value = app
        .place_order(json!([{"sku": "HOOK", "quantity": 1}]))
        .await
        .json()
        .await
        .unwrap();
    placed["id"].as_str().unwrap().to_owned()
}

/// The endpoint as `GET /v1/webhooks/{id}` shows it.
async fn read_endpoint(app: &TestApp, id: &str) -> Value {
    app.read(&format!("/v1/webhooks/{id}")).await
}

/// Waits until no delivery is queued or running: after that, receivers get nothing more.
async fn deliveries_settled(app: &TestApp) {
    let unfinished = "SELECT COUNT(*) FROM jobs WHERE kind = 'deliver_webhook' \
                      AND state IN ('available', 'running')";
    eventually(15, "every delivery finished", || async {
        (app.scalar(unfinished).await == 0).then_some(())
    })
    .await;
}

/// Waits until the endpoint is disabled, and returns it.
async fn disabled(app: &TestApp, id: &str) -> Value {
    eventually(10, "the endpoint disabled", || async {
        let read = read_endpoint(app, id).await;
        (read["enabled"] == false).then_some(read)
    })
    .await
}

async fn deliveries(app: &TestApp, endpoint: &Value) -> Vec<Value> {
    let path = format!(
        "/v1/webhooks/{}/deliveries",
        endpoint["id"].as_str().unwrap()
    );
    let page: Value = app.read(&path).await;
    page["data"].as_array().unwrap().clone()
}

/// Waits until the endpoint's attempts number `n`, newest first.
async fn wait_for_attempts(app: &TestApp, endpoint: &Value, n: usize, seconds: u64) -> Vec<Value> {
    eventually(seconds, &format!("{n} recorded attempts"), || async {
        let list = deliveries(app, endpoint).await;
        (list.len() >= n).then_some(list)
    })
    .await
}

backend_tests! {
    async fn each_event_reaches_each_subscribed_endpoint_signed_per_the_standard(app) {
        let Some(app) = app_with(app.backend, "1s", &[]).await else { return };
        app.create_product("HOOK", 1250, 10).await;
        let (a, b, c) = (Receiver::start().await, Receiver::start().await, Receiver::start().await);
        let to_a = create_endpoint(&app, &a.url, &["order.created", "order.paid"]).await;
        let to_b = create_endpoint(&app, &b.url, &["order.created"]).await;
        create_endpoint(&app, &c.url, &["order.expired"]).await;
        let secret_a = to_a["secret"].as_str().unwrap();
        assert!(secret_a.starts_with("whsec_"), "{to_a}");

        let id = order(&app).await;
        let paid = app.admin(Method::POST, &format!("/v1/orders/{id}/pay")).send().await.unwrap();
        assert_eq!(paid.status(), StatusCode::OK);

        let got_a = a.wait_for(2, 30).await;
        let got_b = b.wait_for(1, 30).await;
        let mut types: Vec<String> = got_a.iter()
            .map(|r| verified(r, secret_a)["type"].as_str().unwrap().to_owned()).collect();
        types.sort();
        assert_eq!(types, ["order.created", "order.paid"]);
        let event = verified(&got_b[0], to_b["secret"].as_str().unwrap());
        assert_eq!(event["type"], "order.created");
        assert_eq!(event["data"]["order_id"], id.as_str());
        assert_eq!(event["data"]["total"], 1250);
        assert!(event["timestamp"].as_str().unwrap().ends_with('Z'), "{event}");
        // The same event carries the same webhook-id at every endpoint it goes to.
        let created_at_a = got_a.iter()
            .find(|r| verified(r, secret_a)["type"] == "order.created").unwrap();
        assert_eq!(created_at_a.headers["webhook-id"], got_b[0].headers["webhook-id"]);
        // One endpoint's secret does not verify another's deliveries.
        let other = standardwebhooks::Webhook::new(secret_a).unwrap();
        assert!(other.verify(&got_b[0].body, &got_b[0].headers).is_err());

        deliveries_settled(&app).await;
        assert_eq!(a.received().len(), 2, "nothing twice");
        assert_eq!(b.received().len(), 1);
        assert!(c.received().is_empty(), "no event of a type the endpoint did not subscribe to");

        let attempts = wait_for_attempts(&app, &to_a, 2, 5).await;
        for attempt in &attempts {
            assert_eq!(attempt["outcome"], "succeeded", "{attempt}");
            assert_eq!(attempt["response_status"], 200);
            assert_eq!(attempt["response_body"], "ok");
            assert_eq!(attempt["attempt"], 1);
        }
        // The secret is shown at creation only.
        let read = read_endpoint(&app, to_a["id"].as_str().unwrap()).await;
        assert!(read.get("secret").is_none(), "{read}");
        assert_eq!(read["enabled"], true);
    }

    async fn catalogue_events_reach_the_endpoints_subscribed_to_them(app) {
        let Some(app) = app_with(app.backend, "1s", &[]).await else { return };
        let receiver = Receiver::start().await;
        let endpoint = create_endpoint(&app, &receiver.url, &["product.created", "product.stock_adjusted"]).await;
        let product = app.create_product("HOOK", 1250, 10).await;
        let id = product["id"].as_str().unwrap();
        for body in [json!({"stock": 4, "reason": "breakage"}), json!({"name": "Renamed"}), json!({"stock": 6})] {
            let patched = app.admin(Method::PATCH, &format!("/v1/products/{id}")).json(&body).send().await.unwrap();
            assert_eq!(patched.status(), StatusCode::OK);
        }
        deliveries_settled(&app).await;
        let secret = endpoint["secret"].as_str().unwrap();
        let mut got: Vec<Value> = receiver.received().iter().map(|r| verified(r, secret)).collect();
        got.sort_by_key(|e| (e["type"].as_str().unwrap().to_owned(), e["data"]["stock"].as_i64()));
        let seen: Vec<(&str, &Value, &Value)> = got.iter()
            .map(|e| (e["type"].as_str().unwrap(), &e["data"]["delta"], &e["data"]["actor"]["type"]))
            .collect();
        assert_eq!(seen, [
            ("product.created", &Value::Null, &json!("api_key")),
            ("product.stock_adjusted", &json!(-6), &json!("api_key")),
            ("product.stock_adjusted", &json!(2), &json!("api_key")),
        ]);
        assert_eq!(got[1]["data"]["reason"], "breakage");
    }

    async fn a_failing_delivery_is_retried_until_it_succeeds(app) {
        let Some(app) = app_with(app.backend, "1s 1s 1s", &[]).await else { return };
        app.create_product("HOOK", 100, 10).await;
        let receiver = Receiver::start().await;
        receiver.script([Reply::status(500), Reply { body: "x".repeat(10_000), ..Reply::status(502) }]);
        let endpoint = create_endpoint(&app, &receiver.url, &["order.created"]).await;
        order(&app).await;

        let got = receiver.wait_for(3, 15).await;
        let ids: Vec<_> = got.iter().map(|r| r.headers["webhook-id"].clone()).collect();
        assert!(ids.iter().all(|id| *id == ids[0]), "every attempt is the same message");
        for request in &got {
            verified(request, endpoint["secret"].as_str().unwrap());
        }
        let gap = got[1].at - got[0].at;
        assert!(gap >= Duration::from_millis(700), "the retry waited its schedule: {gap:?}");

        let attempts = wait_for_attempts(&app, &endpoint, 3, 5).await;
        let summary: Vec<(i64, &str, i64)> = attempts.iter().map(|a| (
            a["attempt"].as_i64().unwrap(),
            a["outcome"].as_str().unwrap(),
            a["response_status"].as_i64().unwrap(),
        )).collect();
        assert_eq!(summary, [(3, "succeeded", 200), (2, "failed", 502), (1, "failed", 500)]);
        let excerpt = attempts[1]["response_body"].as_str().unwrap();
        assert_eq!(excerpt.len(), 2_048, "only the first bytes of a large answer are kept");
        let read = read_endpoint(&app, endpoint["id"].as_str().unwrap()).await;
        assert!(read.get("failing_since").is_none(), "a success clears the failure record: {read}");
        assert_eq!(read["enabled"], true);
    }

    async fn an_answer_with_a_nul_byte_is_recorded_and_the_event_goes_out_once(app) {
        let Some(app) = app_with(app.backend, "1s 1s 1s", &[]).await else { return };
        app.create_product("HOOK", 100, 10).await;
        let receiver = Receiver::start().await;
        receiver.script([Reply { body: "accepted\0\u{1}é".into(), ..Reply::status(200) }]);
        let endpoint = create_endpoint(&app, &receiver.url, &["order.created"]).await;
        order(&app).await;

        let attempts = wait_for_attempts(&app, &endpoint, 1, 15).await;
        deliveries_settled(&app).await;
        assert_eq!(receiver.received().len(), 1, "one webhook-id, sent once");
        assert_eq!(attempts.len(), 1, "{attempts:?}");
        assert_eq!(attempts[0]["outcome"], "succeeded");
        assert_eq!(attempts[0]["response_body"], "accepted\u{fffd}\u{1}é");
        assert_eq!(deliveries(&app, &endpoint).await.len(), 1);
    }
}

backend_tests! {
    async fn endpoints_are_managed_and_bad_input_is_refused_clearly(app) {
        let receiver_url = "https://hooks.example.com/orderly";
        let created = app.admin(Method::POST, "/v1/webhooks")
            .json(&json!({"url": receiver_url, "event_types": ["order.paid", "order.created", "order.paid"]}))
            .send().await.unwrap();
        assert_eq!(created.status(), StatusCode::CREATED);
        let location = created.headers()["location"].to_str().unwrap().to_owned();
        let endpoint: Value = created.json().await.unwrap();
        assert_eq!(endpoint["event_types"], json!(["order.created", "order.paid"]));
        assert_eq!(location, format!("/v1/webhooks/{}", endpoint["id"].as_str().unwrap()));

        let changed: Value = app.admin(Method::PATCH, &location)
            .json(&json!({"event_types": ["order.cancelled"], "description": "ops"}))
            .send().await.unwrap().json().await.unwrap();
        assert_eq!(changed["event_types"], json!(["order.cancelled"]));
        assert_eq!(changed["description"], "ops");
        let disabled: Value = app.admin(Method::POST, &format!("{location}/disable"))
            .send().await.unwrap().json().await.unwrap();
        assert_eq!(disabled["enabled"], false);
        assert_eq!(disabled["disabled_reason"], "disabled by an operator");
        let page: Value = app.read("/v1/webhooks").await;
        assert_eq!(page["data"].as_array().unwrap().len(), 1);
        assert!(page["data"][0].get("secret").is_none());

        let bad = app.admin(Method::POST, "/v1/webhooks")
            .json(&json!({"url": 5, "event_types": ["order.shipped"], "colour": "red"}))
            .send().await.unwrap();
        let body = problem(bad, StatusCode::UNPROCESSABLE_ENTITY).await;
        let mut fields: Vec<&str> = body["errors"].as_array().unwrap().iter()
            .map(|e| e["field"].as_str().unwrap()).collect();
        fields.sort();
        assert_eq!(fields, ["colour", "event_types[0]", "url"], "{body}");
        let empty = app.admin(Method::PATCH, &location).json(&json!({})).send().await.unwrap();
        problem(empty, StatusCode::UNPROCESSABLE_ENTITY).await;
        let none = app.admin(Method::POST, "/v1/webhooks")
            .json(&json!({"url": receiver_url, "event_types": []})).send().await.unwrap();
        problem(none, StatusCode::UNPROCESSABLE_ENTITY).await;
        let storefront = app.storefront(Method::GET, "/v1/webhooks").send().await.unwrap();
        problem(storefront, StatusCode::FORBIDDEN).await;

        let deleted = app.admin(Method::DELETE, &location).send().await.unwrap();
        assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
        let gone = app.admin(Method::GET, &location).send().await.unwrap();
        problem(gone, StatusCode::NOT_FOUND).await;
        let not_an_id = app.admin(Method::GET, "/v1/webhooks/not-an-id").send().await.unwrap();
        problem(not_an_id, StatusCode::NOT_FOUND).await;
    }
}
