//! An endpoint's circuit breaker, shared by two `orderly worker` processes on PostgreSQL: an
//! endpoint answering `500` opens it after the configured failures; while it is open one probe
//! goes per cool-down and the waiting deliveries spend no attempt; a `2xx` closes it and the
//! deliveries held go at once. Its state is in the API and each worker's metrics from the
//! worker's start (the console's page: `console/pages.rs`). Time open counts toward disabling
//! the endpoint.

use std::collections::HashMap;

use crate::workers::{WorkerProcess, ops_address, webhook_api};

use super::*;

/// The text of a worker's `/metrics`.
async fn metrics_of(worker: &WorkerProcess) -> String {
    let addr = ops_address(worker).await;
    crate::helpers::http_client()
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of the metric line that starts with `series`, 0 when there is none.
fn value(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_endpoint_rests_behind_its_breaker_is_probed_once_per_cool_down_and_recovers() {
    let Some(app) = webhook_api("HOOK", 100).await else {
        return;
    };
    let receiver = Receiver::start().await;
    receiver.script(vec![Reply::status(500); 1_000]);
    let endpoint = create_endpoint(&app, &receiver.url, &["order.created"]).await;
    let id = endpoint["id"].as_str().unwrap().to_owned();
    assert_eq!(endpoint["breaker"]["state"], "closed", "{endpoint}");

    let workers = two_workers(&app);
    exported_from_the_start(&workers, &id).await;

    for _ in 0..5 {
        order(&app).await;
    }
    let open = eventually(30, "the breaker open", || async {
        let read = read_endpoint(&app, &id).await;
        (read["breaker"]["state"] == "open").then_some(read)
    })
    .await;
    let opened_at = Instant::now();
    assert_eq!(
        receiver.received().len(),
        3,
        "it opened on the third failure in a row"
    );
    assert_eq!(open["breaker"]["consecutive_failures"], 3, "{open}");
    assert!(open["breaker"]["next_probe_at"].is_string(), "{open}");
    assert!(open["breaker"]["opened_at"].is_string(), "{open}");

    let last = probed_once_per_cool_down(&receiver, opened_at).await;

    // The endpoint recovers: the next probe succeeds, the breaker closes, the held deliveries go.
    receiver.state.script.lock().unwrap().clear();
    let closed = eventually(15, "the breaker closed", || async {
        let read = read_endpoint(&app, &id).await;
        (read["breaker"]["state"] == "closed").then_some(read)
    })
    .await;
    assert_eq!(closed["breaker"]["consecutive_failures"], 0, "{closed}");
    assert!(closed["breaker"].get("next_probe_at").is_none(), "{closed}");
    let closed_at = Instant::now();
    deliveries_settled(&app).await;
    println!(
        "every held delivery went within {:?} of the breaker closing",
        closed_at.elapsed()
    );
    assert!(
        closed_at.elapsed() < Duration::from_secs(5),
        "the held deliveries went at once, not at their next probe"
    );
    let received = receiver.received();
    let delivered: std::collections::HashSet<String> = received
        .iter()
        .filter(|r| r.at > last)
        .map(|r| r.headers["webhook-id"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(delivered.len(), 5, "each event delivered once it closed");
    // No attempt was spent while the breaker held them: each delivery's attempts are the
    // requests it made.
    let attempts = app
        .scalar("SELECT CAST(SUM(attempt) AS BIGINT) FROM jobs WHERE kind = 'deliver_webhook'")
        .await;
    assert_eq!(attempts, received.len() as i64, "attempts = requests made");
    let recorded = app.scalar("SELECT COUNT(*) FROM webhook_attempts").await;
    assert_eq!(recorded, received.len() as i64);

    // Both workers' transitions together: opened at least twice (first, then after failed
    // probes), probed, closed once.
    let totals = transitions(&workers, &id).await;
    assert!(totals["open"] >= 2.0, "{totals:?}");
    assert!(totals["half_open"] >= 2.0, "{totals:?}");
    assert_eq!(totals["closed"], 1.0, "{totals:?}");
}

/// Each worker exports the breaker from its start: closed, with its transitions at zero.
async fn exported_from_the_start(workers: &[WorkerProcess], id: &str) {
    let state = format!("webhook_breaker_state{{endpoint=\"{id}\"}}");
    for worker in workers {
        let metrics = eventually(15, "the breaker's metrics", || async {
            let metrics = metrics_of(worker).await;
            metrics.contains(&state).then_some(metrics)
        })
        .await;
        assert_eq!(value(&metrics, &state), 0.0, "{metrics}");
        let opened = format!("webhook_breaker_transitions_total{{endpoint=\"{id}\",to=\"open\"}}");
        assert!(metrics.contains(&opened), "{metrics}");
    }
}

/// Over 7 s of the breaker open (a 2 s cool-down): a probe every cool-down after the last one
/// failed, nothing in between. Returns when the last probe came.
async fn probed_once_per_cool_down(receiver: &Receiver, opened_at: Instant) -> Instant {
    tokio::time::sleep(Duration::from_secs(7)).await;
    let during: Vec<Instant> = receiver.received().iter().skip(3).map(|r| r.at).collect();
    println!(
        "probes {:?} after the breaker opened",
        during
            .iter()
            .map(|at| at.duration_since(opened_at))
            .collect::<Vec<_>>()
    );
    assert!(
        (2..=4).contains(&during.len()),
        "{} requests in 7 s with a 2 s cool-down",
        during.len()
    );
    let mut last = opened_at;
    for at in &during {
        assert!(
            at.duration_since(last) >= Duration::from_millis(1_900),
            "probes {:?} apart",
            at.duration_since(last)
        );
        last = *at;
    }
    last
}

/// The breaker's transitions to each state, summed over the workers.
async fn transitions(workers: &[WorkerProcess], id: &str) -> HashMap<&'static str, f64> {
    let mut totals = HashMap::new();
    for worker in workers {
        let metrics = metrics_of(worker).await;
        for to in ["open", "half_open", "closed"] {
            *totals.entry(to).or_insert(0.0) += value(
                &metrics,
                &format!("webhook_breaker_transitions_total{{endpoint=\"{id}\",to=\"{to}\"}}"),
            );
        }
    }
    totals
}

/// Two workers on the app's database, one delivery at a time to an endpoint across both (so
/// the failures count in order), three failures to open, a 2 s cool-down, 1 s retries.
fn two_workers(app: &TestApp) -> [WorkerProcess; 2] {
    let settings = [
        ("ORDERLY_WEBHOOKS_ALLOW_PRIVATE", "true"),
        (
            "ORDERLY_WEBHOOKS__RETRY_SCHEDULE",
            "1s 1s 1s 1s 1s 1s 1s 1s 1s 1s",
        ),
        ("ORDERLY_WEBHOOKS__BREAKER_FAILURES", "3"),
        ("ORDERLY_WEBHOOKS__BREAKER_COOL_DOWN", "2s"),
        ("ORDERLY_WEBHOOKS__PER_ENDPOINT_CONCURRENCY", "1"),
    ];
    [
        WorkerProcess::start(&app.database_url, &app.dir, "breaker-a", &settings),
        WorkerProcess::start(&app.database_url, &app.dir, "breaker-b", &settings),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_with_the_breaker_open_counts_toward_disabling_the_endpoint() {
    let app = app_with(
        Backend::Sqlite,
        "1s 1s 1s 1s 1s 1s 1s 1s 1s 1s",
        &[
            ("ORDERLY_WEBHOOKS__BREAKER_FAILURES", "1"),
            ("ORDERLY_WEBHOOKS__BREAKER_COOL_DOWN", "2s"),
            ("ORDERLY_WEBHOOKS__DISABLE_AFTER", "3s"),
        ],
    )
    .await
    .unwrap();
    app.create_product("HOOK", 100, 10).await;
    let receiver = Receiver::start().await;
    receiver.script(vec![Reply::status(500); 100]);
    let endpoint = create_endpoint(&app, &receiver.url, &["order.created"]).await;
    let id = endpoint["id"].as_str().unwrap();
    order(&app).await;
    // Open after the first failure; the probe 2 s later fails before 3 s have passed; the
    // next, 4 s after the first failure, finds it failing for longer than 3 s: disabled.
    let read = disabled(&app, id).await;
    assert!(
        read["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("no successful delivery since"),
        "{read}"
    );
    let requests = receiver.received().len();
    assert!(
        (2..=4).contains(&requests),
        "{requests} requests: the first failure and a probe per cool-down"
    );
}
