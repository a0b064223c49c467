//! Health checks, request ids, the OpenAPI document, and graceful shutdown.

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{Backend, RunProcess, StatusCode, TestDatabase, backend_tests};

backend_tests! {
    async fn healthz_is_ok_and_readyz_lists_the_database(app) {
        let health: Value = app.client.get(app.url("/healthz")).send().await.unwrap().json().await.unwrap();
        assert_eq!(health["status"], "ok");
        let response = app.client.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let ready: Value = response.json().await.unwrap();
        assert_eq!(ready["status"], "ready");
        assert_eq!(ready["checks"]["database"]["status"], "up");
        assert!(ready["checks"]["database"]["latency_ms"].as_f64().unwrap() >= 0.0);
        let backend = ready["checks"]["database"]["backend"].as_str().unwrap();
        assert!(backend == "sqlite" || backend == "postgres");
    }

    async fn a_sane_request_id_is_echoed_and_an_absent_or_odd_one_is_replaced(app) {
        let response = app.client.get(app.url("/healthz")).header("x-request-id", "trace-abc.123")
            .send().await.unwrap();
        assert_eq!(response.headers()["x-request-id"], "trace-abc.123");
        let response = app.client.get(app.url("/healthz")).send().await.unwrap();
        let generated = response.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert!(generated.len() >= 16 && generated.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'), "{generated}");
        let next = app.client.get(app.url("/healthz")).send().await.unwrap();
        assert_ne!(next.headers()["x-request-id"].to_str().unwrap(), generated, "ids are unique");
        let response = app.client.get(app.url("/healthz")).header("x-request-id", "a b")
            .send().await.unwrap();
        assert_ne!(response.headers()["x-request-id"], "a b");
        let response = app.admin(Method::GET, "/v1/nowhere").send().await.unwrap();
        assert!(response.headers().contains_key("x-request-id"), "errors carry the id too");
    }

    async fn the_openapi_document_covers_every_route_and_its_errors(app) {
        let doc: Value = app.client.get(app.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
        let paths = doc["paths"].as_object().unwrap();
        let expected = [
            ("/v1/products", "post", &["201", "400", "401", "403", "409", "413", "415", "422"][..]),
            ("/v1/products", "get", &["200", "400", "401"][..]),
            ("/v1/products/{id}", "get", &["200", "401", "403", "404"][..]),
            ("/v1/products/{id}", "patch", &["200", "404", "409", "412", "413", "415", "422"][..]),
            ("/v1/products/by-sku/{sku}", "get", &["200", "404"][..]),
            ("/v1/products/{id}/archive", "post", &["200", "404", "412"][..]),
            ("/v1/orders", "post", &["201", "400", "401", "403", "409", "413", "415", "422"][..]),
            ("/v1/orders", "get", &["200", "400", "401", "403"][..]),
            ("/v1/orders/{id}", "get", &["200", "401", "404"][..]),
            ("/v1/orders/{id}/pay", "post", &["200", "403", "404", "409"][..]),
            ("/v1/orders/{id}/fulfill", "post", &["200", "403", "404", "409"][..]),
            ("/v1/orders/{id}/cancel", "post", &["200", "403", "404", "409"][..]),
            ("/v1/orders/{id}/payments", "post", &["200", "201", "404", "409", "412", "422"][..]),
            ("/v1/orders/{id}/fulfillments", "post", &["201", "404", "409", "412", "422"][..]),
            ("/v1/orders/{id}/cancellations", "post", &["201", "404", "409", "412", "422"][..]),
            ("/v1/orders/{id}/refunds", "post", &["201", "404", "409", "412", "422"][..]),
            ("/v1/orders/{id}/history", "get", &["200", "404"][..]),
            ("/v1/orders/{id}", "patch", &["201", "404", "409", "412", "422"][..]),
            ("/v1/orders/{id}/returns", "post", &["201", "404", "409", "412", "422"][..]),
            ("/v1/orders/{id}/returns/{return_id}/receive", "post", &["201", "404", "409", "412", "422"][..]),
            ("/v1/jobs", "get", &["200", "400", "401", "403"][..]),
            ("/v1/jobs/{id}", "get", &["200", "404"][..]),
            ("/v1/jobs/{id}/retry", "post", &["200", "404", "409"][..]),
            ("/v1/jobs/{id}/cancel", "post", &["200", "202", "404", "409"][..]),
            ("/v1/queues", "get", &["200", "401", "403"][..]),
            ("/v1/queues/{name}/pause", "post", &["200", "401", "403", "404"][..]),
            ("/v1/queues/{name}/resume", "post", &["200", "401", "403", "404"][..]),
            ("/v1/events", "get", &["200", "400", "401", "403", "404"][..]),
            ("/v1/events/{id}", "get", &["200", "404"][..]),
            ("/v1/webhooks", "post", &["201", "401", "403", "413", "415", "422"][..]),
            ("/v1/webhooks", "get", &["200", "400", "401", "403"][..]),
            ("/v1/webhooks/{id}", "get", &["200", "404"][..]),
            ("/v1/webhooks/{id}", "patch", &["200", "404", "422"][..]),
            ("/v1/webhooks/{id}", "delete", &["204", "404"][..]),
            ("/v1/webhooks/{id}/rotate-secret", "post", &["200", "404"][..]),
            ("/v1/webhooks/{id}/disable", "post", &["200", "404"][..]),
            ("/v1/webhooks/{id}/deliveries", "get", &["200", "400", "404"][..]),
            ("/v1/webhooks/{id}/deliveries/{attempt_id}/redeliver", "post", &["202", "404", "409"][..]),
            ("/v1/webhooks/{id}/replay", "post", &["202", "404", "409", "422"][..]),
            ("/healthz", "get", &["200"][..]),
            ("/readyz", "get", &["200", "503"][..]),
        ];
        for (path, method, statuses) in expected {
            let responses = &paths[path][method]["responses"];
            for status in statuses {
                assert!(responses.get(*status).is_some(), "{method} {path} lacks {status}");
            }
        }
        assert_eq!(paths.len(), 34, "a route is missing from the test or the document: {:?}", paths.keys());
        assert!(doc["components"]["schemas"]["Problem"].is_object());
        assert!(doc["components"]["securitySchemes"]["api_key"].is_object());
    }

    async fn shutdown_drains_and_then_refuses_new_connections(app) {
        let address = app.address.clone();
        let client = app.client.clone();
        assert_eq!(client.get(format!("{address}/healthz")).send().await.unwrap().status(), StatusCode::OK);
        app.stop().await.expect("a clean stop");
        assert!(client.get(format!("{address}/healthz")).send().await.is_err());
    }
}

/// A rolling deploy's SIGTERM: `/readyz` turns `503` at once while requests are still
/// served (with `Connection: close`) for the whole drain, then new connections are refused,
/// a request already in flight still completes, and the process exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_out_of_rotation_then_finishes_in_flight_requests_and_exits_0() {
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let (_db, url) = TestDatabase::create(Backend::Sqlite).await.unwrap();
    let drain = Duration::from_millis(1500);
    let run = RunProcess::start(&url, &[("ORDERLY_HTTP__DRAIN", "1500ms")]);
    let client = crate::helpers::http_client();
    let created = client
        .post(format!("{}/v1/products", run.base))
        .bearer_auth(&run.key)
        .json(&serde_json::json!({"sku": "DRAIN-1", "name": "Drain", "price": 100, "stock": 10}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);

    // An order whose body is half sent when the signal comes: in flight across the drain.
    let body = r#"{"customer":{"email":"a@example.com","name":"A"},"lines":[{"sku":"DRAIN-1","quantity":1}]}"#;
    let (head, tail) = body.split_at(body.len() / 2);
    let host = run.base.trim_start_matches("http://").to_owned();
    let mut in_flight = tokio::net::TcpStream::connect(&host).await.unwrap();
    let request = format!(
        "POST /v1/orders HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer {}\r\n\
         idempotency-key: drain-1\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{head}",
        run.key,
        body.len()
    );
    in_flight.write_all(request.as_bytes()).await.unwrap();

    run.terminate();
    let signalled = Instant::now();
    let ready = crate::helpers::eventually(2, "/readyz to turn 503", || {
        let client = client.clone();
        let url = format!("{}/readyz", run.base);
        async move {
            let response = client.get(url).send().await.ok()?;
            (response.status() == StatusCode::SERVICE_UNAVAILABLE)
                .then_some(response.json::<Value>().await.ok()?)
        }
    })
    .await;
    assert!(
        signalled.elapsed() < Duration::from_millis(500),
        "readiness went at once"
    );
    assert_eq!(ready["status"], "draining");

    // Still serving through the drain, on fresh connections, each told to close.
    tokio::time::sleep(drain / 2).await;
    let served = client
        .get(format!("{}/v1/products", run.base))
        .bearer_auth(&run.key)
        .send()
        .await
        .expect("served while draining");
    assert!(
        signalled.elapsed() < drain,
        "the request came within the drain"
    );
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(served.headers()["connection"], "close");

    // After the drain, no new connections.
    tokio::time::sleep(drain - drain / 2 + Duration::from_millis(500)).await;
    assert!(
        tokio::net::TcpStream::connect(&host).await.is_err(),
        "the listener is closed after the drain"
    );

    // The request in flight all along completes.
    in_flight.write_all(tail.as_bytes()).await.unwrap();
    let mut response = String::new();
    in_flight.read_to_string(&mut response).await.unwrap();
    assert!(
        response.starts_with("HTTP/1.1 201"),
        "the in-flight order was placed: {response}"
    );
    assert!(run.exited().await.success(), "exit 0 after draining");
}
