//! The console's pages at work: jobs found by their error and retried together, orders
//! found by status, date and id, an endpoint enabled and its rotated secret shown once, its
//! open breaker shown and its missed events replayed, a running job asked to stop; and
//! the limits' use and the last hour's charts; the console disabled, or a request it refuses.

use super::*;

backend_tests! {
    async fn jobs_are_found_by_their_error_and_the_matching_discarded_ones_retried_together(app) {
        let jobs: Vec<orderly_queue::NewJob> = (0..5)
            .map(|_| orderly_queue::NewJob::named("noop", json!({})))
            .collect();
        let ids = app.store.queue().enqueue(&jobs).await.unwrap();
        assert_eq!(ids.len(), 5);
        app.execute(
            "UPDATE jobs SET state = 'discarded', attempt = 3, finished_at = created_at, \
             last_error = CASE WHEN id % 2 = 0 THEN 'SMTP: 50% of the time it says Timed Out' \
             ELSE 'the printer is on fire' END",
            "UPDATE jobs SET state = 'discarded', attempt = 3, finished_at = created_at, \
             last_error = CASE WHEN id % 2 = 0 THEN 'SMTP: 50% of the time it says Timed Out' \
             ELSE 'the printer is on fire' END",
        ).await;
        let timed_out = ids.iter().filter(|id| *id % 2 == 0).count();
        let mut browser = Browser::new(&app);
        browser.sign_in(&app.admin_key.clone(), &[]).await;
        // The text is found whatever its case, and a `%` in it is only a `%`.
        let (_, page, _) = browser.get("/console/jobs?state=discarded&error=50%25+of+the+time+it+says+timed").await;
        assert_eq!(page.matches("Timed Out</td>").count(), timed_out, "{page}");
        let (_, page, _) = browser.get("/console/jobs?state=discarded&error=5%25%25").await;
        assert!(!page.contains("Timed Out</td>"), "`%%` is not a wildcard");

        let token = browser.csrf("/console/jobs?state=discarded").await;
        let retried = browser.post("/console/jobs/retry-discarded?error=timed+out", &[("csrf", &token)]).await;
        assert_eq!(retried.status(), StatusCode::SEE_OTHER);
        let location = retried.headers()[header::LOCATION].to_str().unwrap().to_owned();
        assert!(location.ends_with(&format!("&n={timed_out}&notice=jobs_retried")), "{location}");
        let (_, page, _) = browser.get(&location).await;
        assert!(page.contains(&format!("{timed_out} discarded jobs are queued again.")), "{page}");
        assert_eq!(app.scalar("SELECT COUNT(*) FROM jobs WHERE state = 'available' AND attempt = 0").await as usize, timed_out);
        assert_eq!(app.scalar("SELECT COUNT(*) FROM jobs WHERE state = 'discarded'").await as usize, 5 - timed_out, "the others stay discarded");
        let detail = app.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'job.retry_discarded' AND detail LIKE '% jobs; kind any, queue any, error contains \"timed out\"'").await;
        assert_eq!(detail, 1, "the audit log says what was retried");
    }

    async fn orders_are_found_by_status_date_and_id(app) {
        let first = place_order(&app, "FIND").await;
        let second: Value = app.place_order(json!([{"sku": "FIND", "quantity": 2}])).await.json().await.unwrap();
        let second = second["id"].as_str().unwrap().to_owned();
        app.admin(Method::POST, &format!("/v1/orders/{second}/pay")).send().await.unwrap();
        let mut browser = Browser::new(&app);
        browser.sign_in(&app.admin_key.clone(), &[]).await;

        let (_, page, _) = browser.get("/console/orders").await;
        let (at_second, at_first) = (page.find(&second).unwrap(), page.find(&first).unwrap());
        assert!(at_second < at_first, "newest first");
        let (_, paid, _) = browser.get("/console/orders?status=paid").await;
        assert!(paid.contains(&second) && !paid.contains(&first), "{paid}");
        let today = time::OffsetDateTime::now_utc().date();
        let (_, in_range, _) = browser.get(&format!("/console/orders?from={today}&to={today}")).await;
        assert!(in_range.contains(&first) && in_range.contains(&second));
        let tomorrow = today.next_day().unwrap();
        let (_, later, _) = browser.get(&format!("/console/orders?from={tomorrow}")).await;
        assert!(!later.contains(&first) && later.contains("No order matches."));
        let (status, bad, _) = browser.get("/console/orders?from=yesterday").await;
        assert_eq!(status, StatusCode::OK);
        assert!(bad.contains("is not a date like 2026-12-03"), "{bad}");
        // An id goes straight to its order; an unknown one is a 404 page.
        let (status, _, location) = browser.get(&format!("/console/orders?id={first}")).await;
        assert_eq!((status, location.as_deref()), (StatusCode::SEE_OTHER, Some(format!("/console/orders/{first}").as_str())));
        let (status, page, _) = browser.get("/console/orders/0193a1b2-0000-7000-8000-000000000001").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(page.contains("404"), "{page}");

        // Bad input is a 4xx page, never a 5xx: a NUL (which PostgreSQL cannot take), a
        // cursor that is no number, a form that is not one.
        for path in ["/console/orders?email=a%00b", "/console/jobs?before=soon", "/console/jobs?state=asleep"] {
            let response = browser.request(Method::GET, path).send().await.unwrap();
            assert!(response.status().is_client_error(), "{path}: {}", response.status());
            assert!(response.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"), "{path}");
        }
        let not_a_form = browser.request(Method::POST, &format!("/console/orders/{first}/cancel"))
            .header(header::CONTENT_TYPE, "application/json").body("{}").send().await.unwrap();
        assert_eq!(not_a_form.status(), StatusCode::BAD_REQUEST);
        assert_eq!(app.read(&format!("/v1/orders/{first}")).await["status"], "pending");
    }

    async fn a_disabled_endpoint_is_enabled_and_a_rotated_secret_shown_once(app) {
        let endpoint: Value = app.admin(Method::POST, "/v1/webhooks")
            .json(&json!({"url": "https://hooks.example.com/orderly", "event_types": ["order.created"]}))
            .send().await.unwrap().json().await.unwrap();
        let id = endpoint["id"].as_str().unwrap().to_owned();
        let old_secret = endpoint["secret"].as_str().unwrap().to_owned();
        app.admin(Method::POST, &format!("/v1/webhooks/{id}/disable")).send().await.unwrap();
        let mut browser = Browser::new(&app);
        browser.sign_in(&app.admin_key.clone(), &[]).await;
        let path = format!("/console/webhooks/{id}");
        let (_, page, _) = browser.get(&path).await;
        assert!(page.contains(">disabled<") && !page.contains(&old_secret), "no secret on the page");
        let token = browser.csrf(&path).await;

        let enabled = browser.post(&format!("{path}/enable"), &[("csrf", &token)]).await;
        assert_eq!(enabled.status(), StatusCode::SEE_OTHER);
        assert_eq!(app.read(&format!("/v1/webhooks/{id}")).await["enabled"], true);

        let rotated = browser.post(&format!("{path}/rotate-secret"), &[("csrf", &token)]).await;
        assert_eq!(rotated.status(), StatusCode::OK);
        assert_eq!(rotated.headers()[header::CACHE_CONTROL], "no-store");
        let shown = rotated.text().await.unwrap();
        let at = shown.find("id=\"new-secret\">").expect("the new secret is shown") + 16;
        let secret = &shown[at..at + shown[at..].find('<').unwrap()];
        assert!(secret.starts_with("whsec_") && secret != old_secret, "{secret}");
        let (_, again, _) = browser.get(&path).await;
        assert!(!again.contains(secret) && !again.contains("new-secret"), "shown once only");
        let audit = app.scalar("SELECT COUNT(*) FROM audit_log WHERE action IN ('webhook.enable', 'webhook.rotate_secret')").await;
        assert_eq!(audit, 2);
    }

    async fn an_open_breaker_is_shown_missed_events_replayed_and_a_running_job_asked_to_stop(app) {
        let endpoint: Value = app.admin(Method::POST, "/v1/webhooks")
            .json(&json!({"url": "https://hooks.example.com/orderly", "event_types": ["order.created"]}))
            .send().await.unwrap().json().await.unwrap();
        let id = endpoint["id"].as_str().unwrap().to_owned();
        app.execute(
            "UPDATE webhook_endpoints SET breaker_state = 'open', consecutive_failures = 7, \
             breaker_opened_at = created_at, breaker_probe_at = '2999-01-01T00:00:00.000000Z'",
            "UPDATE webhook_endpoints SET breaker_state = 'open', consecutive_failures = 7, \
             breaker_opened_at = created_at, breaker_probe_at = '2999-01-01T00:00:00Z'",
        ).await;
        let mut browser = Browser::new(&app);
        browser.sign_in(&app.admin_key.clone(), &[]).await;
        let (_, list, _) = browser.get("/console/webhooks").await;
        assert!(list.contains("breaker open"), "{list}");
        let path = format!("/console/webhooks/{id}");
        let (_, page, _) = browser.get(&path).await;
        assert!(page.contains("id=\"breaker-state\">open<") && page.contains("7 failures in a row"), "{page}");

        // Replayed from the page: nothing was missed here, and the answer says so.
        let token = browser.csrf(&path).await;
        let replayed = browser.post(&format!("{path}/replay"), &[("csrf", &token), ("hours", "24")]).await;
        assert_eq!(replayed.status(), StatusCode::SEE_OTHER);
        let location = replayed.headers()[header::LOCATION].to_str().unwrap().to_owned();
        let (_, page, _) = browser.get(&location).await;
        assert!(page.contains("0 missed events will be sent again"), "{page}");
        assert_eq!(app.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'webhook.replay'").await, 1);
        // A period not offered, or no CSRF token, is refused.
        let odd = browser.post(&format!("{path}/replay"), &[("csrf", &token), ("hours", "100000")]).await;
        assert_eq!(odd.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let forged = browser.post(&format!("{path}/replay"), &[("hours", "24")]).await;
        assert_eq!(forged.status(), StatusCode::FORBIDDEN);

        // A job running elsewhere: the console asks it to stop and says so.
        let job = app.store.queue().enqueue(&[orderly_queue::NewJob::named("noop", json!({}))]).await.unwrap()[0];
        app.execute(
            "UPDATE jobs SET state = 'running', attempt = 1, locked_by = 'elsewhere', locked_until = '2999-01-01T00:00:00.000000Z'",
            "UPDATE jobs SET state = 'running', attempt = 1, locked_by = 'elsewhere', locked_until = '2999-01-01T00:00:00Z'",
        ).await;
        let job_path = format!("/console/jobs/{job}");
        let token = browser.csrf(&job_path).await;
        let asked = browser.post(&format!("{job_path}/cancel"), &[("csrf", &token)]).await;
        assert_eq!(asked.status(), StatusCode::SEE_OTHER);
        let location = asked.headers()[header::LOCATION].to_str().unwrap().to_owned();
        assert!(location.ends_with("notice=job_cancel_requested"), "{location}");
        let (_, page, _) = browser.get(&location).await;
        assert!(page.contains("its worker has been asked to stop it") && page.contains("id=\"cancel-requested\""), "{page}");
        assert!(!page.contains(">Cancel</button>"), "asked once: no second button");
        assert_eq!(app.read(&format!("/v1/jobs/{job}")).await["state"], "running");
    }

    async fn the_queues_page_shows_each_limits_use_and_charts_the_last_hour(app) {
        // Six deliveries to one endpoint, four of them running: its limit is full, two wait.
        let endpoint = uuid::Uuid::now_v7();
        let jobs: Vec<orderly_queue::NewJob> = (0..6)
            .map(|_| orderly_queue::NewJob::named("deliver_webhook", json!({})).partition(endpoint))
            .collect();
        app.store.queue().enqueue(&jobs).await.unwrap();
        let lease = orderly_domain::now() + time::Duration::minutes(1);
        assert_eq!(app.store.queue().fetch_jobs("webhooks", "test-worker", 4, lease).await.unwrap().len(), 4);
        // What the activity sampler would have written this minute.
        let queue = app.store.queue();
        queue.record_activity(&[("waiting:default".to_owned(), 7.0)]).await.unwrap();
        queue.set_activity("orders", orderly_queue::activity::minute_start(orderly_domain::now()), 12.0).await.unwrap();

        let mut browser = Browser::new(&app);
        browser.sign_in(&app.admin_key.clone(), &[]).await;
        let (_, page, _) = browser.get("/console/queues").await;
        let row = page.split(r#"data-limit="partition:deliver_webhook""#).nth(1).expect("the endpoint limit's row");
        let row = &row[..row.find("</tr>").unwrap()];
        assert!(row.contains(r#"aria-label="4 of 4""#), "the gauge shows four of four: {row}");
        assert!(row.contains(r#"<td class="num waiting">2</td>"#), "two wait: {row}");
        // The waiting series ends at this minute's seven, the top of its scale (10): y = 104 × 0.3.
        let chart = page.split(r#"data-chart="Queue default: jobs a minute""#).nth(1).expect("the default queue's chart");
        let waiting = chart.split(r#"data-series="waiting""#).nth(1).unwrap();
        let points = waiting.split("points=\"").nth(1).unwrap().split('"').next().unwrap();
        assert!(points.ends_with("600.0,31.2"), "{points}");

        let (_, overview, _) = browser.get("/console/overview/live").await;
        assert!(overview.contains(r#"data-series="orders""#), "{overview}");
        assert!(overview.contains("(now 12)"), "the legend gives this minute's orders: {overview}");
        // The API shows the same limit.
        let queues = app.read("/v1/queues").await;
        let webhooks = queues["data"].as_array().unwrap().iter().find(|q| q["name"] == "webhooks").unwrap();
        assert_eq!(webhooks["limits"], json!([{"scope": "partition", "name": "deliver_webhook", "limit": 4.0, "in_use": 4.0, "waiting": 2}]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_console_disabled_there_is_no_console() {
    let app = TestApp::spawn_with(
        crate::helpers::Backend::Sqlite,
        &[("ORDERLY_CONSOLE__ENABLED", "false")],
    )
    .await
    .unwrap();
    let mut browser = Browser::new(&app);
    assert_eq!(browser.get("/console").await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        browser.get("/console/sign-in").await.0,
        StatusCode::NOT_FOUND
    );
    let key = app.admin_key.clone();
    assert_eq!(
        browser
            .post_sign_in(&[("key", &key)], None, &[])
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_console_request_is_a_page_429_or_413_not_json() {
    let app = TestApp::spawn_with(
        crate::helpers::Backend::Sqlite,
        &[
            ("ORDERLY_RATE_LIMITS__ANONYMOUS__RATE", "1"),
            ("ORDERLY_RATE_LIMITS__ANONYMOUS__BURST", "3"),
        ],
    )
    .await
    .unwrap();
    let mut browser = Browser::new(&app);
    // Over the body limit (64 KiB): 413, as the API answers it.
    let (token, cookie) = browser.sign_in_page().await;
    let big = "k".repeat(100_000);
    let large = browser
        .post_sign_in(&[("csrf", &token), ("key", &big)], Some(&cookie), &[])
        .await;
    assert_eq!(large.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        large.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    // The anonymous burst spent: 429, a page with Retry-After.
    let limited = loop {
        let response = browser
            .request(Method::GET, "/console/sign-in")
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            break response;
        }
        assert_eq!(response.status(), StatusCode::OK);
    };
    assert!(limited.headers().contains_key(header::RETRY_AFTER));
    assert!(
        limited.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(limited.text().await.unwrap().contains("429"));
}
