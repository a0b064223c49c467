//! Fleet-wide limits with three `orderly worker` processes on one PostgreSQL database, each
//! with four webhook slots: receivers that count the requests they hold at once see an
//! endpoint's limit and a queue's limit held across the processes, a kind's rate holds over
//! 20 s, a hanging endpoint delays neither another endpoint's deliveries nor the receipts, and
//! the slots of a worker killed with SIGKILL come back within one lease.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use reqwest::Method;

use super::*;
use crate::helpers::TestApp;

/// What a counting receiver saw.
#[derive(Default)]
struct Seen {
    holding: AtomicUsize,
    most: AtomicUsize,
    /// When each request arrived, and the order its event is about.
    arrivals: Mutex<Vec<(Instant, String)>>,
}

/// A webhook receiver holding each request `hold` before answering `204`, counting how many
/// it holds at once (across every endpoint pointed at it).
struct CountingReceiver {
    url: String,
    seen: Arc<Seen>,
}

/// Counts a held request out when its handler ends or is dropped (the sender hung up).
struct Holding(Arc<Seen>);

impl Drop for Holding {
    fn drop(&mut self) {
        self.0.holding.fetch_sub(1, Ordering::SeqCst);
    }
}

impl CountingReceiver {
    async fn start(hold: Duration) -> Self {
        let seen = Arc::new(Seen::default());
        let router = axum::Router::new()
            .route(
                "/{name}",
                axum::routing::post(
                    move |State(seen): State<Arc<Seen>>, body: axum::body::Bytes| async move {
                        let now = seen.holding.fetch_add(1, Ordering::SeqCst) + 1;
                        seen.most.fetch_max(now, Ordering::SeqCst);
                        let _holding = Holding(seen.clone());
                        let event: Value = serde_json::from_slice(&body).unwrap_or_default();
                        let order = event["data"]["order_id"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned();
                        seen.arrivals.lock().unwrap().push((Instant::now(), order));
                        tokio::time::sleep(hold).await;
                        StatusCode::NO_CONTENT
                    },
                ),
            )
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { url, seen }
    }

    fn most(&self) -> usize {
        self.seen.most.load(Ordering::SeqCst)
    }

    fn arrivals(&self) -> Vec<(Instant, String)> {
        self.seen.arrivals.lock().unwrap().clone()
    }

    async fn wait_for(&self, n: usize, seconds: u64) {
        eventually(seconds, &format!("{n} requests"), || async {
            (self.arrivals().len() >= n).then_some(())
        })
        .await;
    }
}

async fn endpoint(app: &TestApp, url: &str) -> String {
    let response = app
        .admin(Method::POST, "/v1/webhooks")
        .json(&json!({"url": url, "event_types": ["order.created"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Places `n` orders, one every 50 ms; returns each one's id and when it was acknowledged.
async fn place(app: &TestApp, n: usize) -> Vec<(String, Instant)> {
    let mut placed = Vec::with_capacity(n);
    for _ in 0..n {
        let response = app
            .place_order(json!([{"sku": "FLEET", "quantity": 1}]))
            .await;
        assert_eq!(response.status(), 201);
        let order: Value = response.json().await.unwrap();
        placed.push((order["id"].as_str().unwrap().to_owned(), Instant::now()));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    placed
}

/// Three workers on the app's database, four webhook slots each, with `extra` settings.
fn three_workers(app: &TestApp, extra: &[(&str, &str)]) -> Vec<WorkerProcess> {
    let mut settings = vec![
        ("ORDERLY_WEBHOOKS_ALLOW_PRIVATE", "true"),
        ("ORDERLY_WORKER__QUEUES__WEBHOOKS", "4"),
        ("ORDERLY_WEBHOOKS__TIMEOUT", "60s"),
    ];
    settings.extend_from_slice(extra);
    ["one", "two", "three"]
        .iter()
        .map(|name| WorkerProcess::start(&app.database_url, &app.dir, name, &settings))
        .collect()
}

/// Each order's delivery latency at `receiver`: from its acknowledgement to the request.
fn delivery_latencies(receiver: &CountingReceiver, placed: &[(String, Instant)]) -> Vec<Duration> {
    let arrivals = receiver.arrivals();
    placed
        .iter()
        .map(|(order, at)| {
            let (arrived, _) = arrivals
                .iter()
                .find(|(_, o)| o == order)
                .unwrap_or_else(|| panic!("order {order} was delivered"));
            arrived.duration_since(*at)
        })
        .collect()
}

/// The receipts' latencies (enqueued to completed) of the orders placed since `since`.
async fn receipt_latencies(app: &TestApp, orders: &[(String, Instant)]) -> Vec<Duration> {
    let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
    let keys: Vec<String> = orders
        .iter()
        .map(|(id, _)| kinds::SendReceipt::unique_key(id))
        .collect();
    let latencies = eventually(30, "every receipt sent", || async {
        let rows: Vec<f64> = sqlx::query_scalar(
            "SELECT EXTRACT(EPOCH FROM finished_at - created_at)::float8 FROM jobs \
             WHERE unique_key = ANY($1) AND state = 'completed'",
        )
        .bind(&keys)
        .fetch_all(&pool)
        .await
        .unwrap();
        (rows.len() == keys.len()).then_some(rows)
    })
    .await;
    pool.close().await;
    latencies.into_iter().map(Duration::from_secs_f64).collect()
}

/// The 90th percentile of `values`.
fn p90(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[(values.len() * 9 / 10).min(values.len() - 1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoints_limit_holds_across_three_workers_and_a_hanging_endpoint_delays_no_one() {
    let Some(app) = webhook_api("FLEET", 100_000).await else {
        return;
    };
    let busy = CountingReceiver::start(Duration::from_millis(300)).await;
    let quick = CountingReceiver::start(Duration::ZERO).await;
    endpoint(&app, &format!("{}/busy", busy.url)).await;
    endpoint(&app, &format!("{}/quick", quick.url)).await;
    let _workers = three_workers(&app, &[]);

    // Without a hang: the baseline.
    let before = place(&app, 30).await;
    busy.wait_for(30, 60).await;
    quick.wait_for(30, 30).await;
    assert_eq!(
        busy.most(),
        4,
        "four deliveries at once to one endpoint, not 4 per worker"
    );
    let (quick_before, receipts_before) = (
        p90(delivery_latencies(&quick, &before)),
        p90(receipt_latencies(&app, &before).await),
    );

    // An endpoint that never answers, with a backlog: it holds four slots of twelve.
    let hanging = CountingReceiver::start(Duration::from_secs(3_600)).await;
    endpoint(&app, &format!("{}/hanging", hanging.url)).await;
    let during = place(&app, 30).await;
    quick.wait_for(60, 30).await;
    let (quick_during, receipts_during) = (
        p90(delivery_latencies(&quick, &during)),
        p90(receipt_latencies(&app, &during).await),
    );
    println!(
        "p90 latency without / with a hanging endpoint: deliveries {quick_before:?} / \
         {quick_during:?}, receipts {receipts_before:?} / {receipts_during:?}"
    );
    assert_eq!(
        hanging.most(),
        4,
        "the hanging endpoint holds four slots, no more"
    );
    assert_eq!(hanging.arrivals().len(), 4);
    assert_eq!(busy.most(), 4);
    let allowed = |before: Duration| (before * 2).max(before + Duration::from_millis(300));
    assert!(
        quick_during <= allowed(quick_before),
        "deliveries: {quick_before:?} then {quick_during:?}"
    );
    assert!(
        receipts_during <= allowed(receipts_before),
        "receipts: {receipts_before:?} then {receipts_during:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queues_limit_holds_across_three_workers() {
    let Some(app) = webhook_api("FLEET", 100_000).await else {
        return;
    };
    // Two endpoints on one receiver: four each would make eight at once; the queue allows six.
    let receiver = CountingReceiver::start(Duration::from_millis(300)).await;
    endpoint(&app, &format!("{}/a", receiver.url)).await;
    endpoint(&app, &format!("{}/b", receiver.url)).await;
    let _workers = three_workers(&app, &[("ORDERLY_WORKER__LIMITS__QUEUES__WEBHOOKS", "6")]);
    place(&app, 20).await;
    receiver.wait_for(40, 60).await;
    assert_eq!(
        receiver.most(),
        6,
        "the queue's six at once, across three workers of four"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kinds_rate_holds_across_three_workers_over_twenty_seconds() {
    let Some((_db, url, store, dir)) = migrated(Backend::Postgres).await else {
        return;
    };
    let jobs: Vec<NewJob> = (0..1_500)
        .map(|_| NewJob::of::<kinds::Noop>(&kinds::NoopArgs::default()))
        .collect();
    store.queue().enqueue(&jobs).await.unwrap();
    let rate = [("ORDERLY_WORKER__LIMITS__KINDS__NOOP__RATE", "50/s")];
    let workers: Vec<WorkerProcess> = ["one", "two", "three"]
        .iter()
        .map(|name| WorkerProcess::start(&url, &dir, name, &rate))
        .collect();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let finished = || async {
        sqlx::query_scalar::<_, f64>(
            "SELECT EXTRACT(EPOCH FROM finished_at)::float8 FROM jobs WHERE state = 'completed' \
             ORDER BY finished_at",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    // From the first completion, twenty seconds (and one more for the last outcomes to land).
    let first = eventually(30, "the first job done", || async {
        finished().await.first().copied()
    })
    .await;
    let window_end = first + 20.0;
    eventually(40, "twenty-one seconds of work", || async {
        let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as f64 / 1e9;
        (now > window_end + 1.0).then_some(())
    })
    .await;
    let times = finished().await;
    let in_window = times.iter().filter(|t| **t < window_end).count();
    let per_second = in_window as f64 / 20.0;
    println!("noop at 50/s across three workers: {per_second:.1} jobs/s over 20 s");
    assert!((45.0..=55.0).contains(&per_second), "{per_second} jobs/s");
    drop(workers);
    pool.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_slots_of_a_worker_killed_mid_delivery_come_back_within_one_lease() {
    let Some(app) = webhook_api("FLEET", 100_000).await else {
        return;
    };
    let hanging = CountingReceiver::start(Duration::from_secs(3_600)).await;
    endpoint(&app, &format!("{}/hanging", hanging.url)).await;
    let lease = [
        ("ORDERLY_WEBHOOKS_ALLOW_PRIVATE", "true"),
        ("ORDERLY_WORKER__LEASE", "3s"),
        ("ORDERLY_WEBHOOKS__TIMEOUT", "60s"),
    ];
    let first = WorkerProcess::start(&app.database_url, &app.dir, "first", &lease);
    place(&app, 8).await;
    hanging.wait_for(4, 30).await;

    // Two more workers: they run the other endpoint's deliveries (a witness that they work),
    // and none of the hanging one's while the first holds its four slots.
    let witness = CountingReceiver::start(Duration::ZERO).await;
    endpoint(&app, &format!("{}/witness", witness.url)).await;
    let others: Vec<WorkerProcess> = ["second", "third"]
        .iter()
        .map(|name| WorkerProcess::start(&app.database_url, &app.dir, name, &lease))
        .collect();
    let witnessed = place(&app, 4).await;
    witness.wait_for(4, 30).await;
    assert_eq!(witness.arrivals().len(), witnessed.len());
    assert_eq!(
        hanging.arrivals().len(),
        4,
        "the slots are held: no fifth request"
    );

    first.signal("-KILL");
    let killed = Instant::now();
    hanging.wait_for(5, 30).await;
    let back = hanging.arrivals()[4].0.duration_since(killed);
    println!("the killed worker's slots came back after {back:?} (lease 3 s)");
    assert!(
        back <= Duration::from_millis(3_500),
        "back after {back:?}, the lease being 3 s"
    );
    hanging.wait_for(8, 30).await;
    drop(others);
}
