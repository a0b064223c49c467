//! Placing orders: atomicity, no overselling, idempotency, the state machine, and who may
//! read what.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{StatusCode, TestApp, backend_tests, problem};

async fn stock(app: &TestApp, sku: &str) -> i64 {
    let product: Value = app.read(&format!("/v1/products/by-sku/{sku}")).await;
    product["stock"].as_i64().unwrap()
}

async fn counts(app: &TestApp) -> (i64, i64, i64, i64) {
    (
        app.scalar("SELECT COUNT(*) FROM orders").await,
        app.scalar("SELECT COUNT(*) FROM order_lines").await,
        app.scalar("SELECT COUNT(*) FROM events WHERE type LIKE 'order.%'")
            .await,
        app.scalar("SELECT COUNT(*) FROM idempotency_keys").await,
    )
}

fn order_body(lines: Value) -> Value {
    json!({"customer": {"email": "ana@example.com", "name": "Ana Lima"}, "lines": lines})
}

backend_tests! {
    async fn placing_an_order_reserves_stock_snapshots_prices_and_records_one_event(app) {
        let mug = app.create_product("MUG", 1250, 10).await;
        app.create_product("TEA", 499, 5).await;
        let response = app.place_order(json!([
            {"sku": "TEA", "quantity": 3},
            {"product_id": mug["id"], "quantity": 2},
        ])).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        let order: Value = response.json().await.unwrap();
        assert_eq!(location, format!("/v1/orders/{}", order["id"].as_str().unwrap()));
        assert_eq!(order["status"], "pending");
        assert_eq!(order["total"], 3 * 499 + 2 * 1250);
        assert_eq!(order["lines"][0]["sku"], "TEA");
        assert_eq!(order["lines"][0]["line_total"], 1497);
        assert_eq!(order["lines"][1]["unit_price"], 1250);
        assert_eq!((stock(&app, "MUG").await, stock(&app, "TEA").await), (8, 2));
        assert_eq!(counts(&app).await, (1, 2, 1, 1));
        assert_eq!(app.scalar("SELECT COUNT(*) FROM events WHERE type = 'order.created'").await, 1);

        // A later price change does not touch the order's snapshot.
        let patch = app.admin(Method::PATCH, &format!("/v1/products/{}", mug["id"].as_str().unwrap()))
            .json(&json!({"price": 9999})).send().await.unwrap();
        assert_eq!(patch.status(), StatusCode::OK);
        let read: Value = app.storefront(Method::GET, &location).send().await.unwrap().json().await.unwrap();
        assert_eq!(read, order);
    }

    async fn five_hundred_concurrent_orders_for_fifty_units_sell_exactly_fifty(app) {
        app.create_product("HOT", 100, 50).await;
        let app = Arc::new(app);
        let done = Arc::new(AtomicBool::new(false));
        // Watch the stock while the orders run: it must never be seen below zero.
        let watcher = {
            let (app, done) = (app.clone(), done.clone());
            tokio::spawn(async move {
                let mut lowest = i64::MAX;
                while !done.load(Ordering::Relaxed) {
                    lowest = lowest.min(stock(&app, "HOT").await);
                }
                lowest
            })
        };
        let mut tasks = Vec::new();
        for _ in 0..500 {
            let app = app.clone();
            tasks.push(tokio::spawn(async move {
                app.place_order(json!([{"sku": "HOT", "quantity": 1}])).await.status()
            }));
        }
        let mut created = 0;
        let mut conflicts = 0;
        for task in tasks {
            match task.await.unwrap() {
                StatusCode::CREATED => created += 1,
                StatusCode::CONFLICT => conflicts += 1,
                other => panic!("unexpected status {other}"),
            }
        }
        done.store(true, Ordering::Relaxed);
        assert!(watcher.await.unwrap() >= 0);
        assert_eq!((created, conflicts), (50, 450));
        assert_eq!(stock(&app, "HOT").await, 0);
        assert_eq!(app.scalar("SELECT COUNT(*) FROM orders").await, 50);
        assert_eq!(app.scalar("SELECT CAST(COALESCE(SUM(quantity), 0) AS BIGINT) FROM order_lines").await, 50);
        assert_eq!(app.scalar("SELECT COUNT(*) FROM events WHERE type LIKE 'order.%'").await, 50);
    }

    async fn fifty_concurrent_requests_with_one_key_make_exactly_one_order(app) {
        app.create_product("ONCE", 100, 1_000).await;
        let app = Arc::new(app);
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let app = app.clone();
            tasks.push(tokio::spawn(async move {
                let response = app.storefront(Method::POST, "/v1/orders")
                    .header("idempotency-key", "same-key-for-all")
                    .json(&order_body(json!([{"sku": "ONCE", "quantity": 2}])))
                    .send().await.unwrap();
                let status = response.status();
                let retry_after = response.headers().get("retry-after").cloned();
                let body: Value = response.json().await.unwrap();
                (status, retry_after, body)
            }));
        }
        let mut ids = std::collections::HashSet::new();
        for task in tasks {
            let (status, retry_after, body) = task.await.unwrap();
            match status {
                StatusCode::CREATED => { ids.insert(body["id"].as_str().unwrap().to_owned()); }
                StatusCode::CONFLICT => {
                    assert_eq!(body["code"], "idempotency_key_in_flight");
                    assert_eq!(retry_after.expect("Retry-After on in_flight"), "1");
                }
                other => panic!("unexpected {other}: {body}"),
            }
        }
        assert_eq!(ids.len(), 1, "every 201 names the same order");
        assert_eq!(app.scalar("SELECT COUNT(*) FROM orders").await, 1);
        assert_eq!(stock(&app, "ONCE").await, 998);
    }

    async fn a_retry_replays_the_first_response_and_another_body_with_the_key_is_422(app) {
        app.create_product("RETRY", 700, 10).await;
        let send = |key: &'static str, quantity: i64| {
            app.storefront(Method::POST, "/v1/orders")
                .header("idempotency-key", key)
                .json(&order_body(json!([{"sku": "RETRY", "quantity": quantity}])))
                .send()
        };
        let first = send("k-1", 1).await.unwrap();
        assert_eq!(first.status(), StatusCode::CREATED);
        assert!(first.headers().get("idempotent-replayed").is_none());
        let first_location = first.headers()["location"].clone();
        let first_body = first.text().await.unwrap();
        let retry = send("k-1", 1).await.unwrap();
        assert_eq!(retry.status(), StatusCode::CREATED);
        assert_eq!(retry.headers()["idempotent-replayed"], "true");
        assert_eq!(retry.headers()["location"], first_location);
        assert_eq!(retry.text().await.unwrap(), first_body);
        // A replay is the order as the first answer gave it, not as it stands now.
        let id = serde_json::from_str::<Value>(&first_body).unwrap()["id"].as_str().unwrap().to_owned();
        let paid = app.admin(Method::POST, &format!("/v1/orders/{id}/pay")).send().await.unwrap();
        assert_eq!(paid.status(), StatusCode::OK);
        let after_payment = send("k-1", 1).await.unwrap();
        assert_eq!(after_payment.headers()["idempotent-replayed"], "true");
        assert_eq!(after_payment.text().await.unwrap(), first_body);
        let other = send("k-1", 2).await.unwrap();
        assert_eq!(problem(other, StatusCode::UNPROCESSABLE_ENTITY).await["code"], "idempotency_key_reused");
        assert_eq!(stock(&app, "RETRY").await, 9);
        // Keys are scoped to the API key: the admin may use the same token for its own order.
        let admin = app.admin(Method::POST, "/v1/orders").header("idempotency-key", "k-1")
            .json(&order_body(json!([{"sku": "RETRY", "quantity": 1}]))).send().await.unwrap();
        assert_eq!(admin.status(), StatusCode::CREATED);
        assert_eq!(app.scalar("SELECT COUNT(*) FROM orders").await, 2);
    }

    async fn the_idempotency_key_header_is_required_and_checked(app) {
        app.create_product("KEYED", 1, 10).await;
        let body = order_body(json!([{"sku": "KEYED", "quantity": 1}]));
        let missing = app.storefront(Method::POST, "/v1/orders").json(&body).send().await.unwrap();
        assert_eq!(problem(missing, StatusCode::BAD_REQUEST).await["code"], "idempotency_key_required");
        for bad in ["has space", &"x".repeat(256)] {
            let response = app.storefront(Method::POST, "/v1/orders").header("idempotency-key", bad)
                .json(&body).send().await.unwrap();
            assert_eq!(problem(response, StatusCode::BAD_REQUEST).await["code"], "invalid_idempotency_key");
        }
        assert_eq!(counts(&app).await, (0, 0, 0, 0));
    }

    async fn a_failure_after_the_stock_update_leaves_nothing_behind(app) {
        app.create_product("ATOMIC", 100, 10).await;
        // Make the last write of the order transaction fail.
        app.fail_event_inserts().await;
        let send = || app.storefront(Method::POST, "/v1/orders")
            .header("idempotency-key", "atomic-1")
            .json(&order_body(json!([{"sku": "ATOMIC", "quantity": 4}])))
            .send();
        let failed = send().await.unwrap();
        let body = problem(failed, StatusCode::INTERNAL_SERVER_ERROR).await;
        assert!(!body.to_string().contains("injected"), "the cause is logged, not returned");
        assert_eq!(stock(&app, "ATOMIC").await, 10);
        assert_eq!(counts(&app).await, (0, 0, 0, 0));

        // The key was not used up: once the fault is gone the same request succeeds.
        app.execute("DROP TRIGGER fail_events;", "DROP TRIGGER fail_events ON events;").await;
        let retried = send().await.unwrap();
        assert_eq!(retried.status(), StatusCode::CREATED);
        assert_eq!(stock(&app, "ATOMIC").await, 6);
        assert_eq!(counts(&app).await, (1, 1, 1, 1));
    }

    async fn bad_order_input_is_a_clear_4xx_and_writes_nothing(app) {
        app.create_product("BAD", 100, 10).await;
        let many: Vec<Value> = (0..101).map(|i| json!({"sku": format!("S{i}"), "quantity": 1})).collect();
        let cases = [
            json!({"customer": {"email": "ana@example.com", "name": "A"}, "lines": "MUG"}),
            order_body(json!([{"sku": "BAD"}])),
            order_body(json!([{"sku": "BAD", "quantity": 0}])),
            order_body(json!([{"sku": "BAD", "quantity": -1}])),
            order_body(json!([{"sku": "BAD", "quantity": 1001}])),
            order_body(json!([{"sku": "BAD", "quantity": 1e40}])),
            order_body(json!([{"sku": "BAD", "quantity": 1}, {"sku": "BAD", "quantity": 2}])),
            order_body(json!([])),
            order_body(Value::Array(many)),
            json!({"customer": {"email": "ana@example.com", "name": "A"}, "lines": [{"sku": "BAD", "quantity": 1}], "coupon": "FREE"}),
            json!({"customer": {"email": "nope", "name": "A"}, "lines": [{"sku": "BAD", "quantity": 1}]}),
            json!({"lines": [{"sku": "BAD", "quantity": 1}]}),
        ];
        for body in cases {
            let response = app.storefront(Method::POST, "/v1/orders")
                .header("idempotency-key", uuid::Uuid::new_v4().to_string())
                .json(&body).send().await.unwrap();
            let status = response.status();
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            let problem = problem(response, status).await;
            assert!(!problem["errors"].as_array().unwrap().is_empty(), "{problem}");
        }
        for raw in [&b"{\"customer\": \xff}"[..], b"{\"lines\": [", b"\xfe\xff"] {
            let response = app.storefront(Method::POST, "/v1/orders")
                .header("idempotency-key", uuid::Uuid::new_v4().to_string())
                .header("content-type", "application/json").body(raw.to_vec()).send().await.unwrap();
            assert_eq!(problem(response, StatusCode::BAD_REQUEST).await["code"], "malformed_json");
        }
        assert_eq!(counts(&app).await, (0, 0, 0, 0));
        assert_eq!(stock(&app, "BAD").await, 10);
    }

    async fn unknown_inactive_and_short_lines_are_named_and_nothing_is_reserved(app) {
        app.create_product("OK", 100, 10).await;
        app.create_product("LOW", 100, 1).await;
        let off = app.admin(Method::POST, "/v1/products")
            .json(&json!({"sku": "OFF", "name": "Off", "price": 1, "stock": 5, "active": false}))
            .send().await.unwrap();
        assert_eq!(off.status(), StatusCode::CREATED);
        let invalid = app.place_order(json!([
            {"sku": "OK", "quantity": 1},
            {"sku": "GHOST", "quantity": 1},
            {"sku": "OFF", "quantity": 1},
            {"product_id": uuid::Uuid::now_v7(), "quantity": 1},
        ])).await;
        let body = problem(invalid, StatusCode::UNPROCESSABLE_ENTITY).await;
        let named: Vec<(&str, &str)> = body["errors"].as_array().unwrap().iter()
            .map(|e| (e["field"].as_str().unwrap(), e["code"].as_str().unwrap())).collect();
        assert_eq!(named, [
            ("lines[1]", "unknown_product"),
            ("lines[2]", "product_unavailable"),
            ("lines[3]", "unknown_product"),
        ]);
        let short = app.place_order(json!([
            {"sku": "LOW", "quantity": 2},
            {"sku": "OK", "quantity": 11},
        ])).await;
        let body = problem(short, StatusCode::CONFLICT).await;
        assert_eq!(body["code"], "insufficient_stock");
        let named: Vec<&str> = body["errors"].as_array().unwrap().iter()
            .map(|e| e["field"].as_str().unwrap()).collect();
        assert_eq!(named, ["lines[0]", "lines[1]"]);
        assert_eq!((stock(&app, "OK").await, stock(&app, "LOW").await), (10, 1));
        assert_eq!(counts(&app).await, (0, 0, 0, 0));
    }

    async fn orders_move_through_their_states_and_cancelling_gives_stock_back(app) {
        app.create_product("FLOW", 100, 10).await;
        let place = || async {
            let order: Value = app.place_order(json!([{"sku": "FLOW", "quantity": 3}])).await.json().await.unwrap();
            order["id"].as_str().unwrap().to_owned()
        };
        let act = |id: String, action: &'static str| {
            app.admin(Method::POST, &format!("/v1/orders/{id}/{action}")).send()
        };
        let first = place().await;
        let paid: Value = act(first.clone(), "pay").await.unwrap().json().await.unwrap();
        assert_eq!(paid["status"], "paid");
        let again = act(first.clone(), "pay").await.unwrap();
        let body = problem(again, StatusCode::CONFLICT).await;
        assert_eq!(body["code"], "invalid_transition");
        assert!(body["detail"].as_str().unwrap().contains("paid"), "{body}");
        let fulfilled: Value = act(first.clone(), "fulfill").await.unwrap().json().await.unwrap();
        assert_eq!(fulfilled["status"], "fulfilled");
        let late_cancel = act(first.clone(), "cancel").await.unwrap();
        assert!(problem(late_cancel, StatusCode::CONFLICT).await["detail"].as_str().unwrap().contains("fulfilled"));
        assert_eq!(stock(&app, "FLOW").await, 7);

        let second = place().await;
        assert_eq!(stock(&app, "FLOW").await, 4);
        let cancelled: Value = act(second.clone(), "cancel").await.unwrap().json().await.unwrap();
        assert_eq!(cancelled["status"], "cancelled");
        assert_eq!(stock(&app, "FLOW").await, 7);
        let fulfil_cancelled = act(second, "fulfill").await.unwrap();
        problem(fulfil_cancelled, StatusCode::CONFLICT).await;
        assert_eq!(stock(&app, "FLOW").await, 7, "a refused transition changes nothing");

        let kinds = [
            ("order.created", 2), ("order.paid", 1), ("order.fulfilled", 1), ("order.cancelled", 1),
        ];
        for (kind, n) in kinds {
            let count = match kind {
                "order.created" => app.scalar("SELECT COUNT(*) FROM events WHERE type = 'order.created'").await,
                "order.paid" => app.scalar("SELECT COUNT(*) FROM events WHERE type = 'order.paid'").await,
                "order.fulfilled" => app.scalar("SELECT COUNT(*) FROM events WHERE type = 'order.fulfilled'").await,
                _ => app.scalar("SELECT COUNT(*) FROM events WHERE type = 'order.cancelled'").await,
            };
            assert_eq!(count, n, "{kind}");
        }
        let missing = act(uuid::Uuid::now_v7().to_string(), "pay").await.unwrap();
        problem(missing, StatusCode::NOT_FOUND).await;
    }

    async fn storefronts_read_only_their_own_orders_and_admins_list_all(app) {
        app.create_product("MINE", 100, 100).await;
        let mine: Value = app.place_order(json!([{"sku": "MINE", "quantity": 1}])).await.json().await.unwrap();
        let admins = app.admin(Method::POST, "/v1/orders").header("idempotency-key", "admin-1")
            .json(&json!({"customer": {"email": "bo@example.com", "name": "Bo"}, "lines": [{"sku": "MINE", "quantity": 1}]}))
            .send().await.unwrap();
        let admins: Value = admins.json().await.unwrap();
        let own = app.storefront(Method::GET, &format!("/v1/orders/{}", mine["id"].as_str().unwrap())).send().await.unwrap();
        assert_eq!(own.status(), StatusCode::OK);
        let other = app.storefront(Method::GET, &format!("/v1/orders/{}", admins["id"].as_str().unwrap())).send().await.unwrap();
        problem(other, StatusCode::NOT_FOUND).await;
        let list = app.storefront(Method::GET, "/v1/orders").send().await.unwrap();
        problem(list, StatusCode::FORBIDDEN).await;

        for _ in 0..3 {
            app.place_order(json!([{"sku": "MINE", "quantity": 1}])).await;
        }
        let by_email: Value = app.read("/v1/orders?email=bo@example.com").await;
        assert_eq!(by_email["data"].as_array().unwrap().len(), 1);
        let mut seen = 0;
        let mut path = "/v1/orders?limit=2&status=pending".to_owned();
        loop {
            let page: Value = app.read(&path).await;
            seen += page["data"].as_array().unwrap().len();
            match page["next_cursor"].as_str() {
                Some(cursor) => path = format!("/v1/orders?limit=2&status=pending&cursor={cursor}"),
                None => break,
            }
        }
        assert_eq!(seen, 5);
        let bad = app.admin(Method::GET, "/v1/orders?status=lost").send().await.unwrap();
        problem(bad, StatusCode::BAD_REQUEST).await;
    }
}
