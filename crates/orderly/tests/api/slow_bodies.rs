//! Bodies that trickle or stall, on every route: none is waited on past
//! `http.body_read_timeout`, and however many anonymous clients stall their bodies, keyed
//! callers keep being served from the share of `http.max_in_flight` kept for them.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::helpers::{Backend, StatusCode, TestApp};

async fn spawn(settings: &[(&str, &str)]) -> TestApp {
    TestApp::spawn_with(Backend::Sqlite, settings)
        .await
        .expect("SQLite is always available")
}

/// A connection to `app` from the loopback address `from` (127.0.0.x: a client address of
/// its own for the rate limits).
async fn connect_from(app: &TestApp, from: [u8; 4]) -> TcpStream {
    let server: SocketAddr = app.address.trim_start_matches("http://").parse().unwrap();
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    socket.connect(server).await.expect("a TCP connection")
}

/// A console sign-in whose body announces 100 bytes and sends 8: it stalls there.
const STALLED_SIGN_IN: &[u8] = b"POST /console/sign-in HTTP/1.1\r\nHost: orderly\r\n\
    Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nkey=oly_";

/// Whatever the server sent on `stream` within `limit`, until it closed the connection or a
/// whole answer came.
async fn read_answer(stream: &mut TcpStream, limit: Duration) -> String {
    let deadline = tokio::time::Instant::now() + limit;
    let mut text = Vec::new();
    let mut buffer = [0u8; 4096];
    while let Ok(Ok(n @ 1..)) = tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
        text.extend_from_slice(&buffer[..n]);
        if text.ends_with(b"}") || text.ends_with(b"</html>") || text.ends_with(b"</html>\n") {
            break;
        }
    }
    String::from_utf8_lossy(&text).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_anonymous_bodies_cannot_starve_keyed_requests() {
    let app = spawn(&[("ORDERLY_HTTP__MAX_IN_FLIGHT", "64")]).await;
    let products = app.url("/v1/products");
    // The key is verified (and cached) before the flood, as a keyed client's would be.
    let first = app
        .client
        .get(&products)
        .bearer_auth(&app.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);

    // 120 sign-ins, 30 from each of four addresses (inside the anonymous burst of 50), each
    // stalled after its first bytes.
    let mut stalled = Vec::new();
    for address in 2..=5u8 {
        for _ in 0..30 {
            let mut stream = connect_from(&app, [127, 0, 0, address]).await;
            stream.write_all(STALLED_SIGN_IN).await.unwrap();
            stalled.push(stream);
        }
    }
    let flood_sent = Instant::now();

    // Keyed reads, four at a time, for the next seven seconds: before the body timeout (10 s)
    // could free a slot.
    let mut statuses = Vec::new();
    while flood_sent.elapsed() < Duration::from_secs(7) {
        let batch: Vec<_> = (0..4)
            .map(|_| {
                let request = app.client.get(&products).bearer_auth(&app.admin_key).send();
                tokio::spawn(request)
            })
            .collect();
        for request in batch {
            statuses.push(request.await.unwrap().map(|r| r.status()).ok());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        statuses.len() > 40,
        "only {} keyed requests sent",
        statuses.len()
    );
    assert!(
        statuses.iter().all(|s| *s == Some(StatusCode::OK)),
        "keyed reads during the flood: {statuses:?}"
    );

    // The flood's requests past the anonymous share were shed at once; those admitted are
    // cut off at the body timeout with 408. None is served otherwise.
    let mut shed = 0;
    let mut timed_out = 0;
    for stream in &mut stalled {
        let answer = read_answer(stream, Duration::from_secs(8)).await;
        if answer.starts_with("HTTP/1.1 503") && answer.contains(r#""code":"overloaded""#) {
            shed += 1;
        } else if answer.starts_with("HTTP/1.1 408") {
            timed_out += 1;
        } else {
            panic!("a stalled sign-in answered: {answer:?}");
        }
    }
    assert_eq!(
        (shed, timed_out),
        (120 - 16, 16),
        "a quarter of 64 slots for anonymous requests"
    );
    let took = flood_sent.elapsed();
    assert!(
        took < Duration::from_secs(13),
        "the last 408 came after {took:?}"
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM console_sessions").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_console_form_is_408_at_the_body_timeout() {
    let app = spawn(&[("ORDERLY_HTTP__BODY_READ_TIMEOUT", "1s")]).await;
    let mut stream = connect_from(&app, [127, 0, 0, 1]).await;
    stream.write_all(STALLED_SIGN_IN).await.unwrap();
    let started = Instant::now();
    let answer = read_answer(&mut stream, Duration::from_secs(5)).await;
    let took = started.elapsed();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "answered after {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_a_route_never_reads_holds_nothing_past_its_answer() {
    let app = spawn(&[("ORDERLY_HTTP__BODY_READ_TIMEOUT", "1s")]).await;
    // A GET with a body that never arrives: answered at once, and the connection closed
    // rather than kept waiting for the rest.
    let mut stream = connect_from(&app, [127, 0, 0, 1]).await;
    stream
        .write_all(b"GET /v1/products HTTP/1.1\r\nHost: orderly\r\nContent-Length: 100\r\n\r\n{")
        .await
        .unwrap();
    let started = Instant::now();
    let answer = read_answer(&mut stream, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    let mut rest = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut rest)).await;
    assert!(
        matches!(closed, Ok(Ok(0) | Err(_))),
        "the connection is closed: {closed:?}"
    );
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "closed after {took:?}");
}
