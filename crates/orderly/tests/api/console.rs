//! The operator's console over HTTP, as a browser uses it: signing in (admin keys only, never
//! shown), the session cookie and its end (expiry, sign-out, a revoked key), the CSRF token
//! every action needs, and the audit log of what was done. The same flows in Chromium are in
//! tests/console/.

use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

use crate::helpers::{TestApp, backend_tests};

/// A browser of the console: no redirects followed, one session cookie.
struct Browser {
    client: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

impl Browser {
    fn new(app: &TestApp) -> Self {
        orderly::install_crypto_provider();
        Self {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: app.address.clone(),
            cookie: None,
        }
    }

    /// Opens the sign-in page, as a browser does, and posts its form with `key`.
    async fn sign_in(&mut self, key: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let (token, cookie) = self.sign_in_page().await;
        self.post_sign_in(&[("csrf", &token), ("key", key)], Some(&cookie), headers)
            .await
    }

    /// The sign-in page's form token and the cookie that goes with it.
    async fn sign_in_page(&self) -> (String, String) {
        let response = self
            .client
            .get(format!("{}/console/sign-in", self.base))
            .send()
            .await
            .unwrap();
        let cookie = response.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(cookie.starts_with("orderly_console_sign_in="), "{cookie}");
        for attribute in ["Path=/console/sign-in", "HttpOnly", "SameSite=Strict"] {
            assert!(cookie.contains(attribute), "{attribute} in {cookie}");
        }
        let page = response.text().await.unwrap();
        let at = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
        let token = page[at..at + page[at..].find('"').unwrap()].to_owned();
        (token, cookie.split(';').next().unwrap().to_owned())
    }

    /// Posts the sign-in form with `fields`, the sign-in `cookie` and `headers`.
    async fn post_sign_in(
        &mut self,
        fields: &[(&str, &str)],
        cookie: Option<&str>,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = form(
            self.client.post(format!("{}/console/sign-in", self.base)),
            fields,
        );
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let session = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("orderly_console="));
        if let Some(set) = session {
            self.cookie = set.split(';').next().map(str::to_owned);
        }
        response
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.client.request(method, format!("{}{path}", self.base));
        match &self.cookie {
            Some(cookie) => request.header(header::COOKIE, cookie),
            None => request,
        }
    }

    async fn get(&self, path: &str) -> (StatusCode, String, Option<String>) {
        let response = self.request(Method::GET, path).send().await.unwrap();
        let status = response.status();
        let location = response
            .headers()
            .get(header::LOCATION)
            .map(|l| l.to_str().unwrap().to_owned());
        (status, response.text().await.unwrap(), location)
    }

    /// The CSRF token the page at `path` carries.
    async fn csrf(&self, path: &str) -> String {
        let (status, page, _) = self.get(path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let at = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
        page[at..at + page[at..].find('"').unwrap()].to_owned()
    }

    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        form(self.request(Method::POST, path), fields)
            .send()
            .await
            .unwrap()
    }
}

/// A sign-in post: its fields, its cookie and its other headers.
type SignInPost<'a> = (
    &'a [(&'a str, &'a str)],
    Option<&'a str>,
    Vec<(&'a str, &'a str)>,
);

/// A form post's body, `application/x-www-form-urlencoded`.
fn form(request: reqwest::RequestBuilder, fields: &[(&str, &str)]) -> reqwest::RequestBuilder {
    let encode = |text: &str| -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    request
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body.join("&"))
}

async fn place_order(app: &TestApp, sku: &str) -> String {
    app.create_product(sku, 1_000, 10).await;
    let order: Value = app
        .place_order(json!([{"sku": sku, "quantity": 1}]))
        .await
        .json()
        .await
        .unwrap();
    order["id"].as_str().unwrap().to_owned()
}

backend_tests! {
    async fn only_an_admin_key_signs_in_and_no_page_shows_it(app) {
        let mut browser = Browser::new(&app);
        let (status, _, location) = browser.get("/console/orders").await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(location.as_deref(), Some("/console/sign-in?next=%2Fconsole%2Forders"));

        let wrong = browser.sign_in("oly_not-a-key", &[]).await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        assert!(wrong.headers().get(header::SET_COOKIE).is_none());
        let storefront = browser.sign_in(&app.storefront_key.clone(), &[]).await;
        assert_eq!(storefront.status(), StatusCode::FORBIDDEN);
        assert!(storefront.text().await.unwrap().contains("Storefront keys cannot sign in"));
        assert!(browser.cookie.is_none());

        let signed_in = browser.sign_in(&app.admin_key.clone(), &[]).await;
        assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
        let cookie = signed_in.headers()[header::SET_COOKIE].to_str().unwrap().to_owned();
        for attribute in ["Path=/console", "HttpOnly", "SameSite=Strict", "Max-Age=28800"] {
            assert!(cookie.contains(attribute), "{attribute} in {cookie}");
        }
        assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
        for page in ["/console", "/console/orders", "/console/jobs", "/console/queues", "/console/webhooks", "/console/audit"] {
            let (status, body, _) = browser.get(page).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            assert!(!body.contains(&app.admin_key), "{page} shows no key");
            assert!(!body.contains(&app.admin_key[..12]), "{page} shows no part of the key");
        }
        let page = browser.request(Method::GET, "/console/jobs").send().await.unwrap();
        let csp = page.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"), "{csp}");
        assert_eq!(page.headers()[header::CACHE_CONTROL], "no-store");

        // Behind a proxy that terminates TLS, the cookie is Secure.
        let mut behind_tls = Browser::new(&app);
        let secure = behind_tls.sign_in(&app.admin_key.clone(), &[("x-forwarded-proto", "https")]).await;
        assert!(secure.headers()[header::SET_COOKIE].to_str().unwrap().contains("; Secure"));
    }

    async fn a_sign_in_not_posted_from_the_sign_in_page_is_refused_without_a_session(app) {
        let mut browser = Browser::new(&app);
        let key = app.admin_key.clone();
        let (token, cookie) = browser.sign_in_page().await;
        let own_origin = app.address.clone();
        let refused: [SignInPost; 6] = [
            // A page elsewhere posting the form: no token, no cookie.
            (&[("key", &key)], None, vec![]),
            // The token without its cookie, and a cookie with another token.
            (&[("csrf", &token), ("key", &key)], None, vec![]),
            (&[("csrf", "x".repeat(43).leak()), ("key", &key)], Some(&cookie), vec![]),
            // Both, but the browser says the post came from another site.
            (&[("csrf", &token), ("key", &key)], Some(&cookie),
             vec![("origin", "https://evil.example")]),
            (&[("csrf", &token), ("key", &key)], Some(&cookie),
             vec![("sec-fetch-site", "cross-site")]),
            (&[("csrf", &token), ("key", &key)], Some(&cookie), vec![("origin", "null")]),
        ];
        for (fields, cookie, headers) in refused {
            let response = browser.post_sign_in(fields, cookie, &headers).await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{headers:?}");
            assert!(response.headers().get(header::SET_COOKIE).is_none(), "{headers:?}");
            assert!(browser.cookie.is_none());
        }
        assert_eq!(app.scalar("SELECT COUNT(*) FROM console_sessions").await, 0);
        assert_eq!(app.scalar("SELECT COUNT(*) FROM audit_log").await, 0);

        // From the page itself, with what a browser sends on a same-origin post.
        let signed_in = browser.post_sign_in(
            &[("csrf", &token), ("key", &key)],
            Some(&cookie),
            &[("origin", &own_origin), ("sec-fetch-site", "same-origin")],
        ).await;
        assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
        assert!(browser.cookie.is_some());
        assert_eq!(app.scalar("SELECT COUNT(*) FROM console_sessions").await, 1);
    }

    async fn a_next_with_a_control_character_is_400_and_signs_nobody_in(app) {
        let mut browser = Browser::new(&app);
        let key = app.admin_key.clone();
        for next in ["/console/jobs\u{1}", "/console/\u{7f}"] {
            let (token, cookie) = browser.sign_in_page().await;
            let response = browser.post_sign_in(
                &[("csrf", &token), ("key", &key), ("next", next)], Some(&cookie), &[],
            ).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{next:?}");
            assert!(browser.cookie.is_none());
            // The page validates the same `next` the same way.
            let (status, ..) = browser.get(&format!(
                "/console/sign-in?next={}", if next.ends_with('\u{1}') { "%01" } else { "%7F" }
            )).await;
            assert_eq!(status, StatusCode::BAD_REQUEST);
        }
        assert_eq!(app.scalar("SELECT COUNT(*) FROM console_sessions").await, 0);
        assert_eq!(app.scalar("SELECT COUNT(*) FROM audit_log").await, 0);
    }

    async fn an_expired_session_or_a_revoked_key_sends_the_browser_to_sign_in(app) {
        let mut browser = Browser::new(&app);
        browser.sign_in(&app.admin_key.clone(), &[]).await;
        assert_eq!(browser.get("/console/jobs").await.0, StatusCode::OK);
        app.execute(
            "UPDATE console_sessions SET expires_at = '2000-01-01T00:00:00.000000Z'",
            "UPDATE console_sessions SET expires_at = '2000-01-01T00:00:00Z'",
        ).await;
        let (status, _, location) = browser.get("/console/jobs").await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(location.as_deref(), Some("/console/sign-in?next=%2Fconsole%2Fjobs&notice=expired"));

        // A new session ends when its key is revoked.
        browser.sign_in(&app.admin_key.clone(), &[]).await;
        assert_eq!(browser.get("/console").await.0, StatusCode::OK);
        app.execute(
            "UPDATE api_keys SET revoked_at = '2026-01-01T00:00:00.000000Z' WHERE role = 'admin'",
            "UPDATE api_keys SET revoked_at = now() WHERE role = 'admin'",
        ).await;
        assert_eq!(browser.get("/console").await.0, StatusCode::SEE_OTHER);
    }

    async fn an_action_without_the_csrf_token_is_refused_and_changes_nothing(app) {
        let order = place_order(&app, "CSRF").await;
        let mut browser = Browser::new(&app);
        browser.sign_in(&app.admin_key.clone(), &[]).await;
        let path = format!("/console/orders/{order}");
        let token = browser.csrf(&path).await;

        let missing = browser.post(&format!("{path}/cancel"), &[]).await;
        assert_eq!(missing.status(), StatusCode::FORBIDDEN);
        let wrong = browser.post(&format!("{path}/cancel"), &[("csrf", "forged")]).await;
        assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
        assert!(wrong.text().await.unwrap().contains("security token"));
        // Another session's token is no good either.
        let mut other = Browser::new(&app);
        other.sign_in(&app.admin_key.clone(), &[]).await;
        let others = other.csrf("/console").await;
        assert_ne!(others, token);
        assert_eq!(browser.post(&format!("{path}/cancel"), &[("csrf", &others)]).await.status(), StatusCode::FORBIDDEN);
        assert_eq!(app.read(&format!("/v1/orders/{order}")).await["status"], "pending");

        let done = browser.post(&format!("{path}/cancel"), &[("csrf", &token)]).await;
        assert_eq!(done.status(), StatusCode::SEE_OTHER);
        assert_eq!(app.read(&format!("/v1/orders/{order}")).await["status"], "cancelled");
        let (_, page, _) = browser.get(&format!("{path}?notice=order_cancelled")).await;
        assert!(page.contains("The order is cancelled"), "{page}");
        // Cancelling twice is a conflict, shown as a page.
        let again = browser.post(&format!("{path}/cancel"), &[("csrf", &token)]).await;
        assert_eq!(again.status(), StatusCode::CONFLICT);
        assert!(again.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
    }

    async fn every_console_action_is_in_the_audit_log_with_who_and_where(app) {
        let order = place_order(&app, "AUDIT").await;
        let mut browser = Browser::new(&app);
        browser.sign_in(&app.admin_key.clone(), &[]).await;
        let token = browser.csrf("/console/queues").await;
        let form = [("csrf", token.as_str())];
        for (path, expected) in [
            (format!("/console/orders/{order}/pay"), StatusCode::SEE_OTHER),
            ("/console/queues/default/pause".to_owned(), StatusCode::SEE_OTHER),
            ("/console/queues/default/resume".to_owned(), StatusCode::SEE_OTHER),
            ("/console/schedules/prune/pause".to_owned(), StatusCode::SEE_OTHER),
            ("/console/schedules/prune/run".to_owned(), StatusCode::SEE_OTHER),
            ("/console/jobs/retry-discarded?kind=noop".to_owned(), StatusCode::SEE_OTHER),
            ("/console/queues/nope/pause".to_owned(), StatusCode::NOT_FOUND),
        ] {
            assert_eq!(browser.post(&path, &form).await.status(), expected, "{path}");
        }
        let queued: Value = app.read("/v1/jobs?kind=prune").await;
        assert_eq!(queued["data"].as_array().unwrap().len(), 1, "run now queued the schedule's job: {queued}");
        assert_eq!(browser.post("/console/sign-out", &form).await.status(), StatusCode::SEE_OTHER);

        let mut reader = Browser::new(&app);
        reader.sign_in(&app.admin_key.clone(), &[]).await;
        let (_, page, _) = reader.get("/console/audit").await;
        for action in ["session.sign_in", "order.pay", "queue.pause", "queue.resume", "schedule.pause", "schedule.run", "job.retry_discarded", "session.sign_out"] {
            assert!(page.contains(&format!("<code>{action}</code>")), "{action} in the audit page");
        }
        assert!(page.contains(&format!("order:{order}")), "the order is named");
        assert!(page.contains("queue:default") && page.contains("schedule:prune"));
        assert!(page.contains("127.0.0.1"), "the client's address is kept");
        // Kept in the database: one row per action, each with the key's id and the address;
        // the refused pause of a queue that does not exist is not an action.
        let recorded = app.scalar("SELECT COUNT(*) FROM audit_log WHERE key_id IS NOT NULL AND address = '127.0.0.1'").await;
        assert_eq!(recorded, 9, "two sign-ins, six actions, one sign-out");
        app.assert_times_in_one_form().await;
        assert_eq!(app.scalar("SELECT COUNT(*) FROM audit_log WHERE target = 'queue:nope'").await, 0);
    }

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
