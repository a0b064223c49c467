//! The relay as a process concern: it survives its worker killed (another takes the lease and
//! relays every event once), and readiness notices a relay that is not running.

use super::*;

/// Whether `worker` holds the events lease, by the last change it logged.
fn leads(worker: &WorkerProcess) -> bool {
    worker
        .log_lines()
        .iter()
        .rev()
        .find(|l| l["message"] == "events sequencer and relay lease")
        .is_some_and(|l| l["leading"] == true)
}

/// Two worker processes relay while orders arrive; the one relaying is SIGKILLed every few
/// hundred events and replaced. One relays at a time, the other takes over within the lease
/// (5 s), and every event is on the stream once.
async fn relay_survives_its_worker_killed(backend: Backend) {
    let nats = Nats::start();
    let stream = format!("TEST_{}", Uuid::new_v4().simple());
    let url = nats.url();
    let Some(app) = TestApp::spawn_with(backend, &relay_settings(&url, &stream)).await else {
        return;
    };
    let app = Arc::new(app);
    app.create_product("EVT", 100, 1_000_000).await;
    let relay_env = [
        ("ORDERLY_EVENTS__NATS_URL", url.as_str()),
        ("ORDERLY_EVENTS__STREAM", stream.as_str()),
    ];
    let start = |name: &str| WorkerProcess::start(&app.database_url, &app.dir, name, &relay_env);
    let mut workers = [start("a"), start("b")];
    let loading = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let load = {
        let (app, loading) = (app.clone(), loading.clone());
        tokio::spawn(async move {
            while loading.load(std::sync::atomic::Ordering::Relaxed) {
                place_orders(&app, 16).await;
            }
        })
    };
    let mut relayed = 0;
    for round in 0..3 {
        relayed = eventually(30, "a few hundred more events relayed", || async {
            let now = nats.count(&stream).await;
            (now >= relayed + 200).then_some(now)
        })
        .await;
        let leaders: Vec<usize> = (0..workers.len()).filter(|&n| leads(&workers[n])).collect();
        assert_eq!(
            leaders.len(),
            1,
            "round {round}: one worker relays at a time"
        );
        let killed = leaders[0];
        workers[killed].signal("-KILL");
        let killed_at = std::time::Instant::now();
        let survivor = 1 - killed;
        eventually(15, "the other worker to take over", || async {
            leads(&workers[survivor]).then_some(())
        })
        .await;
        let took = killed_at.elapsed();
        assert!(
            took < Duration::from_secs(8),
            "round {round}: took over after {took:?}"
        );
        workers[killed] = start(&format!("replacement-{round}"));
    }
    loading.store(false, std::sync::atomic::Ordering::Relaxed);
    load.await.unwrap();
    assert_relayed_exactly_once(&app, &nats, &stream).await;
}

orderly_testing::on_both_backends! {
    async fn relay_survives_its_worker_killed(backend) {
        relay_survives_its_worker_killed(backend).await;
    }
}

/// With the relay configured but no worker running it, readiness says so once the oldest
/// event waits longer than `events.lag_threshold`.
async fn readiness_notices_a_relay_that_is_not_running(backend: Backend) {
    let nats = Nats::start();
    let url = nats.url();
    let Some(app) = TestApp::spawn_with(backend, &relay_settings(&url, "UNUSED")).await else {
        return;
    };
    let relay_status = || async {
        let ready: Value = app
            .client
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_ne!(ready["status"], "unavailable", "{ready}");
        ready["checks"]["event_relay"].clone()
    };
    assert_eq!(
        relay_status().await["status"],
        "up",
        "no events, nothing waits"
    );
    app.create_product("EVT", 100, 10).await;
    assert_eq!(
        app.place_order(json!([{"sku": "EVT", "quantity": 1}]))
            .await
            .status(),
        StatusCode::CREATED
    );
    let aged = "UPDATE events SET created_at = '2020-01-01T00:00:00.000000Z'";
    app.execute(aged, aged).await;
    let check = relay_status().await;
    assert_eq!(check["status"], "degraded", "{check}");
    assert!(
        check["error"].as_str().unwrap().contains("not yet relayed"),
        "{check}"
    );
}

orderly_testing::on_both_backends! {
    async fn readiness_notices_a_relay_that_is_not_running(backend) {
        readiness_notices_a_relay_that_is_not_running(backend).await;
    }
}
