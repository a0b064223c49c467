//! The product cache: read-after-write, single-flight under a stampede, TTL and negative
//! caching, two processes sharing Redis, and reads surviving Redis going away.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, OwnRedis, StatusCode, TestApp, backend_tests, eventually,
    redis_namespace as namespace, redis_url,
};

async fn read(app: &TestApp, path: &str) -> (StatusCode, Value) {
    let response = app.storefront(Method::GET, path).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn loads(app: &TestApp) -> u64 {
    app.cache
        .as_ref()
        .unwrap()
        .stats()
        .loads
        .load(Ordering::Relaxed)
}

async fn stampede(app: TestApp) {
    let product = app.create_product("HOT-KEY", 100, 5).await;
    let path = format!("/v1/products/{}", product["id"].as_str().unwrap());
    // Let the creation's repeated invalidation pass first: it would empty the cache mid-burst.
    app.cache.as_ref().unwrap().settled().await;
    let before = loads(&app);
    let app = Arc::new(app);
    let mut reads = Vec::new();
    for _ in 0..1_000 {
        let (app, path) = (app.clone(), path.clone());
        reads.push(tokio::spawn(async move { read(&app, &path).await.0 }));
    }
    for status in reads {
        assert_eq!(status.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(
        loads(&app) - before,
        1,
        "one database query for a burst of 1,000 cold reads"
    );
}

backend_tests! {
    async fn a_write_is_visible_at_once_to_the_process_that_made_it(app) {
        let product = app.create_product("RAW-1", 100, 10).await;
        let id = product["id"].as_str().unwrap();
        let by_id = format!("/v1/products/{id}");
        assert_eq!(read(&app, &by_id).await.1["price"], 100);
        assert_eq!(read(&app, "/v1/products/by-sku/RAW-1").await.1["price"], 100);
        let patch = app.admin(Method::PATCH, &by_id).json(&json!({"price": 250, "sku": "RAW-2"})).send().await.unwrap();
        assert_eq!(patch.status(), StatusCode::OK);
        assert_eq!(read(&app, &by_id).await.1["price"], 250);
        assert_eq!(read(&app, "/v1/products/by-sku/RAW-2").await.1["price"], 250);
        assert_eq!(read(&app, "/v1/products/by-sku/RAW-1").await.0, StatusCode::NOT_FOUND, "the old sku no longer finds it");

        // Orders and cancellations change stock; readers see it at once.
        let order: Value = app.place_order(json!([{"sku": "RAW-2", "quantity": 4}])).await.json().await.unwrap();
        assert_eq!(read(&app, &by_id).await.1["stock"], 6);
        let cancel = app.admin(Method::POST, &format!("/v1/orders/{}/cancel", order["id"].as_str().unwrap())).send().await.unwrap();
        assert_eq!(cancel.status(), StatusCode::OK);
        assert_eq!(read(&app, &by_id).await.1["stock"], 10);
        let archive = app.admin(Method::POST, &format!("{by_id}/archive")).send().await.unwrap();
        assert_eq!(archive.status(), StatusCode::OK);
        assert_eq!(read(&app, &by_id).await.1["active"], false);
        let etag = app.storefront(Method::GET, &by_id).send().await.unwrap().headers()["etag"].clone();
        assert_eq!(etag, "\"5\"", "the cached ETag follows the version (create, patch, order, cancel, archive)");
        app.assert_times_in_one_form().await;
    }

    async fn a_thousand_concurrent_cold_reads_make_one_database_query(app) {
        stampede(app).await;
    }

    async fn not_found_is_cached_briefly_and_dropped_when_the_product_appears(app) {
        assert_eq!(read(&app, "/v1/products/by-sku/LATER").await.0, StatusCode::NOT_FOUND);
        let before = loads(&app);
        assert_eq!(read(&app, "/v1/products/by-sku/LATER").await.0, StatusCode::NOT_FOUND);
        assert_eq!(loads(&app), before, "the miss itself was cached");
        app.create_product("LATER", 100, 1).await;
        assert_eq!(read(&app, "/v1/products/by-sku/LATER").await.0, StatusCode::OK);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_expire_after_their_ttl() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            ("ORDERLY_CACHE__TTL", "1s"),
            ("ORDERLY_CACHE__NEGATIVE_TTL", "1s"),
        ],
    )
    .await
    .unwrap();
    let product = app.create_product("TTL", 100, 1).await;
    let path = format!("/v1/products/{}", product["id"].as_str().unwrap());
    read(&app, &path).await;
    let warm = loads(&app);
    read(&app, &path).await;
    assert_eq!(loads(&app), warm, "a hit within the TTL");
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    read(&app, &path).await;
    assert_eq!(loads(&app), warm + 1, "a load after the TTL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_a_burst_of_cold_reads_still_makes_one_query() {
    let Some(redis) = redis_url() else { return };
    let ns = namespace();
    // The burst tests the single flight, not the Redis tier's patience: on a loaded machine a
    // Redis answer can take longer than the 50 ms default, and a read whose local copy expired
    // (after a second with Redis) would then go to the database, a second load (seen in CI).
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            ("ORDERLY_REDIS_URL", &redis),
            ("ORDERLY_CACHE__REDIS_NAMESPACE", &ns),
            ("ORDERLY_CACHE__REDIS_TIMEOUT", "2s"),
        ],
    )
    .await
    .unwrap();
    stampede(app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_sharing_redis_sees_a_write_within_a_second() {
    let Some(redis) = redis_url() else { return };
    let ns = namespace();
    let settings = [
        ("ORDERLY_REDIS_URL", redis.as_str()),
        ("ORDERLY_CACHE__REDIS_NAMESPACE", ns.as_str()),
    ];
    let Some(a) = TestApp::spawn_with(Backend::Postgres, &settings).await else {
        return;
    };
    let b = TestApp::spawn_sharing(&a, &settings).await;
    let product = a.create_product("SHARED", 100, 10).await;
    let path = format!("/v1/products/{}", product["id"].as_str().unwrap());
    assert_eq!(read(&a, &path).await.1["price"], 100);
    assert_eq!(read(&b, &path).await.1["price"], 100);
    assert_eq!(read(&b, "/v1/products/by-sku/SHARED").await.1["price"], 100);
    let b_hits = b
        .cache
        .as_ref()
        .unwrap()
        .stats()
        .redis_hits
        .load(Ordering::Relaxed)
        + b.cache
            .as_ref()
            .unwrap()
            .stats()
            .local_hits
            .load(Ordering::Relaxed);
    assert!(b_hits >= 1, "the second process read through the cache");

    let patch = a
        .admin(Method::PATCH, &path)
        .json(&json!({"price": 300}))
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), StatusCode::OK);
    let written = Instant::now();
    assert_eq!(
        read(&a, &path).await.1["price"],
        300,
        "the writer never serves the old value"
    );
    eventually(2, "the second process to see the write", || async {
        (read(&b, &path).await.1["price"] == 300).then_some(())
    })
    .await;
    let seen_after = written.elapsed();
    assert!(
        seen_after <= Duration::from_secs(1),
        "stale for {seen_after:?}"
    );
    assert_eq!(read(&b, "/v1/products/by-sku/SHARED").await.1["price"], 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_never_fail_while_redis_goes_away_and_hits_resume_when_it_returns() {
    if redis_url().is_none() {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let Some(mut redis) = OwnRedis::start(port).await else {
        panic!("redis-server could not be started");
    };
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let app = Arc::new(
        TestApp::spawn_with(
            Backend::Sqlite,
            &[
                ("ORDERLY_REDIS_URL", &url),
                ("ORDERLY_CACHE__REDIS_TIMEOUT", "50ms"),
            ],
        )
        .await
        .unwrap(),
    );
    let product = app.create_product("FAILOVER", 100, 1).await;
    let path = format!("/v1/products/{}", product["id"].as_str().unwrap());
    let stats = || app.cache.as_ref().unwrap().stats();
    read(&app, &path).await;

    // A steady read load for the whole test.
    let load = steady_reads(app.clone(), path.clone(), Duration::from_secs(5));
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    redis.stop();
    let ready: Value = eventually(5, "readiness to report the cache degraded", || async {
        let ready = readiness(&app).await?;
        (ready["checks"]["cache"]["status"] == "degraded").then_some(ready)
    })
    .await;
    assert_eq!(ready["status"], "degraded");
    let response = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "a degraded cache does not make the service unready"
    );
    tokio::time::sleep(Duration::from_millis(1_000)).await;

    let _restarted = OwnRedis::start(port).await.unwrap();
    let (ok, failed) = load.await.unwrap();
    assert_eq!(failed, 0, "no read failed ({ok} succeeded)");
    assert!(
        stats().redis_errors.load(Ordering::Relaxed)
            + stats().redis_fallbacks.load(Ordering::Relaxed)
            > 0
    );
    let hits_before = stats().redis_hits.load(Ordering::Relaxed);
    eventually(10, "reads to hit Redis again", || async {
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        read(&app, &path).await;
        (stats().redis_hits.load(Ordering::Relaxed) > hits_before).then_some(())
    })
    .await;
    let ready = readiness(&app).await.unwrap();
    assert_eq!(ready["checks"]["cache"]["status"], "up");
}

/// Reads `path` every 2 ms for `duration`: how many reads succeeded, and how many failed.
fn steady_reads(
    app: Arc<TestApp>,
    path: String,
    duration: Duration,
) -> tokio::task::JoinHandle<(u32, u32)> {
    tokio::spawn(async move {
        let (mut ok, mut failed) = (0u32, 0u32);
        let until = Instant::now() + duration;
        while Instant::now() < until {
            match read(&app, &path).await.0 {
                StatusCode::OK => ok += 1,
                _ => failed += 1,
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        (ok, failed)
    })
}

/// The body of `/readyz`, if it answered.
async fn readiness(app: &TestApp) -> Option<Value> {
    app.client
        .get(app.url("/readyz"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()
}
