//! Replaying what an endpoint missed: every event since a time whose attempts to it all
//! failed (given up, or failed and waiting for a retry) is sent once more — a waiting retry
//! brought forward, not doubled — and none that had succeeded; asked twice, still once each.
//! Bad requests are refused clearly.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::*;

async fn replay(app: &TestApp, id: &str, body: Value) -> (StatusCode, Value) {
    let response = app
        .admin(Method::POST, &format!("/v1/webhooks/{id}/replay"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

backend_tests! {
    async fn a_replay_sends_each_missed_event_once_and_none_that_succeeded(app) {
        let Some(app) = app_with(app.backend, "1s", &[("ORDERLY_WEBHOOKS__BREAKER_FAILURES", "1000")]).await else { return };
        app.create_product("HOOK", 100, 100).await;
        let receiver = Receiver::start().await;
        let endpoint = create_endpoint(&app, &receiver.url, &["order.created"]).await;
        let id = endpoint["id"].as_str().unwrap();
        let since = OffsetDateTime::now_utc() - time::Duration::seconds(1);

        // A: delivered at once.
        order(&app).await;
        receiver.wait_for(1, 15).await;
        // B and C: refused twice each, given up after the schedule's one retry.
        receiver.script(vec![Reply::status(500); 4]);
        order(&app).await;
        order(&app).await;
        wait_for_attempts(&app, &endpoint, 5, 20).await;
        eventually(15, "B and C given up", || async {
            (app.scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'deliver_webhook' AND state = 'discarded'").await == 2).then_some(())
        }).await;
        // D: refused, with a retry an hour away.
        receiver.script([Reply {
            headers: vec![("retry-after", "3600".into())],
            ..Reply::status(503)
        }]);
        order(&app).await;
        wait_for_attempts(&app, &endpoint, 6, 15).await;
        eventually(10, "D waiting for its retry", || async {
            (app.scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'deliver_webhook' AND state = 'available'").await == 1).then_some(())
        }).await;
        assert_eq!(receiver.received().len(), 6);
        let before: Vec<String> = receiver.received().iter()
            .map(|r| r.headers["webhook-id"].to_str().unwrap().to_owned()).collect();
        let delivered_a = before[0].clone();

        // Refused requests change nothing.
        for (body, code) in [
            (json!({}), "required"),
            (json!({"since": "yesterday"}), "invalid_time"),
            (json!({"since": 1_700_000_000}), "invalid_type"),
            (json!({"since": "2999-01-01T00:00:00Z"}), "in_future"),
            (json!({"since": since.format(&Rfc3339).unwrap(), "from": "now"}), "unknown_field"),
        ] {
            let (status, problem) = replay(&app, id, body.clone()).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {problem}");
            assert_eq!(problem["errors"][0]["code"], code, "{body}: {problem}");
        }
        let (status, problem) = replay(&app, id, json!({"since": "2026-12-07T09:00:00\u{0}Z"})).await;
        assert!(status.is_client_error(), "a NUL in the time: {status} {problem}");
        let duplicated = app
            .admin(Method::POST, &format!("/v1/webhooks/{id}/replay"))
            .header("content-type", "application/json")
            .body(r#"{"since": "2026-01-01T00:00:00Z", "since": "2999-01-01T00:00:00Z"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(duplicated.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let (status, _) = replay(&app, &uuid::Uuid::now_v7().to_string(), json!({"since": since.format(&Rfc3339).unwrap()})).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(receiver.received().len(), 6, "nothing sent by a refused replay");

        // B and C given up, D waiting: three events, none of them A.
        let since_text = since.format(&Rfc3339).unwrap();
        let (status, replayed) = replay(&app, id, json!({"since": since_text})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{replayed}");
        assert_eq!(replayed["events"], 3, "{replayed}");
        assert_eq!(replayed["queued"], 2, "{replayed}");
        assert_eq!(replayed["brought_forward"], 1, "{replayed}");
        // Asked again at once: nothing is queued twice.
        let (status, again) = replay(&app, id, json!({"since": since_text})).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{again}");
        assert_eq!(again["queued"], 0, "{again}");

        deliveries_settled(&app).await;
        let received = receiver.received();
        let ok: Vec<&Received> = received.iter().skip(6).collect();
        let mut ids: Vec<String> = ok.iter().map(|r| r.headers["webhook-id"].to_str().unwrap().to_owned()).collect();
        ids.sort();
        let mut missed: Vec<String> = before[1..].to_vec();
        missed.sort();
        missed.dedup();
        assert_eq!(ids, missed, "each missed event (B, C, D) once more, by webhook-id");
        assert!(!ids.contains(&delivered_a), "A had succeeded: not sent again");

        // Everything has succeeded now: a replay finds nothing.
        let (_, after) = replay(&app, id, json!({"since": since_text})).await;
        assert_eq!(after["events"], 0, "{after}");
        assert_eq!(receiver.received().len(), received.len());
    }
}
