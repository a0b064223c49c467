//! The database failing under the service the ways a failover makes it fail: the connection
//! cut while `COMMIT` runs, and a server that vanishes without closing its connections. Both
//! on PostgreSQL, with the fault made in the database or on the wire, not in the code.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::{Backend, StatusCode, TestApp, eventually, problem};

mod refused;

fn order_body() -> Value {
    json!({"customer": {"email": "ana@example.com", "name": "Ana Lima"},
           "lines": [{"sku": "KETTLE", "quantity": 2}]})
}

async fn counts(app: &TestApp) -> (i64, i64, i64, i64) {
    (
        app.scalar("SELECT COUNT(*) FROM orders").await,
        app.scalar("SELECT COUNT(*) FROM order_lines").await,
        app.scalar("SELECT COUNT(*) FROM events WHERE type LIKE 'order.%'")
            .await,
        app.scalar("SELECT COUNT(*) FROM idempotency_keys").await,
    )
}

async fn stock(app: &TestApp) -> i64 {
    app.scalar("SELECT stock FROM products WHERE sku = 'KETTLE'")
        .await
}

/// The connection dies while `COMMIT` runs, as when the primary fails over under it: a
/// deferred constraint trigger terminates its own backend at commit time (`FATAL 57P01`, a
/// fault injected in the database, not in the code). orderly cannot know whether the order
/// exists: it must answer `503 commit_outcome_unknown` with `Retry-After`, never `201` nor
/// `500`, and leave the key free, so that the client's retry with the same key places the
/// order exactly once. (Here the commit did not happen; `tests/failover.sh`'s
/// `commit-unknown` scenario has one that did, on a real synchronous standby.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_lost_during_commit_is_a_503_and_the_retry_places_the_order_once() {
    let Some(app) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    app.create_product("KETTLE", 2500, 10).await;
    app.execute(
        "",
        "CREATE FUNCTION die_at_commit() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NULL; END $$; \
         CREATE CONSTRAINT TRIGGER die_at_commit AFTER INSERT ON orders \
         DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION die_at_commit();",
    )
    .await;
    let body = order_body();
    let place = || {
        app.storefront(Method::POST, "/v1/orders")
            .header("idempotency-key", "kettle-once")
            .json(&body)
            .send()
    };

    let cut = place().await.unwrap();
    assert_eq!(cut.headers()["retry-after"], "1");
    let problem = problem(cut, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(problem["code"], "commit_outcome_unknown", "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("same Idempotency-Key")
    );
    assert_eq!(
        counts(&app).await,
        (0, 0, 0, 0),
        "the cut commit did not happen"
    );

    app.execute("", "DROP TRIGGER die_at_commit ON orders")
        .await;
    let placed = place().await.unwrap();
    assert_eq!(
        placed.status(),
        StatusCode::CREATED,
        "the key was not left in flight"
    );
    let order: Value = placed.json().await.unwrap();
    let replayed: Value = place().await.unwrap().json().await.unwrap();
    assert_eq!(replayed["id"], order["id"]);
    assert_eq!(counts(&app).await, (1, 1, 1, 1));
    assert_eq!(stock(&app).await, 8);
}

/// A TCP relay to PostgreSQL that can go silent: while frozen it forwards nothing either way
/// but keeps every connection open, which is how a server that vanished (a lost node, a cut
/// network) looks to its clients. Thawed, it ends the connections it froze (the client then
/// learns they are gone) and relays new ones again.
struct SilentRelay {
    address: SocketAddr,
    frozen: Arc<AtomicBool>,
    /// Bumped on thaw; connections from before it end.
    generation: Arc<AtomicU64>,
}

impl SilentRelay {
    async fn to(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let frozen = Arc::new(AtomicBool::new(false));
        let generation = Arc::new(AtomicU64::new(0));
        accept_relayed(listener, target, frozen.clone(), generation.clone());
        Self {
            address,
            frozen,
            generation,
        }
    }

    fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
    }

    fn thaw(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.frozen.store(false, Ordering::SeqCst);
    }
}

/// Accepts connections on `listener` and relays each to `target` (see [`relay`]) until the
/// task is aborted.
fn accept_relayed(
    listener: TcpListener,
    target: SocketAddr,
    frozen: Arc<AtomicBool>,
    generation: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(target).await else {
                continue;
            };
            let born = generation.load(Ordering::SeqCst);
            let (f, g) = (frozen.clone(), generation.clone());
            tokio::spawn(async move {
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::select! {
                    () = relay(client_read, server_write, &f, &g, born) => {}
                    () = relay(server_read, client_write, &f, &g, born) => {}
                }
            });
        }
    })
}

/// Copies `from` to `to` while unfrozen, until either side closes or a thaw ends this
/// connection's generation.
async fn relay(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    frozen: &AtomicBool,
    generation: &AtomicU64,
    born: u64,
) {
    let current = || generation.load(Ordering::SeqCst) == born;
    let mut buffer = vec![0u8; 16 * 1024];
    while current() {
        let read = tokio::select! {
            read = from.read(&mut buffer) => read,
            () = tokio::time::sleep(Duration::from_millis(20)) => continue,
        };
        let Ok(n @ 1..) = read else { return };
        while frozen.load(Ordering::SeqCst) {
            if !current() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if !current() || to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

/// An app on the same database as `direct`, reaching it through a relay the test can
/// freeze, with a 3 s write timeout and a 1 s acquire timeout.
async fn through_a_relay(direct: &TestApp) -> (TestApp, SilentRelay) {
    let mut url = reqwest::Url::parse(&direct.database_url).unwrap();
    let target = SocketAddr::new(
        url.host_str().unwrap().parse().unwrap(),
        url.port().unwrap_or(5432),
    );
    let relay = SilentRelay::to(target).await;
    url.set_port(Some(relay.address.port())).unwrap();
    let app = TestApp::spawn_on(
        direct,
        url.as_str(),
        &[
            ("ORDERLY_DATABASE__WRITE_TIMEOUT", "3s"),
            ("ORDERLY_DATABASE__ACQUIRE_TIMEOUT", "1s"),
            // The keys stay verified while the database is away: this is about the order.
            ("ORDERLY_HTTP__AUTH_CACHE", "5m"),
        ],
    )
    .await;
    (app, relay)
}

/// Makes every order's `COMMIT` take two seconds on the server (a deferred trigger).
async fn slow_commits(direct: &TestApp) {
    direct
        .execute(
            "",
            "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN PERFORM pg_sleep(2); RETURN NULL; END $$; \
             CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON orders \
             DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit();",
        )
        .await;
}

/// Waits until an order's `COMMIT` is running (sleeping in the trigger) on the server.
async fn committing(direct: &TestApp) {
    eventually(10, "the order's COMMIT to be running", || async {
        (direct
            .scalar(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep' \
                 AND application_name = 'orderly api' AND datname = current_database()",
            )
            .await
            == 1)
            .then_some(())
    })
    .await;
}

/// The server vanishes while an order's `COMMIT` runs (a deferred trigger makes the commit
/// take 2 s; the relay goes silent meanwhile). The server commits; orderly never hears so.
/// Within `database.write_timeout` it answers `503 commit_outcome_unknown`, not a hang;
/// `/readyz` turns `503` within its check time, and new requests get `503` within the acquire
/// timeout. Once the server is reachable again everything recovers by itself, and the
/// client's retry with the same key returns the order that was committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_vanishes_during_commit_is_a_503_within_the_deadline_and_the_retry_finds_the_order()
 {
    let Some(direct) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    direct.create_product("KETTLE", 2500, 10).await;
    let (app, relay) = through_a_relay(&direct).await;
    let place = || {
        app.storefront(Method::POST, "/v1/orders")
            .header("idempotency-key", "kettle-vanished")
            .json(&order_body())
            .send()
    };
    let ready = || async {
        app.client
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(ready().await, StatusCode::OK);
    // Verifies the storefront key once, so the auth cache holds it.
    let warm = app
        .storefront(Method::GET, "/v1/products")
        .send()
        .await
        .unwrap();
    assert_eq!(warm.status(), StatusCode::OK);

    slow_commits(&direct).await;
    let sent = Instant::now();
    let first = tokio::spawn(place());
    committing(&direct).await;
    relay.freeze();

    let cut = first.await.unwrap().unwrap();
    let took = sent.elapsed();
    assert!(took < Duration::from_secs(5), "answered after {took:?}");
    assert_eq!(cut.headers()["retry-after"], "1");
    let body = problem(cut, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(body["code"], "commit_outcome_unknown", "{body}");
    let asked = Instant::now();
    assert_eq!(ready().await, StatusCode::SERVICE_UNAVAILABLE);
    let other = app.storefront(
        Method::GET,
        "/v1/orders/01890000-0000-7000-8000-000000000000",
    );
    problem(other.send().await.unwrap(), StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(
        asked.elapsed() < Duration::from_secs(6),
        "{:?}",
        asked.elapsed()
    );
    // The server did commit it, unknown to orderly.
    eventually(5, "the commit to finish on the server", || async {
        (direct.scalar("SELECT COUNT(*) FROM orders").await == 1).then_some(())
    })
    .await;

    relay.thaw();
    direct
        .execute("", "DROP TRIGGER slow_commit ON orders")
        .await;
    eventually(10, "/readyz to be 200 again", || async {
        (ready().await == StatusCode::OK).then_some(())
    })
    .await;
    let retry = place().await.unwrap();
    assert_eq!(retry.status(), StatusCode::CREATED);
    let order: Value = retry.json().await.unwrap();
    let stored: Value = direct
        .read(&format!("/v1/orders/{}", order["id"].as_str().unwrap()))
        .await;
    assert_eq!(stored["id"], order["id"]);
    assert_eq!(counts(&direct).await, (1, 1, 1, 1));
    assert_eq!(stock(&direct).await, 8);
}

/// A TCP relay to PostgreSQL that can be stopped as the server can: stopped, it ends every
/// connection and nothing listens on its port (connections are refused); started, it
/// listens on the same port and relays again.
struct StoppableRelay {
    address: SocketAddr,
    target: SocketAddr,
    accepting: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Bumped on stop; connections from before it end.
    generation: Arc<AtomicU64>,
}

impl StoppableRelay {
    async fn to(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let relay = Self {
            address: listener.local_addr().unwrap(),
            target,
            accepting: std::sync::Mutex::new(None),
            generation: Arc::new(AtomicU64::new(0)),
        };
        relay.accept(listener);
        relay
    }

    fn accept(&self, listener: TcpListener) {
        let never_frozen = Arc::new(AtomicBool::new(false));
        let task = accept_relayed(listener, self.target, never_frozen, self.generation.clone());
        *self.accepting.lock().unwrap() = Some(task);
    }

    async fn stop(&self) {
        let task = self.accepting.lock().unwrap().take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    async fn start(&self) {
        self.accept(TcpListener::bind(self.address).await.unwrap());
    }
}
