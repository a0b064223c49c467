//! Traces: a request's trace continues into the job it enqueued, and spans are exported over
//! OTLP/HTTP (to a receiver the test runs) when `ORDERLY_OTLP_ENDPOINT` is set.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use serde_json::{Value, json};

use crate::helpers::{Backend, RunProcess, TestDatabase, eventually};

/// The trace id on a log line, from the span named `span`.
fn trace_id(line: &Value, span: &str) -> Option<String> {
    line["spans"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == span)?
        .get("trace_id")?
        .as_str()
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_continue_the_trace_of_the_request_that_queued_them_and_spans_are_exported() {
    let (endpoint, received) = collector().await;

    let (_db, url) = TestDatabase::create(Backend::Sqlite).await.unwrap();
    let dir = std::env::temp_dir().join(format!("orderly-traces-{}", uuid::Uuid::new_v4()));
    let outbox = dir.join("outbox").display().to_string();
    let hook_url = accepting_receiver().await;
    // Events go to a NATS server of the test's own: they carry the trace on.
    let nats = crate::events::Nats::start();
    let nats_url = nats.url();
    // Workers poll only once a minute: a job that starts sooner was woken by its commit.
    let run = RunProcess::start(
        &url,
        &[
            ("ORDERLY_EVENTS__NATS_URL", &nats_url),
            ("ORDERLY_EVENTS__STREAM", "TRACED"),
            ("ORDERLY_OTLP_ENDPOINT", &endpoint),
            ("ORDERLY_MAIL_OUTBOX", &outbox),
            ("ORDERLY_WEBHOOKS_ALLOW_PRIVATE", "true"),
            ("ORDERLY_WORKER__POLL_INTERVAL", "60000ms"),
        ],
    );
    let (key, base, lines) = (run.key.clone(), run.base.clone(), run.lines.clone());
    let client = crate::helpers::http_client();
    let created = client
        .post(format!("{base}/v1/products"))
        .bearer_auth(&key)
        .json(&json!({"sku": "TRACED", "name": "T", "price": 100, "stock": 9}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    // The caller's trace: the order request continues it, and so does its receipt job.
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let order = client.post(format!("{base}/v1/orders")).bearer_auth(&key)
        .header("idempotency-key", "traced-1")
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .json(&json!({"customer": {"email": "a@b.co", "name": "A"}, "lines": [{"sku": "TRACED", "quantity": 1}]}))
        .send().await.unwrap();
    assert_eq!(order.status(), 201);
    let request = request_trace(&lines, "/v1/orders").await;
    let job = job_trace(&lines, "send_receipt", "").await;
    assert_eq!(
        request.as_deref(),
        Some(trace),
        "the request continues the caller's trace"
    );
    assert_eq!(
        job.as_deref(),
        Some(trace),
        "the job continues the request's trace"
    );
    // So does its event, relayed to NATS with the trace in its headers.
    let relayed = eventually(15, "the order's event on NATS", || async {
        nats.messages("TRACED")
            .await
            .into_iter()
            .find(|m| m.kind == "order.created")
    })
    .await;
    assert!(
        relayed.traceparent.starts_with(&format!("00-{trace}-")),
        "{relayed:?}"
    );

    // Paying the order queues a webhook delivery in the same transaction: it starts at once,
    // and continues the trace of the request that paid.
    let subscribed = client
        .post(format!("{base}/v1/webhooks"))
        .bearer_auth(&key)
        .json(&json!({"url": hook_url, "event_types": ["order.paid"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(subscribed.status(), 201);
    let order: Value = order.json().await.unwrap();
    let paying = "5bf92f3577b34da6a3ce929d0e0e4737";
    let paid = pay_traced(&client, &base, &key, order["id"].as_str().unwrap(), paying).await;
    assert_eq!(paid.status(), 200);
    let delivery = job_trace(&lines, "deliver_webhook", "well before the next poll").await;
    assert_eq!(
        delivery.as_deref(),
        Some(paying),
        "the delivery continues the trace of the request that paid"
    );

    // Stopping flushes the exporter; the spans reach the receiver, carrying the trace id.
    assert!(run.stop().await.success());
    assert_exported(&received.lock().unwrap(), trace);
    let _ = std::fs::remove_dir_all(dir);
}

/// An OTLP/HTTP receiver that keeps what it is sent: its URL, and what it received.
async fn collector() -> (String, Arc<Mutex<Vec<Bytes>>>) {
    let received: Arc<Mutex<Vec<Bytes>>> = Arc::default();
    let collector = {
        let received = received.clone();
        axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |body: Bytes| {
                let received = received.clone();
                async move {
                    received.lock().unwrap().push(body);
                    axum::http::StatusCode::OK
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/v1/traces", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, collector).await });
    (endpoint, received)
}

/// A webhook receiver that accepts everything: its URL.
async fn accepting_receiver() -> String {
    let hooks = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", hooks.local_addr().unwrap());
    let receiver = axum::Router::new().route("/hook", axum::routing::post(|| async { "ok" }));
    tokio::spawn(async move { axum::serve(hooks, receiver).await });
    hook_url
}

/// The trace id of the first job of `kind` to start, once one has.
async fn job_trace(lines: &Mutex<Vec<Value>>, kind: &str, when: &str) -> Option<String> {
    eventually(10, &format!("a {kind} job to start {when}"), || async {
        let lines = lines.lock().unwrap();
        let job = lines
            .iter()
            .find(|l| l["message"] == "job started" && l["spans"][0]["kind"] == kind)?;
        Some(trace_id(job, "job"))
    })
    .await
}

/// Some span of the OTLP bodies `exported` carries the trace id `trace` (32 hex digits).
fn assert_exported(exported: &[Bytes], trace: &str) {
    let raw_trace: Vec<u8> = (0..trace.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&trace[i..i + 2], 16).unwrap())
        .collect();
    assert!(!exported.is_empty(), "spans were exported over OTLP");
    assert!(
        exported
            .iter()
            .any(|body| body.windows(16).any(|w| w == raw_trace.as_slice())),
        "the exported spans carry the trace id"
    );
}

/// Pays order `id` in a request that continues the trace `trace`.
async fn pay_traced(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    id: &str,
    trace: &str,
) -> reqwest::Response {
    client
        .post(format!("{base}/v1/orders/{id}/pay"))
        .bearer_auth(key)
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap()
}

/// The trace id of the first request to `route` answered, once one has.
async fn request_trace(lines: &Mutex<Vec<Value>>, route: &str) -> Option<String> {
    eventually(10, &format!("a request to {route} answered"), || async {
        let lines = lines.lock().unwrap();
        let request = lines.iter().find(|l| {
            l["message"] == "finished processing request" && l["spans"][0]["route"] == route
        })?;
        Some(trace_id(request, "request"))
    })
    .await
}
