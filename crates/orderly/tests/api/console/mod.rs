//! The operator's console over HTTP, as a browser uses it: signing in (admin keys only, never
//! shown), the session cookie and its end (expiry, sign-out, a revoked key), the CSRF token
//! every action needs, and the audit log of what was done. The same flows in Chromium are in
//! tests/console/.

use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

use crate::helpers::{TestApp, backend_tests};

mod lifecycle;
mod pages;

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
}
