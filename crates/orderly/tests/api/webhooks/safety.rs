//! Webhook secrets and targets: a rotated secret signs beside the old one and a redelivery
//! resends the event; the SSRF guard refuses internal targets at creation and at delivery.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_signs_with_old_and_new_and_redelivery_resends_the_event() {
    let app = app_with(Backend::Sqlite, "1s", &[]).await.unwrap();
    app.create_product("HOOK", 100, 10).await;
    let receiver = Receiver::start().await;
    let endpoint = create_endpoint(&app, &receiver.url, &["order.created"]).await;
    let id = endpoint["id"].as_str().unwrap();
    let old = endpoint["secret"].as_str().unwrap();
    let rotated: Value = app
        .admin(Method::POST, &format!("/v1/webhooks/{id}/rotate-secret"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new = rotated["secret"].as_str().unwrap();
    assert_ne!(old, new);
    assert!(
        rotated["previous_secret_expires_at"].is_string(),
        "{rotated}"
    );

    order(&app).await;
    let got = receiver.wait_for(1, 30).await;
    verified(&got[0], old);
    verified(&got[0], new);

    let attempts = wait_for_attempts(&app, &endpoint, 1, 5).await;
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
    let got = receiver.wait_for(2, 30).await;
    assert_eq!(got[0].headers["webhook-id"], got[1].headers["webhook-id"]);
    assert_eq!(
        verified(&got[1], new),
        verified(&got[0], new),
        "the same event"
    );
    let missing = app
        .admin(
            Method::POST,
            &format!("/v1/webhooks/{id}/deliveries/999999/redeliver"),
        )
        .send()
        .await
        .unwrap();
    problem(missing, StatusCode::NOT_FOUND).await;
    app.assert_times_in_one_form().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ssrf_guard_refuses_internal_targets_at_creation_and_at_delivery() {
    // No allowance: the guard is on.
    let app = TestApp::spawn_with_worker(Backend::Sqlite, &[])
        .await
        .unwrap();
    for url in [
        "https://127.0.0.1/hook",
        "https://10.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://localhost/hook",
    ] {
        let response = app
            .admin(Method::POST, "/v1/webhooks")
            .json(&json!({"url": url, "event_types": ["order.created"]}))
            .send()
            .await
            .unwrap();
        let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(
            body["errors"][0]["code"], "forbidden_target",
            "{url}: {body}"
        );
    }
    let plain = app
        .admin(Method::POST, "/v1/webhooks")
        .json(&json!({"url": "http://hooks.example.com/", "event_types": ["order.created"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem(plain, StatusCode::UNPROCESSABLE_ENTITY).await["errors"][0]["code"],
        "https_required"
    );

    // Endpoints that got past creation (a DNS answer that changed later, say) are refused when
    // delivering: a name resolving to loopback, and a literal private address.
    let receiver = Receiver::start().await;
    let port = receiver
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    app.create_product("HOOK", 100, 10).await;
    let mut endpoints = Vec::new();
    for url in [
        format!("https://localhost:{port}/hook"),
        format!("https://127.0.0.1:{port}/hook"),
    ] {
        let endpoint = app
            .store
            .create_webhook(&orderly_storage::NewWebhook {
                url,
                description: String::new(),
                event_types: vec!["order.created".into()],
            })
            .await
            .unwrap();
        endpoints.push(json!({"id": endpoint.id.to_string()}));
    }
    order(&app).await;
    for endpoint in &endpoints {
        let attempts = wait_for_attempts(&app, endpoint, 1, 10).await;
        assert_eq!(attempts[0]["outcome"], "blocked", "{attempts:?}");
        assert!(
            attempts[0]["error"].as_str().unwrap().contains("loopback"),
            "{attempts:?}"
        );
    }
    assert!(
        receiver.received().is_empty(),
        "nothing reached the internal address"
    );
}
