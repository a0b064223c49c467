//! The `orderly` binary as an operator meets it: key commands, configuration errors,
//! `orderly config`, and `orderly run` from first start to SIGTERM.

use std::process::Command;
use std::time::Instant;

use crate::helpers::{Backend, RunProcess, TestDatabase};

const BIN: &str = env!("CARGO_BIN_EXE_orderly");

fn orderly(database_url: &str) -> Command {
    let mut command = Command::new(BIN);
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("ORDERLY_DATABASE_URL", database_url)
        .current_dir(std::env::temp_dir());
    command
}

#[tokio::test]
async fn keys_create_prints_only_the_key_and_list_and_revoke_manage_it() {
    let (_db, url) = TestDatabase::create(Backend::Sqlite).await.unwrap();
    let output = orderly(&url)
        .args([
            "keys",
            "create",
            "--role",
            "storefront",
            "--name",
            "web shop",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let key = lines[0];
    assert!(key.starts_with("oly_") && key.len() >= 4 + 22, "{key}");
    assert!(
        !String::from_utf8_lossy(&output.stderr).contains(key),
        "the key leaked into logs"
    );

    let listed = orderly(&url).args(["keys", "list"]).output().unwrap();
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(
        listed.contains("storefront") && listed.contains("web shop"),
        "{listed}"
    );
    assert!(
        listed.contains(&key[..12]) && !listed.contains(key),
        "{listed}"
    );
    let id = listed
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();

    let revoked = orderly(&url).args(["keys", "revoke", id]).output().unwrap();
    assert!(revoked.status.success());
    let again = orderly(&url).args(["keys", "revoke", id]).output().unwrap();
    assert!(
        !again.status.success(),
        "revoking twice reports that no live key has that id"
    );
}

#[test]
fn a_bad_setting_stops_the_start_with_a_message_naming_it() {
    let output = orderly("sqlite://unused.db")
        .env("ORDERLY_LISTEN", "nowhere")
        .args(["config"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("http.listen"), "{stderr}");
    // A bad duration or time zone stops `run` itself, before it opens anything.
    for (variable, value, key) in [
        ("ORDERLY_WORKER__LEASE", "soon", "worker.lease"),
        (
            "ORDERLY_SCHEDULES__PRUNE__TIMEZONE",
            "Mars/Olympus",
            "schedules.prune.timezone",
        ),
        ("ORDERLY_WORKER__LEASE_SECS", "30", "worker.lease"),
        // A fleet-wide limit on a queue that does not exist.
        (
            "ORDERLY_WORKER__LIMITS__QUEUES__WEBHOOK",
            "40",
            "worker.limits.queues",
        ),
    ] {
        let output = orderly("sqlite://unused.db")
            .env(variable, value)
            .args(["run"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{variable}={value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(key) && stderr.contains(value), "{stderr}");
    }
}

#[test]
fn config_prints_the_effective_settings_with_the_password_masked() {
    let output = orderly("postgres://shop:hunter2@db.internal:5432/shop")
        .env("ORDERLY_HTTP__BODY_LIMIT_BYTES", "2048")
        .args(["config"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(!stdout.contains("hunter2"), "{stdout}");
    assert!(
        stdout.contains("postgres://shop:***@db.internal:5432/shop"),
        "{stdout}"
    );
    assert!(stdout.contains("body_limit_bytes = 2048"), "{stdout}");
}

#[tokio::test]
async fn run_creates_a_first_admin_key_serves_with_it_and_exits_0_on_sigterm() {
    let (_db, url) = TestDatabase::create(Backend::Sqlite).await.unwrap();
    let started = Instant::now();
    let run = RunProcess::start(&url, &[]);
    eprintln!("ready to serve after {:?}", started.elapsed());
    let response = crate::helpers::http_client()
        .get(format!("{}/v1/products", run.base))
        .bearer_auth(&run.key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let (key, lines) = (run.key.clone(), run.lines.clone());
    assert!(run.stop().await.success(), "a clean exit on SIGTERM");
    let lines = lines.lock().unwrap();
    assert!(lines.iter().any(|l| l["message"] == "stopped"), "{lines:?}");
    assert!(
        lines.iter().all(|l| !l.to_string().contains(&key)),
        "the key appeared in a log line"
    );
    assert!(
        lines
            .iter()
            .all(|l| !l.to_string().contains("allow_private")),
        "no webhook warning without the allowance"
    );
}

#[tokio::test]
async fn allowing_private_webhook_targets_is_announced_with_a_warning_at_start() {
    let (_db, url) = TestDatabase::create(Backend::Sqlite).await.unwrap();
    let run = RunProcess::start(&url, &[("ORDERLY_WEBHOOKS_ALLOW_PRIVATE", "true")]);
    let lines = run.lines.clone();
    assert!(run.stop().await.success());
    let lines = lines.lock().unwrap();
    let warning = lines
        .iter()
        .find(|l| {
            l["message"]
                .as_str()
                .unwrap_or("")
                .contains("webhooks.allow_private is on")
        })
        .unwrap_or_else(|| panic!("no warning in {lines:?}"));
    assert_eq!(warning["level"], "WARN");
}

#[tokio::test]
async fn healthcheck_exits_0_while_the_process_beside_it_answers_and_1_when_nothing_listens() {
    let (_db, url) = TestDatabase::create(Backend::Sqlite).await.unwrap();
    let run = RunProcess::start(&url, &[]);
    let listen = run.base.trim_start_matches("http://").to_owned();
    let healthcheck = |api: &str, worker: &str| {
        orderly(&url)
            .args(["healthcheck", "--timeout", "2s"])
            .env("ORDERLY_LISTEN", api)
            .env("ORDERLY_WORKER__METRICS_LISTEN", worker)
            .output()
            .unwrap()
    };
    let closed = || {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap().to_string()
    };

    let output = healthcheck(&listen, &closed());
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // A worker-only process: nothing on the API's address, /healthz on the metrics address.
    let output = healthcheck(&closed(), &listen);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(run.stop().await.success());

    let output = healthcheck(&listen, &closed());
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("nothing listens at http://"), "{stderr}");
}

/// `orderly orders pay|ship` on an order the API placed: the API's rules, the actor `cli`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_pay_and_ship_record_a_capture_and_a_shipment_as_the_api_does() {
    let Some(app) = crate::helpers::TestApp::spawn(Backend::Sqlite).await else {
        return;
    };
    app.create_product("SHELF", 2_000, 5).await;
    let order: serde_json::Value = app
        .place_order(serde_json::json!([{"sku": "SHELF", "quantity": 2}]))
        .await
        .json()
        .await
        .unwrap();
    let id = order["id"].as_str().unwrap();
    let run = |args: &[&str]| orderly(&app.database_url).args(args).output().unwrap();

    let early = run(&["orders", "ship", id, "--line", "SHELF=1"]);
    assert!(!early.status.success());
    assert!(
        String::from_utf8_lossy(&early.stderr).contains("due"),
        "{early:?}"
    );
    let paid = run(&[
        "orders",
        "pay",
        id,
        "--amount",
        "40.00",
        "--reference",
        "cash-1",
    ]);
    assert!(paid.status.success(), "{paid:?}");
    let said = String::from_utf8(paid.stdout).unwrap();
    assert!(
        said.contains("paid, payment paid") && said.contains("balance due 0.00 EUR"),
        "{said}"
    );
    for refused in [
        vec!["orders", "pay", id, "--amount", "1.001", "--reference", "x"],
        vec![
            "orders",
            "ship",
            id,
            "--line",
            "SHELF=1",
            "--url",
            "ftp://files.example/t",
        ],
        vec!["orders", "ship", id, "--line", "NOPE=1"],
        vec!["orders", "ship", "not-an-id", "--line", "SHELF=1"],
    ] {
        let output = run(&refused);
        assert!(!output.status.success(), "{refused:?} was accepted");
    }
    let shipped = run(&[
        "orders",
        "ship",
        id,
        "--line",
        "SHELF=2",
        "--carrier",
        "Post",
        "--url",
        "https://post.example/t/9",
    ]);
    assert!(shipped.status.success(), "{shipped:?}");
    assert!(
        String::from_utf8(shipped.stdout)
            .unwrap()
            .contains("fulfilled")
    );
    let history = app.read(&format!("/v1/orders/{id}/history")).await;
    let by_cli = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"]["type"] == "system" && e["actor"]["id"] == "cli")
        .count();
    assert_eq!(by_cli, 4, "capture, paid, shipment, fulfilled: {history}");
}
