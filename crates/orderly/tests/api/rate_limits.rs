//! Rate limits: each API key has its own bucket, sized by its role; clients without a valid
//! key are limited by address; past a bucket, `429 rate_limited` with `Retry-After` and the
//! `RateLimit` / `RateLimit-Policy` headers. With Redis every process shares each bucket;
//! without a reachable Redis each process limits on its own, and nothing fails.

use reqwest::Method;

use crate::helpers::{Backend, OwnRedis, StatusCode, TestApp, problem, redis_namespace, redis_url};

/// Status and the two rate-limit headers of `GET /v1/products` with `key` (or none).
async fn list(app: &TestApp, key: Option<&str>) -> (StatusCode, String, String) {
    let mut request = app.client.get(app.url("/v1/products"));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.unwrap();
    let header = |name| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let (state, policy) = (header("ratelimit"), header("ratelimit-policy"));
    (response.status(), state, policy)
}

const SMALL_STOREFRONT: [(&str, &str); 2] = [
    ("ORDERLY_RATE_LIMITS__STOREFRONT__RATE", "1"),
    ("ORDERLY_RATE_LIMITS__STOREFRONT__BURST", "3"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_past_its_burst_gets_429_with_retry_after_and_other_keys_do_not() {
    let app = TestApp::spawn_with(Backend::Sqlite, &SMALL_STOREFRONT)
        .await
        .unwrap();
    let key = app.storefront_key.clone();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let (status, state, policy) = list(&app, Some(&key)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(policy, r#""storefront";q=3;w=3"#);
        seen.push(state);
    }
    assert_eq!(
        seen,
        [
            r#""storefront";r=2;t=1"#,
            r#""storefront";r=1;t=2"#,
            r#""storefront";r=0;t=3"#
        ]
    );

    let response = app
        .storefront(Method::GET, "/v1/products")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(response.headers()["ratelimit"], r#""storefront";r=0;t=3"#);
    let body = problem(response, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(body["code"], "rate_limited");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("this API key may make 1 requests a second"),
        "{body}"
    );

    // The admin key has its own bucket, and health and metrics are never limited.
    let (status, _, policy) = list(&app, Some(&app.admin_key)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(policy, r#""admin";q=2000;w=2"#);
    for _ in 0..5 {
        for path in ["/healthz", "/readyz", "/metrics"] {
            let response = app.client.get(app.url(path)).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert!(response.headers().get("ratelimit").is_none(), "{path}");
        }
    }
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // At least this test's refusal: the in-process tests share one metrics recorder, and
    // others refuse storefront keys too (a test ran beside this one and made it 2).
    let refused: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix(r#"http_requests_rate_limited_total{policy="storefront"} "#))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(refused >= 1, "{metrics}");

    // A second later, one token has come back.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let (status, state, _) = list(&app, Some(&key)).await;
    assert_eq!(
        (status, state.as_str()),
        (StatusCode::OK, r#""storefront";r=0;t=3"#)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_without_a_valid_key_are_limited_by_address_and_valid_keys_are_not_held_back() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            ("ORDERLY_RATE_LIMITS__ANONYMOUS__RATE", "1"),
            ("ORDERLY_RATE_LIMITS__ANONYMOUS__BURST", "2"),
        ],
    )
    .await
    .unwrap();
    let (status, state, policy) = list(&app, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(policy, r#""anonymous";q=2;w=2"#);
    assert_eq!(state, r#""anonymous";r=1;t=1"#);
    let made_up = "oly_made_up_key_that_is_not_live_0000000000";
    assert_eq!(list(&app, Some(made_up)).await.0, StatusCode::UNAUTHORIZED);
    // The address's bucket is spent: without a key, or with a made-up one, 429.
    assert_eq!(list(&app, None).await.0, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        list(&app, Some(made_up)).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    let response = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    // A live key from the same address has its own bucket.
    assert_eq!(
        list(&app, Some(&app.storefront_key)).await.0,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_sharing_redis_share_each_bucket() {
    let Some(redis) = redis_url() else {
        return;
    };
    let namespace = redis_namespace();
    let mut settings = SMALL_STOREFRONT.to_vec();
    settings.extend([
        ("ORDERLY_REDIS_URL", redis.as_str()),
        ("ORDERLY_CACHE__REDIS_NAMESPACE", namespace.as_str()),
    ]);
    let first = TestApp::spawn_with(Backend::Sqlite, &settings)
        .await
        .unwrap();
    let second = TestApp::spawn_sharing(&first, &settings).await;
    let key = first.storefront_key.clone();
    let statuses = [
        list(&first, Some(&key)).await,
        list(&second, Some(&key)).await,
        list(&first, Some(&key)).await,
        list(&second, Some(&key)).await,
    ];
    let remaining: Vec<&str> = statuses
        .iter()
        .map(|(_, state, _)| state.as_str())
        .collect();
    assert_eq!(
        statuses[..3]
            .iter()
            .filter(|s| s.0 == StatusCode::OK)
            .count(),
        3
    );
    assert_eq!(
        statuses[3].0,
        StatusCode::TOO_MANY_REQUESTS,
        "{remaining:?}"
    );
    assert_eq!(
        remaining[..3],
        [
            r#""storefront";r=2;t=1"#,
            r#""storefront";r=1;t=2"#,
            r#""storefront";r=0;t=3"#
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_gone_each_process_limits_on_its_own_and_nothing_fails() {
    if redis_url().is_none() {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut redis = OwnRedis::start(port).await.expect("redis-server starts");
    let url = format!("redis://127.0.0.1:{port}");
    let mut settings = SMALL_STOREFRONT.to_vec();
    settings.extend([
        ("ORDERLY_REDIS_URL", url.as_str()),
        ("ORDERLY_CACHE__REDIS_TIMEOUT", "50ms"),
    ]);
    let app = TestApp::spawn_with(Backend::Sqlite, &settings)
        .await
        .unwrap();
    let key = app.storefront_key.clone();
    assert_eq!(list(&app, Some(&key)).await.0, StatusCode::OK);
    redis.stop();
    // The local bucket is full: three more, then 429; never a 5xx.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(list(&app, Some(&key)).await.0);
    }
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    // Redis back: a second after the failure the shared bucket (with one token taken, and
    // refilled since) decides again.
    let _redis = OwnRedis::start(port).await.expect("redis-server restarts");
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    let (status, state, _) = list(&app, Some(&key)).await;
    assert_eq!(status, StatusCode::OK, "{state}");
}
