//! One test per class of client error, each answered as `application/problem+json` with a
//! stable code; and a property test that no JSON body at all can provoke a 5xx.

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, StatusCode, TestApp, backend_tests, problem};

backend_tests! {
    async fn malformed_json_is_400(app) {
        for body in [&b"{\"sku\": "[..], b"not json", b"", b"{\"name\": \"\xff\xfe\"}"] {
            let response = app.admin(Method::POST, "/v1/products")
                .header("content-type", "application/json")
                .body(body.to_vec()).send().await.unwrap();
            let problem = problem(response, StatusCode::BAD_REQUEST).await;
            assert_eq!(problem["code"], "malformed_json", "{body:?}");
        }
    }

    async fn a_body_not_declared_as_json_is_415(app) {
        for content_type in [None, Some("text/plain"), Some("application/x-www-form-urlencoded")] {
            let mut request = app.admin(Method::POST, "/v1/products")
                .body(r#"{"sku":"A","name":"A","price":1}"#);
            if let Some(ct) = content_type {
                request = request.header("content-type", ct);
            }
            let response = request.send().await.unwrap();
            let body = problem(response, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
            assert_eq!(body["code"], "unsupported_media_type");
        }
    }

    async fn a_body_over_the_limit_is_413_and_nothing_is_written(app) {
        let description = "x".repeat(70 * 1024);
        let response = app.admin(Method::POST, "/v1/products")
            .json(&json!({"sku": "BIG", "name": "Big", "price": 1, "description": description}))
            .send().await.unwrap();
        assert_eq!(problem(response, StatusCode::PAYLOAD_TOO_LARGE).await["code"], "body_too_large");
        let missing = app.admin(Method::GET, "/v1/products/by-sku/BIG").send().await.unwrap();
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    }

    async fn every_invalid_field_is_reported_at_once_as_422(app) {
        let response = app.admin(Method::POST, "/v1/products")
            .json(&json!({
                "sku": "", "name": "\u{1b}[31mred", "price": 1.5, "stock": -1,
                "active": "yes", "currency": "usd", "colour": "blue"
            }))
            .send().await.unwrap();
        let body = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(body["code"], "validation_failed");
        let mut fields: Vec<&str> = body["errors"].as_array().unwrap().iter()
            .map(|e| e["field"].as_str().unwrap()).collect();
        fields.sort_unstable();
        assert_eq!(fields, ["active", "colour", "currency", "name", "price", "sku", "stock"]);
    }

    async fn a_key_repeated_in_any_body_is_422_naming_it_and_nothing_is_written(app) {
        let product = app.create_product("MUG-BLUE", 100, 5_000).await;
        let product_path = format!("/v1/products/{}", product["id"].as_str().unwrap());
        let webhook_path = format!("/v1/webhooks/{}", uuid::Uuid::new_v4());
        for (method, path, body, field) in [
            (Method::POST, "/v1/orders",
             r#"{"customer": {"email": "ana@example.com", "name": "Ana"},
                 "lines": [{"sku": "MUG-BLUE", "quantity": 1, "quantity": 1000}]}"#,
             "lines[0].quantity"),
            (Method::POST, "/v1/orders",
             r#"{"customer": {"email": "ana@example.com", "email": "eve@example.com", "name": "A"},
                 "lines": [{"sku": "MUG-BLUE", "quantity": 1}]}"#,
             "customer.email"),
            (Method::POST, "/v1/products",
             r#"{"sku": "TWICE", "name": "Twice", "price": 1, "price": 2}"#, "price"),
            (Method::PATCH, product_path.as_str(), r#"{"stock": 1, "st\u006fck": 2}"#, "stock"),
            (Method::POST, "/v1/webhooks",
             r#"{"url": "https://a.example/", "event_types": ["order.created"],
                 "url": "https://b.example/"}"#, "url"),
            (Method::PATCH, webhook_path.as_str(), r#"{"enabled": true, "enabled": false}"#,
             "enabled"),
        ] {
            let response = app.admin(method, path)
                .header("content-type", "application/json")
                .header("idempotency-key", format!("dup-{field}"))
                .body(body).send().await.unwrap();
            let problem = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
            assert_eq!(problem["code"], "validation_failed", "{body}");
            assert_eq!(problem["errors"][0]["field"], field, "{body}");
            assert_eq!(problem["errors"][0]["code"], "duplicate_key", "{body}");
        }
        assert_eq!(app.scalar("SELECT COUNT(*) FROM orders").await, 0);
        assert_eq!(app.scalar("SELECT COUNT(*) FROM products").await, 1);
        let unchanged = app.admin(Method::GET, &product_path).send().await.unwrap();
        assert_eq!(unchanged.json::<Value>().await.unwrap()["stock"], 5_000);
    }

    async fn an_address_the_mailer_cannot_send_to_is_422_when_the_order_is_placed(app) {
        app.create_product("MUG-BLUE", 100, 10).await;
        for email in [
            "a,b@example.com",
            "a(c)@example.com",
            "x@evil.example,y@example.com",
            "javascript:alert(1)//@example.com",
        ] {
            let response = app.storefront(Method::POST, "/v1/orders")
                .header("idempotency-key", format!("mail-{email}"))
                .json(&json!({"customer": {"email": email, "name": "Ana"},
                              "lines": [{"sku": "MUG-BLUE", "quantity": 1}]}))
                .send().await.unwrap();
            let problem = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
            assert_eq!(problem["errors"][0]["field"], "customer.email", "{email}");
            assert_eq!(problem["errors"][0]["code"], "invalid_format", "{email}");
        }
        assert_eq!(app.scalar("SELECT COUNT(*) FROM orders").await, 0);
        assert_eq!(app.scalar("SELECT COUNT(*) FROM jobs").await, 0);
    }

    async fn numbers_too_large_for_any_field_are_422_not_5xx(app) {
        for (field, value) in [
            ("price", "100000000000000000000000"),
            ("price", "9223372036854775807"),
            ("stock", "1e300"),
            ("stock", "-9223372036854775808"),
        ] {
            let other = if field == "price" { "stock" } else { "price" };
            let body = format!(r#"{{"sku": "HUGE", "name": "Huge", "{other}": 1, "{field}": {value}}}"#);
            let response = app.admin(Method::POST, "/v1/products")
                .header("content-type", "application/json").body(body).send().await.unwrap();
            let problem = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
            assert_eq!(problem["errors"][0]["field"], field, "{value}");
        }
    }

    async fn odd_unicode_is_stored_exactly_or_refused_never_mangled(app) {
        let name = "Ça\u{301} 𝄞 مرحبا \u{200d}👩‍👩‍👧 \u{fffd}";
        let response = app.admin(Method::POST, "/v1/products")
            .json(&json!({"sku": "UNI-1", "name": name, "price": 1})).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let read: Value = app.read("/v1/products/by-sku/UNI-1").await;
        assert_eq!(read["name"], name);
        let nul = app.admin(Method::POST, "/v1/products")
            .json(&json!({"sku": "UNI-2", "name": "nul\u{0}byte", "price": 1})).send().await.unwrap();
        let body = problem(nul, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(body["errors"][0]["code"], "invalid_character");
    }

    async fn a_json_document_that_is_not_an_object_is_422(app) {
        for body in ["[1, 2]", "\"text\"", "42", "null"] {
            let response = app.admin(Method::POST, "/v1/products")
                .header("content-type", "application/json").body(body).send().await.unwrap();
            problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        }
    }

    async fn bad_query_parameters_are_400_with_each_one_named(app) {
        let response = app.admin(Method::GET, "/v1/products?limit=0&cursor=zzz&active=maybe")
            .send().await.unwrap();
        let body = problem(response, StatusCode::BAD_REQUEST).await;
        assert_eq!(body["code"], "invalid_query");
        let fields: Vec<&str> = body["errors"].as_array().unwrap().iter()
            .map(|e| e["field"].as_str().unwrap()).collect();
        assert_eq!(fields, ["limit", "cursor", "active"]);
        let unknown = app.admin(Method::GET, "/v1/products?colour=red").send().await.unwrap();
        problem(unknown, StatusCode::BAD_REQUEST).await;
        let too_big = app.admin(Method::GET, "/v1/products?limit=101").send().await.unwrap();
        problem(too_big, StatusCode::BAD_REQUEST).await;
    }

    async fn a_control_character_in_a_query_value_is_400_on_every_backend(app) {
        for path in ["/v1/orders?email=%00", "/v1/jobs?kind=%00", "/v1/jobs?queue=a%00b", "/v1/orders?status=%07"] {
            let response = app.admin(Method::GET, path).send().await.unwrap();
            let body = problem(response, StatusCode::BAD_REQUEST).await;
            assert_eq!(body["code"], "invalid_query", "{path}: {body}");
            assert_eq!(body["errors"][0]["code"], "invalid_character", "{path}: {body}");
        }
    }

    async fn every_answer_is_nosniff_and_the_api_is_never_stored(app) {
        app.create_product("HEADERS", 100, 1).await;
        for (path, stored) in [
            ("/v1/products/by-sku/HEADERS", false),
            ("/v1/orders", false),
            ("/v1/nothing-here", false),
            ("/healthz", true),
            ("/openapi.json", true),
        ] {
            let response = app.admin(Method::GET, path).send().await.unwrap();
            assert_eq!(response.headers()["x-content-type-options"], "nosniff", "{path}");
            let cache = response.headers().get("cache-control").map(|v| v.to_str().unwrap().to_owned());
            assert_eq!(cache.as_deref() != Some("no-store"), stored, "{path}: {cache:?}");
        }
        // The answer that carries a webhook's signing secret, once.
        let created = app.admin(Method::POST, "/v1/webhooks")
            .json(&serde_json::json!({"url": "https://example.com/hook", "event_types": ["order.created"]}))
            .send().await.unwrap();
        assert_eq!(created.status(), StatusCode::CREATED);
        assert_eq!(created.headers()["cache-control"], "no-store");
    }

    async fn the_docs_page_loads_one_pinned_script_by_its_hash_under_a_strict_policy(app) {
        let response = app.client.get(app.url("/docs")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let policy = response.headers()["content-security-policy"].to_str().unwrap().to_owned();
        for directive in ["default-src 'none'", "script-src https://cdn.jsdelivr.net;", "connect-src 'self'", "frame-ancestors 'none'"] {
            assert!(policy.contains(directive), "{directive} in {policy}");
        }
        let html = response.text().await.unwrap();
        let scripts: Vec<&str> = html.match_indices("<script").map(|(i, _)| &html[i..]).collect();
        assert_eq!(scripts.len(), 2, "{html}");
        assert!(scripts[0].starts_with(r#"<script id="api-reference" type="application/json">{"#));
        assert!(
            scripts[1].starts_with(r#"<script src="https://cdn.jsdelivr.net/npm/@scalar/api-reference@1."#)
                && scripts[1].contains(r#"integrity="sha384-"#),
            "{}", scripts[1]
        );
    }

    async fn an_unknown_path_is_404_and_a_wrong_method_is_405(app) {
        let response = app.admin(Method::GET, "/v1/nothing-here").send().await.unwrap();
        assert_eq!(problem(response, StatusCode::NOT_FOUND).await["code"], "not_found");
        let response = app.admin(Method::DELETE, "/v1/products").send().await.unwrap();
        assert_eq!(problem(response, StatusCode::METHOD_NOT_ALLOWED).await["code"], "method_not_allowed");
    }

    async fn a_database_outage_is_a_generic_503_that_leaks_nothing(app) {
        app.store.close().await;
        let response = app.client.get(app.url("/v1/products"))
            .bearer_auth(&app.admin_key).send().await.unwrap();
        assert_eq!(response.headers()["retry-after"], "1");
        let body = problem(response, StatusCode::SERVICE_UNAVAILABLE).await;
        assert_eq!(body["code"], "unavailable");
        let text = body.to_string().to_lowercase();
        for leak in ["sqlx", "pool", "sqlite", "postgres", "closed"] {
            assert!(!text.contains(leak), "the body mentions {leak}: {text}");
        }
        let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e20f64..1e20).prop_map(Value::from),
        "\\PC{0,40}".prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    let keys = prop_oneof![
        3 => prop::sample::select(vec![
            "sku", "name", "price", "stock", "active", "currency", "description",
        ]).prop_map(str::to_owned),
        1 => any::<String>(),
    ];
    leaf.prop_recursive(3, 32, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(keys.clone(), inner, 0..9)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Arbitrary JSON documents sent to the write endpoints never yield a 5xx: each is accepted
/// or refused with a 4xx problem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_json_body_ever_produces_a_5xx() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let product = app.create_product("PROP-TARGET", 100, 10).await;
    let patch_path = format!("/v1/products/{}", product["id"].as_str().unwrap());
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(96);
    let mut runner = TestRunner::new(ProptestConfig {
        cases,
        ..ProptestConfig::default()
    });
    let handle = tokio::runtime::Handle::current();
    tokio::task::block_in_place(|| {
        runner.run(&arbitrary_json(), |body| {
            for (method, path) in [
                (Method::POST, "/v1/products"),
                (Method::PATCH, patch_path.as_str()),
            ] {
                let status = handle.block_on(async {
                    app.admin(method.clone(), path)
                        .json(&body)
                        .send()
                        .await
                        .unwrap()
                        .status()
                });
                prop_assert!(
                    status.is_success() || status.is_client_error(),
                    "{method} {path} with {body} gave {status}"
                );
            }
            Ok(())
        })
    })
    .unwrap();
}
