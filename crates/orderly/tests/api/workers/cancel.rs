//! Cancelling a running job from the API while it runs in another `orderly worker` process on
//! PostgreSQL: a webhook request to a receiver that hangs is aborted and its connection closed
//! within a second, a receipt whose SMTP server has not greeted yet is not sent; both end
//! `cancelled` and are never retried. And in one process on either backend: a sleeping job
//! stops within a second, whether the worker is told or finds the request by looking; an
//! available one is cancelled at once.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use tokio::io::AsyncReadExt;

use super::*;
use crate::helpers::{TestApp, backend_tests};

/// When a connection to a [`Silent`] server began, and when the other side closed it.
type Connection = (Instant, Option<Instant>);

/// A TCP server that takes connections and never answers: it records when each connection
/// arrived with its first bytes, and when the other side closed it.
#[derive(Clone, Default)]
struct Silent {
    /// Per connection: when its first bytes came (or when it was accepted, for a server that
    /// speaks first), and when it was closed.
    seen: Arc<Mutex<Vec<Connection>>>,
    port: u16,
}

impl Silent {
    /// `wait_for_bytes`: an HTTP server hears the request first; an SMTP client waits for the
    /// server's greeting, so the connection counts as it is accepted.
    async fn start(wait_for_bytes: bool) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let silent = Self {
            port,
            ..Self::default()
        };
        let seen = silent.seen.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut buffer = [0u8; 4096];
                    if wait_for_bytes && !matches!(socket.read(&mut buffer).await, Ok(n) if n > 0) {
                        return;
                    }
                    let index = {
                        let mut seen = seen.lock().unwrap();
                        seen.push((Instant::now(), None));
                        seen.len() - 1
                    };
                    // Read (and drop) whatever comes until the other side hangs up.
                    while matches!(socket.read(&mut buffer).await, Ok(n) if n > 0) {}
                    seen.lock().unwrap()[index].1 = Some(Instant::now());
                });
            }
        });
        silent
    }

    fn connections(&self) -> Vec<Connection> {
        self.seen.lock().unwrap().clone()
    }
}

/// The one running job of `kind`, once it runs.
async fn running_job(app: &TestApp, kind: &str) -> i64 {
    eventually(30, &format!("a {kind} job running"), || async {
        let page = app
            .read(&format!("/v1/jobs?kind={kind}&state=running"))
            .await;
        page["data"][0]["id"].as_i64()
    })
    .await
}

/// Cancels job `id` through the API, which answers `202` with the job still running and the
/// request recorded; returns when it answered.
async fn cancel_running(app: &TestApp, id: i64) -> Instant {
    let response = app
        .admin(Method::POST, &format!("/v1/jobs/{id}/cancel"))
        .send()
        .await
        .unwrap();
    let asked = Instant::now();
    assert_eq!(response.status(), 202);
    let job: Value = response.json().await.unwrap();
    assert_eq!(job["state"], "running", "{job}");
    assert!(job["cancel_requested_at"].is_string(), "{job}");
    asked
}

/// Waits for job `id` to end `cancelled`; returns it.
async fn cancelled(app: &TestApp, id: i64) -> Value {
    eventually(10, "the job cancelled", || async {
        let job = app.read(&format!("/v1/jobs/{id}")).await;
        (job["state"] == "cancelled").then_some(job)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_request_in_flight_in_another_worker_is_aborted_within_a_second() {
    let Some(app) = webhook_api("HANG", 10).await else {
        return;
    };
    let receiver = Silent::start(true).await;
    let created = app
        .admin(Method::POST, "/v1/webhooks")
        .json(&json!({"url": format!("http://127.0.0.1:{}/hook", receiver.port), "event_types": ["order.created"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let worker = WorkerProcess::start(
        &app.database_url,
        &app.dir,
        "cancel-webhook",
        &[
            ("ORDERLY_WEBHOOKS_ALLOW_PRIVATE", "true"),
            ("ORDERLY_WEBHOOKS__TIMEOUT", "60s"),
        ],
    );
    let placed = app
        .place_order(json!([{"sku": "HANG", "quantity": 1}]))
        .await;
    assert_eq!(placed.status(), 201);
    eventually(30, "the request to reach the receiver", || async {
        (!receiver.connections().is_empty()).then_some(())
    })
    .await;
    let id = running_job(&app, "deliver_webhook").await;

    let asked = cancel_running(&app, id).await;
    let closed = eventually(5, "the receiver's connection closed", || async {
        receiver.connections()[0].1
    })
    .await;
    let stopped_in = closed.saturating_duration_since(asked);
    println!("webhook request aborted {stopped_in:?} after the cancellation was answered");
    assert!(
        stopped_in < Duration::from_secs(1),
        "the handler stopped {stopped_in:?} after the cancellation"
    );
    let job = cancelled(&app, id).await;
    assert!(
        job["last_error"].as_str().unwrap().contains("aborted"),
        "{job}"
    );
    // Never retried: no second request, and the job stays cancelled.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        receiver.connections().len(),
        1,
        "the delivery was not retried"
    );
    assert_eq!(
        app.read(&format!("/v1/jobs/{id}")).await["state"],
        "cancelled"
    );
    let lines = worker.stop().await;
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "job cancelled by an operator"),
        "the worker logged the cancellation"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_cancelled_before_smtp_has_it_is_not_sent() {
    let Some(app) = TestApp::spawn_with(Backend::Postgres, &[]).await else {
        return;
    };
    app.create_product("SLOWMAIL", 100, 10).await;
    // An SMTP server that accepts the connection and never greets: the message is never
    // handed over.
    let smtp = Silent::start(false).await;
    let worker = WorkerProcess::start(
        &app.database_url,
        &app.dir,
        "cancel-receipt",
        &[
            (
                "ORDERLY_SMTP_URL",
                &format!("smtp://127.0.0.1:{}", smtp.port),
            ),
            ("ORDERLY_MAIL__TIMEOUT", "60s"),
        ],
    );
    let placed = app
        .place_order(json!([{"sku": "SLOWMAIL", "quantity": 1}]))
        .await;
    assert_eq!(placed.status(), 201);
    let order: Value = placed.json().await.unwrap();
    eventually(30, "the worker to connect to the SMTP server", || async {
        (!smtp.connections().is_empty()).then_some(())
    })
    .await;
    let id = running_job(&app, "send_receipt").await;

    let asked = cancel_running(&app, id).await;
    let closed = eventually(5, "the SMTP connection closed", || async {
        smtp.connections()[0].1
    })
    .await;
    assert!(
        closed.saturating_duration_since(asked) < Duration::from_secs(1),
        "the receipt stopped {:?} after the cancellation",
        closed.saturating_duration_since(asked)
    );
    let job = cancelled(&app, id).await;
    assert_eq!(job["args"]["order_id"], order["id"]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        smtp.connections().len(),
        1,
        "the receipt was not tried again"
    );
    assert_eq!(
        app.read(&format!("/v1/jobs/{id}")).await["state"],
        "cancelled"
    );
    worker.stop().await;
}

backend_tests! {
    spawn = |backend| TestApp::spawn_with_worker(backend, &[]);

    async fn a_running_job_stops_within_a_second_and_an_available_one_is_cancelled_at_once(app) {
        let queue = app.store.queue();
        let ids = queue
            .enqueue(&[
                NewJob::named(kinds::Noop::NAME, json!({"sleep_ms": 60_000})),
                NewJob {
                    run_at: Some(OffsetDateTime::now_utc() + time::Duration::hours(1)),
                    ..NewJob::named(kinds::Noop::NAME, json!({}))
                },
            ])
            .await
            .unwrap();
        let (sleeper, later) = (ids[0], ids[1]);
        eventually(10, "the sleeping job to run", || async {
            (app.read(&format!("/v1/jobs/{sleeper}")).await["state"] == "running").then_some(())
        }).await;
        let asked = cancel_running(&app, sleeper).await;
        cancelled(&app, sleeper).await;
        let took = asked.elapsed();
        assert!(took < Duration::from_secs(2), "stopped and recorded in {took:?}");
        // Asked again: it has finished, so there is nothing to cancel.
        let again = app.admin(Method::POST, &format!("/v1/jobs/{sleeper}/cancel")).send().await.unwrap();
        assert_eq!(again.status(), 409);

        // Asked with no notification at all (as through a connection pooler that drops
        // NOTIFY): the worker's look every 500 ms finds it.
        let quiet = queue.enqueue(&[NewJob::named(kinds::Noop::NAME, json!({"sleep_ms": 60_000}))]).await.unwrap()[0];
        eventually(10, "the second sleeping job to run", || async {
            (app.read(&format!("/v1/jobs/{quiet}")).await["state"] == "running").then_some(())
        }).await;
        let asked = Instant::now();
        let marked = app.scalar("UPDATE jobs SET cancel_requested_at = run_at \
            WHERE kind = 'noop' AND state = 'running' RETURNING id").await;
        assert_eq!(marked, quiet);
        cancelled(&app, quiet).await;
        let took = asked.elapsed();
        println!("a cancellation found by polling stopped the job in {took:?}");
        assert!(took < Duration::from_millis(1_500), "stopped and recorded in {took:?}");

        let response = app.admin(Method::POST, &format!("/v1/jobs/{later}/cancel")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let job: Value = response.json().await.unwrap();
        assert_eq!(job["state"], "cancelled", "{job}");
        assert!(job.get("cancel_requested_at").is_none(), "{job}");
    }
}
