//! `/metrics` after a known burst, from an `orderly run` process of its own (the recorder is
//! per process, so counts are exact), checked by `promtool check metrics`.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::helpers::{Backend, RunProcess, TestDatabase, eventually};

fn sample(metrics: &str, name_and_labels: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(name_and_labels) && l[name_and_labels.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_a_known_burst_exactly_and_promtool_accepts_them() {
    let (_db, url) = TestDatabase::create(Backend::Sqlite).await.unwrap();
    let dir = std::env::temp_dir().join(format!("orderly-metrics-{}", uuid::Uuid::new_v4()));
    let outbox = dir.join("outbox").display().to_string();
    let run = RunProcess::start(&url, &[("ORDERLY_MAIL_OUTBOX", &outbox)]);
    let (key, base) = (run.key.clone(), run.base.clone());
    let client = crate::helpers::http_client();

    send_the_burst(&client, &base, &key).await;

    let metrics = eventually(10, "the receipt job to be counted", || async {
        let text = client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        (sample(&text, r#"jobs_completed_total{kind="send_receipt"}"#) == Some(1.0)).then_some(text)
    })
    .await;
    let expect = |series: &str, value: f64| {
        assert_eq!(
            sample(&metrics, series),
            Some(value),
            "{series} in:\n{metrics}"
        );
    };
    expect(
        r#"http_requests_total{method="GET",route="/v1/products/{id}",status="200"}"#,
        3.0,
    );
    expect(
        r#"http_requests_total{method="GET",route="/v1/products/{id}",status="404"}"#,
        2.0,
    );
    expect(
        r#"http_requests_total{method="POST",route="/v1/orders",status="201"}"#,
        1.0,
    );
    expect(
        r#"http_requests_total{method="POST",route="/v1/products",status="201"}"#,
        1.0,
    );
    expect(
        r#"http_requests_total{method="other",route="/healthz",status="405"}"#,
        4.0,
    );
    assert!(
        !metrics.contains("MADEUP"),
        "a made-up method became a label"
    );
    expect("orders_created_total", 1.0);
    every_limit_from_the_start(&metrics);
    expect(r#"jobs_enqueued_total{kind="send_receipt"}"#, 1.0);
    five_reads_hit_or_load(&metrics);
    expect(
        r#"http_request_duration_seconds_count{method="GET",route="/v1/products/{id}",status="200"}"#,
        3.0,
    );
    for present in [
        "orderly_build_info{",
        "process_resident_memory_bytes ",
        "db_pool_connections{",
        "job_run_duration_seconds_bucket{",
        "job_start_latency_seconds_count{",
        "http_requests_in_flight ",
    ] {
        assert!(metrics.contains(present), "{present} missing");
    }

    promtool_accepts(&metrics);
    assert!(run.stop().await.success());
    let _ = std::fs::remove_dir_all(dir);
}

/// Every fleet-wide limit from the worker's start: the endpoints' four, none of them in use.
fn every_limit_from_the_start(metrics: &str) {
    for (series, value) in [
        (
            r#"job_limit{scope="partition",name="deliver_webhook"}"#,
            4.0,
        ),
        (
            r#"job_limit_in_use{scope="partition",name="deliver_webhook"}"#,
            0.0,
        ),
        (
            r#"job_limit_waiting{scope="partition",name="deliver_webhook"}"#,
            0.0,
        ),
    ] {
        assert_eq!(
            sample(metrics, series),
            Some(value),
            "{series} in:\n{metrics}"
        );
    }
}

/// Five reads, each a hit or a load: the product's first read and both unknown ids load; the
/// product's later two hit, unless the creation's repeated invalidation (100 ms after it) fell
/// between them on a slow machine, and then one loads again.
fn five_reads_hit_or_load(metrics: &str) {
    let hits = sample(
        metrics,
        r#"cache_requests_total{tier="local",result="hit"}"#,
    );
    let loads = sample(
        metrics,
        r#"cache_requests_total{tier="database",result="load"}"#,
    );
    assert!(
        matches!(
            (hits, loads),
            (Some(2.0), Some(3.0)) | (Some(1.0), Some(4.0))
        ),
        "hits {hits:?}, loads {loads:?} in:\n{metrics}"
    );
}

/// A product written, read three times, missed twice; an order placed; four requests with
/// made-up methods.
async fn send_the_burst(client: &reqwest::Client, base: &str, key: &str) {
    let product: Value = client
        .post(format!("{base}/v1/products"))
        .bearer_auth(key)
        .json(&json!({"sku": "METRIC", "name": "M", "price": 100, "stock": 9}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = product["id"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        let r = client
            .get(format!("{base}/v1/products/{id}"))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    for _ in 0..2 {
        let r = client
            .get(format!("{base}/v1/products/{}", uuid::Uuid::now_v7()))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
    }
    let order = client.post(format!("{base}/v1/orders")).bearer_auth(key)
        .header("idempotency-key", "metrics-1")
        .json(&json!({"customer": {"email": "a@b.co", "name": "A"}, "lines": [{"sku": "METRIC", "quantity": 1}]}))
        .send().await.unwrap();
    assert_eq!(order.status(), 201);
    // Made-up methods, any client may send them: one `other` series, not one each.
    for n in 0..4 {
        let method =
            reqwest::Method::from_bytes(format!("MADEUP{n}{}", "X".repeat(n * 500)).as_bytes())
                .unwrap();
        let r = client
            .request(method, format!("{base}/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405);
    }
}

/// `promtool check metrics` accepts `metrics` (in CI it must be installed).
fn promtool_accepts(metrics: &str) {
    match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(mut promtool) => {
            promtool
                .stdin
                .take()
                .unwrap()
                .write_all(metrics.as_bytes())
                .unwrap();
            let out = promtool.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "promtool: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Err(_) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "promtool must be installed in CI"
            );
            eprintln!(
                "\n*** promtool is not installed: `promtool check metrics` did NOT run. ***\n"
            );
        }
    }
}
