//! Events for other systems: the outbox relayed to a real NATS JetStream server (each test
//! starts its own `nats-server`, so it can stop and restart it), and the HTTP feed.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Backend, StatusCode, TestApp, eventually};
use crate::workers::WorkerProcess;

mod relay_process;

const NATS_SERVER: &str = "/usr/sbin/nats-server";

/// A `nats-server` with JetStream of the test's own, on a free port, keeping its stream in a
/// folder that outlives a restart.
pub(crate) struct Nats {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl Nats {
    pub(crate) fn start() -> Self {
        assert!(
            std::path::Path::new(NATS_SERVER).exists(),
            "{NATS_SERVER} is missing: install Debian's nats-server (.ci/run does)"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("orderly-nats-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut nats = Self {
            child: None,
            port,
            dir,
        };
        nats.resume();
        nats
    }

    pub(crate) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again), on the same port and storage.
    fn resume(&mut self) {
        self.child = Some(
            Command::new(NATS_SERVER)
                .args([
                    "-a",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-js",
                    "-sd",
                ])
                .arg(&self.dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start nats-server"),
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "nats-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Every message of `stream`: its event id, subject, headers and body; none while the
    /// stream does not exist.
    pub(crate) async fn messages(&self, stream: &str) -> Vec<Relayed> {
        let client = async_nats::connect(self.url()).await.unwrap();
        let Ok(mut stream) = jetstream::new(client).get_stream(stream).await else {
            return Vec::new();
        };
        let state = stream.info().await.unwrap().state.clone();
        let mut messages = Vec::new();
        for sequence in state.first_sequence..=state.last_sequence {
            if state.messages == 0 {
                break;
            }
            let message = stream.get_raw_message(sequence).await.unwrap();
            let header = |name: &str| {
                message
                    .headers
                    .get(name)
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_default()
            };
            messages.push(Relayed {
                id: header("Nats-Msg-Id").parse().unwrap(),
                subject: message.subject.to_string(),
                kind: header("Orderly-Event-Type"),
                traceparent: header("traceparent"),
                body: serde_json::from_slice(&message.payload).unwrap(),
            });
        }
        messages
    }

    /// How many messages `stream` holds; 0 while it does not exist.
    async fn count(&self, stream: &str) -> u64 {
        let Ok(client) = async_nats::connect(self.url()).await else {
            return 0;
        };
        match jetstream::new(client).get_stream(stream).await {
            Ok(mut stream) => stream.info().await.map_or(0, |i| i.state.messages),
            Err(_) => 0,
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[derive(Debug)]
pub(crate) struct Relayed {
    pub id: Uuid,
    pub subject: String,
    pub kind: String,
    pub traceparent: String,
    pub body: Value,
}

fn relay_settings<'a>(nats: &'a str, stream: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("ORDERLY_EVENTS__NATS_URL", nats),
        ("ORDERLY_EVENTS__STREAM", stream),
        ("ORDERLY_EVENTS__LAG_THRESHOLD", "5s"),
    ]
}

/// The events the database holds: id → (subject id, position).
async fn stored_events(app: &TestApp) -> HashMap<Uuid, (Uuid, i64)> {
    let mut events = HashMap::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(after) => format!("/v1/events?limit=100&after={after}"),
            None => "/v1/events?limit=100".to_owned(),
        };
        let page = app.read(&path).await;
        let data = page["data"].as_array().unwrap();
        for event in data {
            events.insert(
                event["id"].as_str().unwrap().parse().unwrap(),
                (
                    event["subject_id"].as_str().unwrap().parse().unwrap(),
                    event["position"].as_i64().unwrap(),
                ),
            );
        }
        if data.len() < 100 {
            return events;
        }
        after = page["next_after"].as_str().map(str::to_owned);
    }
}

/// Places `n` orders, 16 at a time; returns their ids.
async fn place_orders(app: &Arc<TestApp>, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(16) {
        let placing: Vec<_> = chunk
            .iter()
            .map(|_| {
                let app = app.clone();
                tokio::spawn(async move {
                    let response = app
                        .place_order(json!([{"sku": "EVT", "quantity": 1}]))
                        .await;
                    assert_eq!(response.status(), StatusCode::CREATED);
                    let order: Value = response.json().await.unwrap();
                    order["id"].as_str().unwrap().to_owned()
                })
            })
            .collect();
        for placed in placing {
            ids.push(placed.await.unwrap());
        }
    }
    ids
}

/// Tests on both backends, each with its own `nats-server`, a stream of its own, and the API
/// and a worker (relaying to it) in one process.
/// Each test on both backends ([`orderly_testing::on_both_backends!`]), with an app whose
/// worker relays to a NATS server and stream of the test's own.
macro_rules! relay_tests {
    ($(async fn $name:ident($app:ident, $nats:ident, $stream:ident) $body:block)*) => {
        orderly_testing::on_both_backends! {
            $(
                async fn $name(backend) {
                    let $nats = Nats::start();
                    let $stream = format!("TEST_{}", Uuid::new_v4().simple());
                    let url = $nats.url();
                    let Some(app) =
                        TestApp::spawn_with_worker(backend, &relay_settings(&url, &$stream)).await
                    else {
                        return;
                    };
                    let $app = Arc::new(app);
                    $body
                }
            )*
        }
    };
}

async fn transition(app: &TestApp, order: &str, action: &str) {
    let response = app
        .admin(Method::POST, &format!("/v1/orders/{order}/{action}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{action} {order}");
}

/// Every stored event is on the stream exactly once, and each order's events are on it in
/// the order they were committed.
async fn assert_relayed_exactly_once(app: &TestApp, nats: &Nats, stream: &str) {
    // The feed shows positioned events only: wait for the sequencer to reach the last.
    eventually(30, "every event positioned", || async {
        (app.scalar("SELECT COUNT(*) FROM events WHERE position IS NULL")
            .await
            == 0)
            .then_some(())
    })
    .await;
    let stored = stored_events(app).await;
    eventually(60, "every event on the stream", || async {
        (nats.count(stream).await >= stored.len() as u64).then_some(())
    })
    .await;
    let messages = nats.messages(stream).await;
    let ids: HashSet<Uuid> = messages.iter().map(|m| m.id).collect();
    assert_eq!(ids.len(), messages.len(), "no event twice on the stream");
    assert_eq!(messages.len(), stored.len(), "as many messages as events");
    assert_eq!(ids, stored.keys().copied().collect(), "the same events");
    let mut last_position: HashMap<Uuid, i64> = HashMap::new();
    for message in &messages {
        let (subject, position) = stored[&message.id];
        assert_eq!(message.subject, format!("orderly.{}", message.kind));
        assert_eq!(message.body["position"], position);
        if let Some(before) = last_position.insert(subject, position) {
            assert!(
                before < position,
                "order {subject}: events out of commit order"
            );
        }
    }
}

relay_tests! {
    async fn every_event_reaches_the_stream_once_and_each_orders_in_commit_order(app, nats, stream) {
        app.create_product("EVT", 100, 100_000).await;
        let orders = place_orders(&app, 1_000).await;
        for (n, order) in orders.iter().enumerate() {
            match n % 4 {
                0 => {
                    transition(&app, order, "pay").await;
                    transition(&app, order, "fulfill").await;
                }
                1 => transition(&app, order, "pay").await,
                2 => transition(&app, order, "cancel").await,
                _ => {}
            }
        }
        assert_relayed_exactly_once(&app, &nats, &stream).await;
        let messages = nats.messages(&stream).await;
        // Order by order: created, its capture, paid, its shipment, fulfilled.
        let mut kinds: HashMap<String, Vec<String>> = HashMap::new();
        for m in &messages {
            kinds.entry(m.body["subject_id"].as_str().unwrap().to_owned()).or_default().push(m.kind.clone());
        }
        assert_eq!(kinds[&orders[0]], ["order.created", "order.payment_captured", "order.paid", "order.fulfillment_created", "order.fulfilled"]);
        assert_eq!(kinds[&orders[2]], ["order.created", "order.units_cancelled", "order.cancelled"]);
        // The message body is the event as the feed serves it.
        let first = &messages[0];
        let served = app.read(&format!("/v1/events/{}", first.id)).await;
        assert_eq!(first.body, served);
        let ready: Value = app.client.get(app.url("/readyz")).send().await.unwrap().json().await.unwrap();
        assert_eq!(ready["checks"]["event_relay"]["status"], "up", "{ready}");
    }

    async fn with_nats_down_orders_go_on_and_every_event_is_relayed_once_it_is_back(app, nats, stream) {
        let mut nats = nats;
        app.create_product("EVT", 100, 100_000).await;
        place_orders(&app, 50).await;
        eventually(30, "the first events relayed", || async {
            (nats.count(&stream).await >= 50).then_some(())
        }).await;
        nats.stop();
        // Orders keep succeeding while NATS is away for 10 s; readiness says the relay is
        // degraded (still 200), with the lag growing.
        let started = std::time::Instant::now();
        let mut degraded = false;
        let mut lag: f64 = 0.0;
        while started.elapsed() < Duration::from_secs(10) {
            place_orders(&app, 16).await;
            let response = app.client.get(app.url("/readyz")).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let ready: Value = response.json().await.unwrap();
            degraded |= ready["checks"]["event_relay"]["status"] == "degraded"
                && ready["status"] == "degraded";
            lag = lag.max(ready["checks"]["event_relay"]["relay_lag_secs"].as_f64().unwrap_or(0.0));
        }
        assert!(degraded, "readiness never reported the relay degraded");
        assert!(lag > 5.0, "the relay's lag grew only to {lag} s");
        // The same figures are exported (sampled from the same query every second; in this
        // test process every app shares one metrics recorder, so the value is not compared).
        let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
        for series in ["events_relay_lag_seconds ", "events_relay_waiting ", "events_relay_failing "] {
            assert!(metrics.contains(series), "{series} is not exported");
        }
        nats.resume();
        assert_relayed_exactly_once(&app, &nats, &stream).await;
        eventually(15, "the relay to be up again", || async {
            let ready: Value = app.client.get(app.url("/readyz")).send().await.unwrap().json().await.unwrap();
            (ready["checks"]["event_relay"]["status"] == "up").then_some(())
        }).await;
    }

    async fn events_past_their_retention_are_pruned_only_once_relayed(app, nats, stream) {
        let mut nats = nats;
        // The product's event and 19 orders': 20 events.
        app.create_product("EVT", 100, 1_000).await;
        place_orders(&app, 19).await;
        eventually(30, "20 events relayed", || async {
            (nats.count(&stream).await == 20).then_some(())
        }).await;
        nats.stop();
        place_orders(&app, 10).await;
        let aged = "UPDATE events SET created_at = '2020-01-01T00:00:00.000000Z'";
        app.execute(aged, aged).await;
        let prune = || async {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            let cutoff = orderly_domain::now() - time::Duration::days(30);
            app.store.prune_events(cutoff, true, deadline).await.unwrap().rows
        };
        // The relay records its position a moment after the acknowledgements.
        eventually(30, "the relay's position recorded", || async {
            let relay = app.store.relay_state(orderly_storage::NATS_RELAY).await.unwrap();
            (relay.position == 20).then_some(())
        }).await;
        assert_eq!(prune().await, 20, "the relayed events go");
        assert_eq!(app.scalar("SELECT COUNT(*) FROM events").await, 10, "the others wait for the relay");
        nats.resume();
        eventually(30, "the rest relayed", || async {
            (nats.count(&stream).await == 30).then_some(())
        }).await;
        // The cursor may be recorded in steps (a batch acknowledged in part), so each pass may
        // prune some of the ten; together they prune all ten and no more.
        let mut pruned = 0;
        while pruned < 10 {
            pruned += eventually(30, "the relay's cursor to move", || async {
                Some(prune().await).filter(|rows| *rows > 0)
            })
            .await;
        }
        assert_eq!(pruned, 10);
        assert_eq!(app.scalar("SELECT COUNT(*) FROM events").await, 0);
    }
}

// After `relay_tests!`, which it uses.
mod feed;
