//! A database that refuses connections: requests are refused at once while it does, and served
//! soon after it is back.

use super::*;

/// PostgreSQL stops under a running service (its port refuses connections, its connections
/// end). The first request finds out, within `database.acquire_timeout`; after it, requests
/// are answered `503 unavailable` at once instead of each waiting that long. When the
/// server is back, requests are served again within about
/// a probe interval (250 ms), with nothing restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_database_refuses_connections_requests_are_refused_at_once_and_served_soon_after_its_return()
 {
    let Some(direct) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let mut url = reqwest::Url::parse(&direct.database_url).unwrap();
    let target = SocketAddr::new(
        url.host_str().unwrap().parse().unwrap(),
        url.port().unwrap_or(5432),
    );
    let relay = StoppableRelay::to(target).await;
    url.set_port(Some(relay.address.port())).unwrap();
    let app = TestApp::spawn_on(
        &direct,
        url.as_str(),
        &[
            ("ORDERLY_DATABASE__ACQUIRE_TIMEOUT", "3s"),
            // The key stays verified while the database is away: this is about the database.
            ("ORDERLY_HTTP__AUTH_CACHE", "5m"),
        ],
    )
    .await;
    let read = || async {
        let sent = Instant::now();
        let response = app
            .storefront(
                Method::GET,
                "/v1/orders/01890000-0000-7000-8000-000000000000",
            )
            .send()
            .await
            .unwrap();
        (response, sent.elapsed())
    };
    let (warm, _) = read().await;
    assert_eq!(warm.status(), StatusCode::NOT_FOUND);

    relay.stop().await;
    let (first, took) = read().await;
    let body = problem(first, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(body["code"], "unavailable", "{body}");
    assert!(
        took < Duration::from_secs(5),
        "first answered after {took:?}"
    );
    // The probe confirms what the first request found (at once when its connection broke,
    // within a second when its wait for the pool timed out).
    eventually(5, "requests to be refused at once", || async {
        let (refused, took) = read().await;
        (refused.status() == StatusCode::SERVICE_UNAVAILABLE && took < Duration::from_millis(500))
            .then_some(())
    })
    .await;
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let (refused, took) = read().await;
        assert_eq!(refused.headers()["retry-after"], "1");
        let body = problem(refused, StatusCode::SERVICE_UNAVAILABLE).await;
        assert_eq!(body["code"], "unavailable", "{body}");
        slowest = slowest.max(took);
    }
    assert!(
        slowest < Duration::from_secs(1),
        "refused after {slowest:?}, not at once"
    );
    println!("while away: 20 requests refused, the slowest in {slowest:?}");

    relay.start().await;
    let back = Instant::now();
    eventually(5, "requests to be served again", || async {
        (read().await.0.status() == StatusCode::NOT_FOUND).then_some(())
    })
    .await;
    let took = back.elapsed();
    println!("served again {took:?} after the server was back");
    assert!(took < Duration::from_secs(3), "served again after {took:?}");
}
