//! Slow, idle and too many clients, over raw TCP: every connection is bounded in time and in
//! number, and the clients that behave are served meanwhile.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Backend, StatusCode, TestApp};

const REQUEST: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: orderly\r\n\r\n";

async fn spawn(settings: &[(&str, &str)]) -> TestApp {
    TestApp::spawn_with(Backend::Sqlite, settings)
        .await
        .expect("SQLite is always available")
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .expect("a TCP connection")
}

/// How long until the server closes `stream` (reading and discarding what it sends), or
/// `None` if it is still open after `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((started + limit).into(), stream.read(&mut buffer)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

/// Sends the request and reads the answer's status line.
async fn status_of(stream: &mut TcpStream) -> String {
    stream.write_all(REQUEST).await.unwrap();
    let mut buffer = [0u8; 4096];
    let n = stream.read(&mut buffer).await.unwrap();
    let text = String::from_utf8_lossy(&buffer[..n]).into_owned();
    text.lines().next().unwrap_or_default().to_owned()
}

async fn healthz(app: &TestApp) -> StatusCode {
    app.client
        .get(app.url("/healthz"))
        .send()
        .await
        .map_or(StatusCode::BAD_GATEWAY, |r| r.status())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_sent_a_byte_at_a_time_is_cut_off_at_the_header_timeout() {
    let app = spawn(&[("ORDERLY_HTTP__HEADER_READ_TIMEOUT", "1s")]).await;
    let slow = connect(&app).await;
    let (mut reader, mut writer) = slow.into_split();
    // One byte every 300 ms: the request line alone would take 7 s.
    tokio::spawn(async move {
        for byte in REQUEST {
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    let started = Instant::now();
    assert_eq!(healthz(&app).await, StatusCode::OK, "others are served");
    let mut buffer = [0u8; 1024];
    let ended = tokio::time::timeout(Duration::from_secs(5), reader.read(&mut buffer)).await;
    let took = started.elapsed();
    assert!(
        matches!(ended, Ok(Ok(0) | Err(_))),
        "the slow connection is closed (not answered): {ended:?}"
    );
    assert!(
        (Duration::from_millis(800)..Duration::from_secs(3)).contains(&took),
        "closed after {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_kept_alive_connection_is_closed_after_the_timeout() {
    let app = spawn(&[("ORDERLY_HTTP__HEADER_READ_TIMEOUT", "1s")]).await;
    let mut idle = connect(&app).await;
    assert_eq!(status_of(&mut idle).await, "HTTP/1.1 200 OK");
    let closed = closed_within(&mut idle, Duration::from_secs(5)).await;
    let closed = closed.expect("the idle connection is closed");
    assert!(
        closed >= Duration::from_millis(800),
        "closed after {closed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_a_new_connection_waits_for_a_slot_while_the_open_ones_are_served()
{
    let app = spawn(&[
        ("ORDERLY_HTTP__MAX_CONNECTIONS", "3"),
        ("ORDERLY_HTTP__HEADER_READ_TIMEOUT", "5s"),
    ])
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut connection = connect(&app).await;
        assert_eq!(status_of(&mut connection).await, "HTTP/1.1 200 OK");
        held.push(connection);
    }
    // The fourth is not accepted while three are open: its request waits.
    let mut waiting = connect(&app).await;
    waiting.write_all(REQUEST).await.unwrap();
    let mut buffer = [0u8; 1024];
    let early = tokio::time::timeout(Duration::from_millis(500), waiting.read(&mut buffer)).await;
    assert!(early.is_err(), "answered past the cap: {early:?}");
    assert_eq!(
        status_of(&mut held[1]).await,
        "HTTP/1.1 200 OK",
        "the open ones are served"
    );

    held.pop();
    let n = tokio::time::timeout(Duration::from_secs(2), waiting.read(&mut buffer))
        .await
        .expect("answered once a slot is free")
        .unwrap();
    assert!(buffer[..n].starts_with(b"HTTP/1.1 200 OK"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_header_holds_up_shutdown_only_until_the_header_timeout() {
    let app = spawn(&[
        ("ORDERLY_HTTP__HEADER_READ_TIMEOUT", "1s"),
        ("ORDERLY_HTTP__SHUTDOWN_GRACE", "8s"),
    ])
    .await;
    let mut half = connect(&app).await;
    half.write_all(b"GET /healthz HTTP/1.1\r\nHo")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    app.stop().await.unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(4), "shutdown took {took:?}");
}

/// The head of a `POST /v1/products` as admin, with `framing` (the body's length or chunking)
/// among its headers; the caller sends the body.
fn product_post(app: &TestApp, framing: &str) -> Vec<u8> {
    format!(
        "POST /v1/products HTTP/1.1\r\nHost: orderly\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\n{framing}\r\n",
        app.admin_key
    )
    .into_bytes()
}

/// Reads one answer's status line and its problem `code`.
async fn answer(stream: &mut TcpStream, limit: Duration) -> (String, String) {
    let mut text = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = Instant::now() + limit;
    while let Ok(Ok(n @ 1..)) =
        tokio::time::timeout_at(deadline.into(), stream.read(&mut buffer)).await
    {
        text.extend_from_slice(&buffer[..n]);
        if text.ends_with(b"}") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&text).into_owned();
    let status = text.lines().next().unwrap_or_default().to_owned();
    let code = text
        .split("\"code\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_owned();
    (status, code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_sent_a_byte_at_a_time_is_refused_at_the_body_timeout() {
    let app = spawn(&[("ORDERLY_HTTP__BODY_READ_TIMEOUT", "1s")]).await;
    let body = br#"{"sku": "SLOW", "name": "Slow", "price": 100, "stock": 1}"#;
    let mut slow = connect(&app).await;
    slow.write_all(&product_post(
        &app,
        &format!("Content-Length: {}\r\n", body.len()),
    ))
    .await
    .unwrap();
    let (mut reader, mut writer) = slow.into_split();
    tokio::spawn(async move {
        for byte in body {
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    let started = Instant::now();
    let mut text = Vec::new();
    let mut buffer = [0u8; 4096];
    while let Ok(Ok(n @ 1..)) =
        tokio::time::timeout(Duration::from_secs(5), reader.read(&mut buffer)).await
    {
        text.extend_from_slice(&buffer[..n]);
        if text.ends_with(b"}") {
            break;
        }
    }
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&text);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains(r#""code":"body_timeout""#), "{text}");
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM products").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_chunked_body_is_400_body_unreadable() {
    let app = spawn(&[]).await;
    let mut broken = connect(&app).await;
    let mut request = product_post(&app, "Transfer-Encoding: chunked\r\n");
    request.extend_from_slice(b"zz\r\n{}\r\n0\r\n\r\n");
    broken.write_all(&request).await.unwrap();
    let (status, code) = answer(&mut broken, Duration::from_secs(5)).await;
    assert!(status.starts_with("HTTP/1.1 400"), "{status}");
    assert_eq!(code, "body_unreadable");
}

/// A handler slower than `http.request_timeout` (a trigger makes the product insert take
/// 3 s) is answered `503 request_timeout` at the deadline. The deadline only stops waiting:
/// the statement already sent completes on the server, which is why the answer says the
/// request may or may not have taken effect; either way the product and its event are
/// written together or not at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_its_deadline_is_503_request_timeout() {
    let Some(app) = TestApp::spawn_with(
        Backend::Postgres,
        &[("ORDERLY_HTTP__REQUEST_TIMEOUT", "1s")],
    )
    .await
    else {
        return;
    };
    app.slow_inserts("products", 3).await;
    let started = Instant::now();
    let response = app
        .admin(reqwest::Method::POST, "/v1/products")
        .json(&serde_json::json!({"sku": "SLOW", "name": "Slow", "price": 100, "stock": 1}))
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(response.headers()["retry-after"], "1");
    let body = crate::helpers::problem(response, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(body["code"], "request_timeout");
    assert!(
        took < Duration::from_millis(2500),
        "answered after {took:?}"
    );
    let running = "SELECT COUNT(*) FROM pg_stat_activity \
                   WHERE datname = current_database() \
                   AND query LIKE 'INSERT INTO products%' AND state <> 'idle'";
    crate::helpers::eventually(10, "the insert to finish on the server", || async {
        (app.scalar(running).await == 0).then_some(())
    })
    .await;
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM products").await,
        app.scalar("SELECT COUNT(*) FROM events WHERE type = 'product.created'")
            .await,
    );
}
