//! Receipts over real SMTP: Debian's aiosmtpd as the server (`scripts/services.sh` installs
//! it), started by the test on a free loopback port.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, eventually};

const PYTHON: &str = "/usr/bin/python3";

fn aiosmtpd_available() -> bool {
    let available = Command::new(PYTHON)
        .args(["-c", "import aiosmtpd"])
        .status()
        .is_ok_and(|s| s.success());
    if !available {
        assert!(
            std::env::var_os("CI").is_none(),
            "aiosmtpd must be installed in CI"
        );
        eprintln!(
            "\n*** aiosmtpd is not installed: the SMTP test did NOT run. \
             Run scripts/services.sh (it installs python3-aiosmtpd). ***\n"
        );
    }
    available
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An SMTP server that stores every message in the maildir `dir`; stopped on drop.
struct SmtpSink(Child);

/// An aiosmtpd handler that refuses every recipient with a permanent error.
const REJECTING_HANDLER: &str = "\
class Reject:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        return '550 5.1.1 no such mailbox here'
";

impl SmtpSink {
    /// A server that stores every message in the maildir `dir`.
    async fn start(port: u16, dir: &Path) -> Self {
        let dir = dir.display().to_string();
        Self::spawn(port, &["aiosmtpd.handlers.Mailbox", &dir], None).await
    }

    /// A server that refuses every recipient with `550`.
    async fn rejecting(port: u16, dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("reject.py"), REJECTING_HANDLER).unwrap();
        Self::spawn(port, &["reject.Reject"], Some(dir)).await
    }

    async fn spawn(port: u16, handler: &[&str], python_path: Option<&Path>) -> Self {
        let mut command = Command::new(PYTHON);
        command
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
            ])
            .args(handler)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(path) = python_path {
            command.env("PYTHONPATH", path);
        }
        let child = command.spawn().unwrap();
        eventually(10, "the SMTP sink to listen", || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
                .map(|_| ())
        })
        .await;
        Self(child)
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_waits_out_a_down_smtp_server_then_arrives() {
    if !aiosmtpd_available() {
        return;
    }
    let port = free_port();
    let smtp_url = format!("smtp://127.0.0.1:{port}");
    let app = TestApp::spawn_with_worker(Backend::Sqlite, &[("ORDERLY_SMTP_URL", &smtp_url)])
        .await
        .unwrap();
    app.create_product("SMTP", 4_200, 5).await;
    let order: Value = app
        .place_order(json!([{"sku": "SMTP", "quantity": 1}]))
        .await
        .json()
        .await
        .unwrap();
    let id = order["id"].as_str().unwrap().to_owned();

    // Nobody listens yet: the attempt fails temporarily and the job waits for its retry.
    let failed = eventually(10, "a failed first attempt", || async {
        let jobs: Value = app
            .admin(Method::GET, "/v1/jobs?kind=send_receipt")
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let job = jobs["data"][0].clone();
        (job["state"] == "available" && job["last_error"].is_string()).then_some(job)
    })
    .await;
    assert!(failed["attempt"].as_i64().unwrap() >= 1);

    let maildir = app.dir.join("maildir");
    let _sink = SmtpSink::start(port, &maildir).await;
    eventually(15, "the receipt to be recorded as sent", || async {
        let read: Value = app
            .admin(Method::GET, &format!("/v1/orders/{id}"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        read["receipt_sent_at"].is_string().then_some(())
    })
    .await;
    let delivered = std::fs::read_dir(maildir.join("new"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let raw = std::fs::read(delivered.path()).unwrap();
    let message = mail_parser::MessageParser::default().parse(&raw).unwrap();
    assert_eq!(
        message.message_id(),
        Some(format!("receipt-{id}@orderly.localhost").as_str())
    );
    assert!(message.body_text(0).unwrap().contains("42.00 EUR"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_smtp_refusal_discards_the_receipt_job_with_the_reply_kept() {
    if !aiosmtpd_available() {
        return;
    }
    let port = free_port();
    let smtp_url = format!("smtp://127.0.0.1:{port}");
    let app = TestApp::spawn_with_worker(Backend::Sqlite, &[("ORDERLY_SMTP_URL", &smtp_url)])
        .await
        .unwrap();
    let _sink = SmtpSink::rejecting(port, &app.dir.join("smtp")).await;
    app.create_product("BOUNCE", 100, 5).await;
    let order: Value = app
        .place_order(json!([{"sku": "BOUNCE", "quantity": 1}]))
        .await
        .json()
        .await
        .unwrap();
    let job = eventually(15, "the receipt job to be discarded", || async {
        let jobs: Value = app
            .admin(Method::GET, "/v1/jobs?kind=send_receipt")
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let job = jobs["data"][0].clone();
        (job["state"] == "discarded").then_some(job)
    })
    .await;
    assert_eq!(job["attempt"], 1, "a permanent refusal is not retried");
    let error = job["last_error"].as_str().unwrap();
    assert!(
        error.contains("550") && error.contains("no such mailbox"),
        "{error}"
    );
    let read: Value = app
        .read(&format!("/v1/orders/{}", order["id"].as_str().unwrap()))
        .await;
    assert!(read["receipt_sent_at"].is_null());
}

/// lettre writes a message and its closing `.` in two writes; without `TCP_NODELAY` the
/// second waited for the server's delayed acknowledgement of the first, about 40 ms on Linux,
/// for every message. Twenty messages one after another on one mailer (so on one kept
/// connection): each takes a few milliseconds, not 40. The stall would be in every message,
/// so the fastest one says whether it is back (the median moves with a busy machine's load).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_smtp_does_not_wait_for_a_delayed_acknowledgement() {
    if !aiosmtpd_available() {
        return;
    }
    orderly::install_crypto_provider();
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("orderly-smtp-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let _sink = SmtpSink::start(port, &dir.join("maildir")).await;
    let mailer = orderly_worker::Mailer::new(&orderly_worker::MailSettings {
        smtp_url: Some(format!("smtp://127.0.0.1:{port}")),
        outbox: dir.join("outbox"),
        from: "Shop <orders@shop.example>".parse().unwrap(),
        timeout: std::time::Duration::from_secs(10),
    })
    .unwrap();
    let mut took = Vec::new();
    for n in 0..20 {
        let message = lettre::Message::builder()
            .from("Shop <orders@shop.example>".parse().unwrap())
            .to("Ana <ana@example.com>".parse().unwrap())
            .subject(format!("Message {n}"))
            .body("x".repeat(2_000))
            .unwrap();
        let started = std::time::Instant::now();
        mailer
            .send(&message, &format!("m{n}"), &Default::default())
            .await
            .unwrap();
        took.push(started.elapsed());
    }
    took.sort();
    println!(
        "20 messages over SMTP, one at a time: fastest {:?}, median {:?}, slowest {:?}",
        took[0],
        took[took.len() / 2],
        took[19]
    );
    assert!(
        took[0] < std::time::Duration::from_millis(30),
        "the fastest message took {:?}: the delayed-acknowledgement stall is back ({took:?})",
        took[0]
    );
    let stored = std::fs::read_dir(dir.join("maildir").join("new"))
        .unwrap()
        .count();
    assert_eq!(stored, 20);
    let _ = std::fs::remove_dir_all(&dir);
}
