//! Webhook deliveries that fail: an endpoint that answers `410 Gone` or fails for days is
//! disabled and the operators told; `Retry-After` replaces the scheduled wait; deliveries to
//! one endpoint are bounded and slow answers time out; a delivery given up and sent again by
//! hand gets a fresh schedule.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_disables_the_endpoint_at_once_and_tells_the_operators() {
    let app = app_with(
        Backend::Sqlite,
        "1s",
        &[("ORDERLY_MAIL_OPERATORS", "ops@shop.example")],
    )
    .await
    .unwrap();
    app.create_product("HOOK", 100, 10).await;
    let receiver = Receiver::start().await;
    receiver.script([Reply::status(410)]);
    let endpoint = create_endpoint(&app, &receiver.url, &["order.created"]).await;
    let id = endpoint["id"].as_str().unwrap();
    order(&app).await;

    let read = disabled(&app, id).await;
    assert!(
        read["disabled_reason"].as_str().unwrap().contains("410"),
        "{read}"
    );
    let notice = String::from_utf8(outbox_message(&app, "endpoint_disabled").await).unwrap();
    assert!(notice.contains("To: ops@shop.example"), "{notice}");
    assert!(notice.contains(&receiver.url), "{notice}");

    // A disabled endpoint gets nothing more, and no retry was made.
    order(&app).await;
    deliveries_settled(&app).await;
    assert_eq!(receiver.received().len(), 1);
    assert_eq!(deliveries(&app, &endpoint).await.len(), 1);

    // Enabled again, it receives new events.
    let enabled = app
        .admin(Method::PATCH, &format!("/v1/webhooks/{id}"))
        .json(&json!({"enabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(enabled.status(), StatusCode::OK);
    order(&app).await;
    receiver.wait_for(2, 30).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_failing_for_five_days_is_disabled_and_the_operators_told() {
    // Retries every second, failing each time: whichever failure is the first to be judged
    // after the clock is moved disables the endpoint, however slow the test runs.
    let app = app_with(
        Backend::Sqlite,
        "1s 1s 1s 1s 1s 1s 1s 1s",
        &[("ORDERLY_MAIL_OPERATORS", "ops@shop.example")],
    )
    .await
    .unwrap();
    app.create_product("HOOK", 100, 10).await;
    let receiver = Receiver::start().await;
    receiver.script(std::iter::repeat_with(|| Reply::status(500)).take(9));
    let endpoint = create_endpoint(&app, &receiver.url, &["order.created"]).await;
    let id = endpoint["id"].as_str().unwrap();
    // Failing, but for less than five days: retried, still enabled.
    order(&app).await;
    receiver.wait_for(1, 30).await;
    // The failure is recorded once the worker has the answer, a moment after the receiver
    // sent it.
    let read = eventually(10, "the failure recorded", || async {
        let read = read_endpoint(&app, id).await;
        read["failing_since"].is_string().then_some(read)
    })
    .await;
    assert_eq!(read["enabled"], true);
    // As if the first failure had been six days ago: the next failure disables it.
    app.execute(
        "UPDATE webhook_endpoints SET failing_since = strftime('%Y-%m-%dT%H:%M:%S.000000Z', 'now', '-6 days')",
        "",
    ).await;
    let before = receiver.received().len();
    let read = disabled(&app, id).await;
    assert!(
        read["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("no successful delivery"),
        "{read}"
    );
    let after = receiver.received().len();
    assert!(
        after <= before + 1,
        "disabled on the first failure after the five days: {before} attempts, then {after}"
    );
    let notice = String::from_utf8(outbox_message(&app, "endpoint_disabled").await).unwrap();
    assert!(notice.contains("no successful delivery"), "{notice}");
    app.assert_times_in_one_form().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_replaces_the_scheduled_wait() {
    // The schedule would wait about 30 s; the receiver asks for 2.
    let app = app_with(Backend::Sqlite, "30s", &[]).await.unwrap();
    app.create_product("HOOK", 100, 10).await;
    let receiver = Receiver::start().await;
    receiver.script([Reply {
        headers: vec![("retry-after", "2".into())],
        ..Reply::status(503)
    }]);
    create_endpoint(&app, &receiver.url, &["order.created"]).await;
    order(&app).await;

    let got = receiver.wait_for(2, 15).await;
    let gap = got[1].at - got[0].at;
    assert!(
        gap >= Duration::from_millis(1_900),
        "not before the receiver asked: {gap:?}"
    );
    assert!(
        gap < Duration::from_secs(10),
        "not on the 30 s schedule either: {gap:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_to_one_endpoint_are_bounded_and_slow_answers_time_out() {
    let app = app_with(
        Backend::Sqlite,
        "1s",
        &[
            ("ORDERLY_WEBHOOKS__PER_ENDPOINT_CONCURRENCY", "2"),
            ("ORDERLY_WEBHOOKS__TIMEOUT", "1s"),
        ],
    )
    .await
    .unwrap();
    app.create_product("HOOK", 100, 100).await;
    let busy = Receiver::start().await;
    // 10 deliveries, 2 at a time, 400 ms each: some wait past the 1 s a delivery waits for
    // a slot, and are put off without using up an attempt.
    *busy.state.delay.lock().unwrap() = Duration::from_millis(400);
    create_endpoint(&app, &busy.url, &["order.created"]).await;
    for _ in 0..10 {
        order(&app).await;
    }
    busy.wait_for(10, 30).await;
    let most = busy.state.max_in_flight.load(Ordering::SeqCst);
    assert!(
        most <= 2,
        "at most 2 deliveries at once to one endpoint, saw {most}"
    );
    assert_eq!(most, 2, "deliveries to one endpoint do run side by side");
    let counted = "SELECT MAX(attempt) FROM jobs WHERE kind = 'deliver_webhook'";
    assert_eq!(
        app.scalar(counted).await,
        1,
        "waiting for a slot is not an attempt"
    );

    let slow = Receiver::start().await;
    slow.script([Reply {
        delay: Duration::from_secs(5),
        ..Reply::status(200)
    }]);
    let endpoint = create_endpoint(&app, &slow.url, &["order.paid"]).await;
    let id = order(&app).await;
    app.admin(Method::POST, &format!("/v1/orders/{id}/pay"))
        .send()
        .await
        .unwrap();
    let attempts = wait_for_attempts(&app, &endpoint, 1, 10).await;
    let first = attempts.last().unwrap();
    assert_eq!(first["outcome"], "failed", "{first}");
    assert!(
        first["error"].as_str().unwrap().contains("timed out"),
        "{first}"
    );
    assert!(first["latency_ms"].as_i64().unwrap() < 3_000, "{first}");
    // The retry gets the default answer and succeeds.
    let attempts = wait_for_attempts(&app, &endpoint, 2, 10).await;
    assert_eq!(attempts[0]["outcome"], "succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_given_up_and_sent_again_by_hand_gets_a_fresh_schedule() {
    // One retry, then the delivery is given up.
    let app = app_with(Backend::Sqlite, "1s", &[]).await.unwrap();
    app.create_product("HOOK", 100, 10).await;
    let receiver = Receiver::start().await;
    receiver.script([500, 500, 500].map(Reply::status));
    let endpoint = create_endpoint(&app, &receiver.url, &["order.created"]).await;
    let id = endpoint["id"].as_str().unwrap();
    order(&app).await;
    let given_up =
        "SELECT COUNT(*) FROM jobs WHERE kind = 'deliver_webhook' AND state = 'discarded'";
    eventually(10, "the delivery given up", || async {
        (app.scalar(given_up).await == 1).then_some(())
    })
    .await;
    assert_eq!(receiver.received().len(), 2);

    let attempts = deliveries(&app, &endpoint).await;
    let attempt_id = attempts[0]["id"].as_i64().unwrap();
    let again = app
        .admin(
            Method::POST,
            &format!("/v1/webhooks/{id}/deliveries/{attempt_id}/redeliver"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    // The third attempt fails too, and is retried: the schedule starts again.
    let attempts = wait_for_attempts(&app, &endpoint, 4, 10).await;
    let outcomes: Vec<(i64, &str)> = attempts
        .iter()
        .map(|a| {
            (
                a["attempt"].as_i64().unwrap(),
                a["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            (4, "succeeded"),
            (3, "failed"),
            (2, "failed"),
            (1, "failed")
        ]
    );
}
