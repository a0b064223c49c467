//! The order lifecycle over HTTP: captures in parts, shipments in parts, cancellations of
//! units, refunds; their idempotency and preconditions; the figures and statuses they leave;
//! stock given back; events with their actor; hostile input; and concurrent refunds that
//! must never give back more than was captured.

use std::sync::Arc;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{StatusCode, TestApp, backend_tests, problem};

/// `POST /v1/orders/{order}/{route}` with `body` and a fresh idempotency key.
pub(crate) async fn change(
    app: &TestApp,
    order: &str,
    route: &str,
    body: Value,
) -> reqwest::Response {
    change_with_key(app, order, route, body, &uuid::Uuid::new_v4().to_string()).await
}

pub(crate) async fn change_with_key(
    app: &TestApp,
    order: &str,
    route: &str,
    body: Value,
    key: &str,
) -> reqwest::Response {
    app.admin(Method::POST, &format!("/v1/orders/{order}/{route}"))
        .header("idempotency-key", key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// The order the change answered with, checking its status code.
pub(crate) async fn changed(response: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    response.json().await.unwrap()
}

pub(crate) async fn stock(app: &TestApp, sku: &str) -> i64 {
    app.read(&format!("/v1/products/by-sku/{sku}")).await["stock"]
        .as_i64()
        .unwrap()
}

/// A placed order of two mugs at 10.00 and a plate at 5.00 (total 25.00); its id.
pub(crate) async fn two_mugs_and_a_plate(app: &TestApp) -> String {
    app.create_product("MUG", 1_000, 10).await;
    app.create_product("PLATE", 500, 10).await;
    let placed = app
        .place_order(json!([{"sku": "MUG", "quantity": 2}, {"sku": "PLATE", "quantity": 1}]))
        .await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    let order: Value = placed.json().await.unwrap();
    assert_eq!(
        (
            &order["payment_status"],
            &order["fulfillment_status"],
            &order["balance_due"]
        ),
        (&json!("unpaid"), &json!("unfulfilled"), &json!(2_500))
    );
    order["id"].as_str().unwrap().to_owned()
}

fn figures(order: &Value) -> (&str, &str, &str, i64, i64, i64, i64, i64) {
    (
        order["status"].as_str().unwrap(),
        order["payment_status"].as_str().unwrap(),
        order["fulfillment_status"].as_str().unwrap(),
        order["total"].as_i64().unwrap(),
        order["captured"].as_i64().unwrap(),
        order["refunded"].as_i64().unwrap(),
        order["balance_due"].as_i64().unwrap(),
        order["refund_owed"].as_i64().unwrap(),
    )
}

backend_tests! {
    async fn an_order_is_paid_in_two_captures_shipped_in_two_parts_and_partly_refunded(app) {
        let id = two_mugs_and_a_plate(&app).await;
        let pay = |amount: i64, reference: &str| json!({"amount": amount, "provider": "stripe", "reference": reference});
        let order = changed(change(&app, &id, "payments", pay(1_000, "ch_1")).await, StatusCode::CREATED).await;
        assert_eq!(figures(&order), ("pending", "partially_paid", "unfulfilled", 2_500, 1_000, 0, 1_500, 0));
        // The provider reports the same capture again: recorded once.
        let again = changed(change(&app, &id, "payments", pay(1_000, "ch_1")).await, StatusCode::OK).await;
        assert_eq!(again["captured"], 1_000);
        let over = problem(change(&app, &id, "payments", pay(1_501, "ch_2")).await, StatusCode::CONFLICT).await;
        assert_eq!(over["code"], "over_balance_due");
        // Nothing ships while a balance is due.
        let early = problem(change(&app, &id, "fulfillments", json!({"lines": [{"sku": "MUG", "quantity": 1}]})).await, StatusCode::CONFLICT).await;
        assert_eq!(early["code"], "balance_due");
        let order = changed(change(&app, &id, "payments", pay(1_500, "ch_2")).await, StatusCode::CREATED).await;
        assert_eq!(figures(&order), ("paid", "paid", "unfulfilled", 2_500, 2_500, 0, 0, 0));

        let shipment = json!({"lines": [{"sku": "MUG", "quantity": 1}], "tracking": {"carrier": "DHL", "number": "JD0146", "url": "https://dhl.example/t/JD0146"}});
        let order = changed(change(&app, &id, "fulfillments", shipment).await, StatusCode::CREATED).await;
        assert_eq!(figures(&order), ("paid", "paid", "partially_fulfilled", 2_500, 2_500, 0, 0, 0));
        assert_eq!((&order["lines"][0]["shipped"], &order["lines"][0]["cancelled"]), (&json!(1), &json!(0)));
        // The plate cannot be supplied: cancelled, its stock back, 5.00 owed.
        let plates = stock(&app, "PLATE").await;
        let order = changed(change(&app, &id, "cancellations", json!({"lines": [{"sku": "PLATE", "quantity": 1}]})).await, StatusCode::CREATED).await;
        assert_eq!(figures(&order), ("paid", "paid", "partially_fulfilled", 2_000, 2_500, 0, 0, 500));
        assert_eq!(stock(&app, "PLATE").await, plates + 1);
        let shipped_more = problem(change(&app, &id, "fulfillments", json!({"lines": [{"sku": "MUG", "quantity": 2}]})).await, StatusCode::CONFLICT).await;
        assert_eq!(shipped_more["code"], "too_many_units");
        let order = changed(change(&app, &id, "fulfillments", json!({"lines": [{"sku": "MUG", "quantity": 1}]})).await, StatusCode::CREATED).await;
        assert_eq!(figures(&order), ("fulfilled", "paid", "fulfilled", 2_000, 2_500, 0, 0, 500));

        // The refund of the plate: at most its price on its line.
        let too_much = problem(change(&app, &id, "refunds", json!({"amount": 501, "lines": [{"sku": "PLATE", "quantity": 1}]})).await, StatusCode::CONFLICT).await;
        assert_eq!(too_much["code"], "over_refundable");
        let order = changed(change(&app, &id, "refunds", json!({"amount": 500, "reason": "out of stock", "lines": [{"sku": "PLATE", "quantity": 1}], "currency": "EUR"})).await, StatusCode::CREATED).await;
        assert_eq!(figures(&order), ("fulfilled", "partially_refunded", "fulfilled", 2_000, 2_500, 500, 0, 0));
        let over = problem(change(&app, &id, "refunds", json!({"amount": 2_001})).await, StatusCode::CONFLICT).await;
        assert_eq!(over["code"], "over_refundable");

        // Each step is in the history with its actor, and the statuses reached fire theirs.
        let history = app.read(&format!("/v1/orders/{id}/history")).await;
        let kinds: Vec<(&str, &str)> = history["data"].as_array().unwrap().iter()
            .map(|e| (e["type"].as_str().unwrap(), e["actor"]["type"].as_str().unwrap_or("-")))
            .collect();
        assert_eq!(kinds, [
            ("order.created", "api_key"),
            ("order.payment_captured", "api_key"),
            ("order.payment_captured", "api_key"),
            ("order.paid", "api_key"),
            ("order.fulfillment_created", "api_key"),
            ("order.units_cancelled", "api_key"),
            ("order.fulfillment_created", "api_key"),
            ("order.fulfilled", "api_key"),
            ("order.refunded", "api_key"),
        ]);
        let refund = history["data"].as_array().unwrap().iter().find(|e| e["type"] == "order.refunded").unwrap();
        assert_eq!(refund["data"]["actor"]["name"], "test admin", "{refund}");
        assert_eq!(refund["data"]["amount"], 500);
        assert_eq!(app.scalar("SELECT COUNT(*) FROM payments").await, 2);
        assert_eq!(app.scalar("SELECT COUNT(*) FROM fulfillments").await, 2);
        assert_eq!(app.scalar("SELECT COUNT(*) FROM refunds").await, 1);
    }

    async fn a_change_is_idempotent_and_honours_the_etag(app) {
        let id = two_mugs_and_a_plate(&app).await;
        let read = app.admin(Method::GET, &format!("/v1/orders/{id}")).send().await.unwrap();
        let etag = read.headers()["etag"].to_str().unwrap().to_owned();
        assert_eq!(etag, "\"1\"");
        let body = json!({"amount": 700, "provider": "adyen", "reference": "psp-1"});
        let first = change_with_key(&app, &id, "payments", body.clone(), "pay-once").await;
        assert_eq!(first.status(), StatusCode::CREATED);
        assert_eq!(first.headers()["etag"], "\"2\"");
        let first: Value = first.json().await.unwrap();
        let retry = change_with_key(&app, &id, "payments", body.clone(), "pay-once").await;
        assert_eq!(retry.status(), StatusCode::CREATED);
        assert_eq!(retry.headers()["idempotent-replayed"], "true");
        assert_eq!(retry.json::<Value>().await.unwrap(), first);
        let other = json!({"amount": 800, "provider": "adyen", "reference": "psp-2"});
        let reused = problem(change_with_key(&app, &id, "payments", other.clone(), "pay-once").await, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(reused["code"], "idempotency_key_reused");
        // The key is bound to its route too.
        problem(change_with_key(&app, &id, "refunds", json!({"amount": 100}), "pay-once").await, StatusCode::UNPROCESSABLE_ENTITY).await;
        // A stale ETag changes nothing.
        let stale = app.admin(Method::POST, &format!("/v1/orders/{id}/payments"))
            .header("idempotency-key", "pay-stale").header("if-match", etag.as_str())
            .json(&other).send().await.unwrap();
        problem(stale, StatusCode::PRECONDITION_FAILED).await;
        let fresh = app.admin(Method::POST, &format!("/v1/orders/{id}/payments"))
            .header("idempotency-key", "pay-fresh").header("if-match", "\"2\"")
            .json(&other).send().await.unwrap();
        assert_eq!(changed(fresh, StatusCode::CREATED).await["captured"], 1_500);
        // The shorthand captures what is due, and answers with the new ETag.
        let paid = app.admin(Method::POST, &format!("/v1/orders/{id}/pay")).send().await.unwrap();
        assert_eq!(paid.headers()["etag"], "\"4\"");
        assert_eq!(figures(&changed(paid, StatusCode::OK).await).1, "paid");
        assert_eq!(app.scalar("SELECT COUNT(*) FROM payments").await, 3);
    }

    async fn hostile_and_impossible_changes_are_refused_and_change_nothing(app) {
        let id = two_mugs_and_a_plate(&app).await;
        for (route, body, field) in [
            ("payments", json!({"amount": 0, "provider": "p", "reference": "r"}), "amount"),
            ("payments", json!({"amount": -5, "provider": "p", "reference": "r"}), "amount"),
            ("payments", json!({"amount": 9_223_372_036_854_775_807_i64, "provider": "p", "reference": "r"}), "amount"),
            ("payments", json!({"amount": "10", "provider": "p", "reference": "r"}), "amount"),
            ("payments", json!({"amount": 10, "provider": "p\u{0}x", "reference": "r"}), "provider"),
            ("payments", json!({"amount": 10, "provider": "p", "reference": "r\u{1b}[2J"}), "reference"),
            ("payments", json!({"amount": 10, "provider": "p", "reference": "x".repeat(201)}), "reference"),
            ("payments", json!({"amount": 10, "provider": "p", "reference": "r", "currency": "USD"}), "currency"),
            ("payments", json!({"amount": 10, "provider": "p", "reference": "r", "refund": true}), "refund"),
            ("fulfillments", json!({"lines": [{"sku": "MUG", "quantity": 1}], "tracking": {"url": "javascript:alert(1)"}}), "tracking.url"),
            ("fulfillments", json!({"lines": [{"sku": "MUG", "quantity": 1}], "tracking": {"url": format!("https://t.example/{}", "a".repeat(2_100))}}), "tracking.url"),
            ("fulfillments", json!({"lines": [{"sku": "MUG", "quantity": 1}], "tracking": {"carrier": "D\nHL"}}), "tracking.carrier"),
            ("fulfillments", json!({"lines": [{"sku": "MUG", "quantity": 1}], "tracking": {"url": "https://user:pw@t.example/1"}}), "tracking.url"),
            ("fulfillments", json!({"lines": []}), "lines"),
            ("fulfillments", json!({}), "lines"),
            ("cancellations", json!({"lines": [{"sku": "MUG", "quantity": 0}]}), "lines[0].quantity"),
            ("cancellations", json!({"lines": [{"sku": "MUG", "quantity": 1}, {"sku": "MUG", "quantity": 1}]}), "lines[1]"),
            ("cancellations", json!({"lines": [{"sku": "NOT-HERE", "quantity": 1}]}), "lines[0]"),
            ("refunds", json!({"amount": 10, "reason": "bad\u{7}"}), "reason"),
            ("refunds", json!({"amount": 10, "currency": "GBP"}), "currency"),
        ] {
            let refused = problem(change(&app, &id, route, body.clone()).await, StatusCode::UNPROCESSABLE_ENTITY).await;
            let fields: Vec<&str> = refused["errors"].as_array().map(|e| e.iter().filter_map(|e| e["field"].as_str()).collect()).unwrap_or_default();
            assert!(fields.contains(&field), "{route} {body}: {refused}");
        }
        // A key given twice in one body is refused, whichever value would have won.
        let twice = app.admin(Method::POST, &format!("/v1/orders/{id}/payments"))
            .header("content-type", "application/json").header("idempotency-key", "twice")
            .body(r#"{"amount": 1, "provider": "p", "reference": "r", "amount": 2500}"#).send().await.unwrap();
        let twice = problem(twice, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!((&twice["errors"][0]["field"], &twice["errors"][0]["code"]), (&json!("amount"), &json!("duplicate_key")));
        // A storefront key may not change orders; an unknown order is 404; no key is 400.
        let storefront = app.storefront(Method::POST, &format!("/v1/orders/{id}/cancellations"))
            .header("idempotency-key", "sf").json(&json!({})).send().await.unwrap();
        problem(storefront, StatusCode::FORBIDDEN).await;
        problem(change(&app, &uuid::Uuid::now_v7().to_string(), "cancellations", json!({})).await, StatusCode::NOT_FOUND).await;
        let keyless = app.admin(Method::POST, &format!("/v1/orders/{id}/cancellations")).json(&json!({})).send().await.unwrap();
        problem(keyless, StatusCode::BAD_REQUEST).await;
        // A refund of nothing captured.
        problem(change(&app, &id, "refunds", json!({"amount": 1})).await, StatusCode::CONFLICT).await;
        let order = app.read(&format!("/v1/orders/{id}")).await;
        assert_eq!(figures(&order), ("pending", "unpaid", "unfulfilled", 2_500, 0, 0, 2_500, 0));
        assert_eq!(order["lines"][0]["cancelled"], 0);
        assert_eq!(app.scalar("SELECT COUNT(*) FROM payments").await + app.scalar("SELECT COUNT(*) FROM refunds").await, 0);

        // Everything cancelled: the order is cancelled, all its stock back, and closed.
        let order = changed(change(&app, &id, "cancellations", json!({})).await, StatusCode::CREATED).await;
        assert_eq!(figures(&order), ("cancelled", "unpaid", "unfulfilled", 0, 0, 0, 0, 0));
        assert_eq!((stock(&app, "MUG").await, stock(&app, "PLATE").await), (10, 10));
        let closed = problem(change(&app, &id, "payments", json!({"amount": 1, "provider": "p", "reference": "late"})).await, StatusCode::CONFLICT).await;
        assert_eq!(closed["code"], "order_closed");
    }

    async fn concurrent_refunds_never_give_back_more_than_was_captured(app) {
        let id = two_mugs_and_a_plate(&app).await;
        let paid = app.admin(Method::POST, &format!("/v1/orders/{id}/pay")).send().await.unwrap();
        assert_eq!(paid.status(), StatusCode::OK);
        let app = Arc::new(app);
        let refunds: Vec<_> = (0..20).map(|_| {
            let (app, id) = (app.clone(), id.clone());
            tokio::spawn(async move { change(&app, &id, "refunds", json!({"amount": 300})).await.status() })
        }).collect();
        let mut accepted = 0;
        for refund in refunds {
            match refund.await.unwrap() {
                StatusCode::CREATED => accepted += 1,
                StatusCode::CONFLICT => {}
                other => panic!("a refund answered {other}"),
            }
        }
        assert_eq!(accepted, 8, "8 × 3.00 fit in 25.00, a ninth does not");
        let order = app.read(&format!("/v1/orders/{id}")).await;
        assert_eq!((order["captured"].as_i64(), order["refunded"].as_i64()), (Some(2_500), Some(2_400)));
        assert_eq!(app.scalar("SELECT COUNT(*) FROM refunds").await, 8);
    }

    async fn the_expiry_chore_never_expires_an_order_with_a_capture(app) {
        let id = two_mugs_and_a_plate(&app).await;
        app.create_product("CUP", 100, 5).await;
        let unpaid: Value = app.place_order(json!([{"sku": "CUP", "quantity": 2}])).await.json().await.unwrap();
        changed(change(&app, &id, "payments", json!({"amount": 100, "provider": "p", "reference": "part"})).await, StatusCode::CREATED).await;
        let later = orderly_domain::now() + time::Duration::hours(1);
        let settings = orderly::config::Config::load_from(None, []).unwrap().service_settings();
        let services = orderly_service::Services::new(app.store.clone(), None, settings);
        let expired = services.expire_unpaid_orders(later).await.unwrap();
        assert_eq!(expired, 1, "only the order with nothing captured");
        assert_eq!(app.read(&format!("/v1/orders/{id}")).await["status"], "pending");
        assert_eq!(app.read(&format!("/v1/orders/{}", unpaid["id"].as_str().unwrap())).await["status"], "expired");
        assert_eq!(stock(&app, "CUP").await, 5);
        let history = app.read(&format!("/v1/orders/{}/history", unpaid["id"].as_str().unwrap())).await;
        assert_eq!(history["data"][1]["type"], "order.expired");
        assert_eq!(history["data"][1]["actor"]["type"], "scheduler");
    }
}

backend_tests! {
    async fn a_previous_release_moves_an_order_as_a_whole_only_where_that_is_right(app) {
        let id = two_mugs_and_a_plate(&app).await;
        let partly_paid: Value = app.place_order(json!([{"sku": "MUG", "quantity": 1}])).await.json().await.unwrap();
        let untouched: Value = app.place_order(json!([{"sku": "MUG", "quantity": 1}])).await.json().await.unwrap();
        changed(change(&app, &id, "cancellations", json!({"lines": [{"sku": "PLATE", "quantity": 1}]})).await, StatusCode::CREATED).await;
        let partly_paid = partly_paid["id"].as_str().unwrap();
        changed(change(&app, partly_paid, "payments", json!({"amount": 100, "provider": "p", "reference": "r"})).await, StatusCode::CREATED).await;
        if app.backend != crate::helpers::Backend::Postgres {
            return; // One SQLite file is served by one release at a time.
        }
        // The previous release's moves: the status as a whole, the version untouched.
        let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
        let mv = |to: &'static str, order: String| {
            let pool = pool.clone();
            async move {
                sqlx::query("UPDATE orders SET status = $2 WHERE id = $1::uuid")
                    .bind(order)
                    .bind(to)
                    .execute(&pool)
                    .await
            }
        };
        assert!(mv("cancelled", id.clone()).await.is_err(), "its plate's stock is back already");
        assert!(mv("expired", id.clone()).await.is_err());
        assert!(mv("paid", partly_paid.to_owned()).await.is_err(), "paid in part, not in full");
        assert_eq!(app.read(&format!("/v1/orders/{id}")).await["status"], "pending");
        // Where the whole move is right, it goes through and reads as that release meant it.
        assert!(mv("cancelled", partly_paid.to_owned()).await.is_ok());
        let read = app.read(&format!("/v1/orders/{partly_paid}")).await;
        assert_eq!((&read["status"], &read["total"], &read["refund_owed"]), (&json!("cancelled"), &json!(0), &json!(100)), "{read}");
        let untouched = untouched["id"].as_str().unwrap().to_owned();
        assert!(mv("paid", untouched.clone()).await.is_ok());
        assert!(mv("fulfilled", untouched.clone()).await.is_ok());
        let read = app.read(&format!("/v1/orders/{untouched}")).await;
        assert_eq!((&read["payment_status"], &read["fulfillment_status"], &read["lines"][0]["shipped"]), (&json!("paid"), &json!("fulfilled"), &json!(1)), "{read}");
        pool.close().await;
    }
}

/// The customer's mail about each change, as the outbox holds it: one per change, named by
/// its event.
pub(crate) async fn mails(app: &TestApp) -> Vec<mail_parser::Message<'static>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(app.dir.join("outbox"))
        .into_iter()
        .flatten()
        .flatten()
    {
        if entry.file_name().to_string_lossy().starts_with("update-") {
            let raw = std::fs::read(entry.path()).unwrap();
            found.push(
                mail_parser::MessageParser::default()
                    .parse(&raw)
                    .unwrap()
                    .into_owned(),
            );
        }
    }
    found.sort_by_key(|m| m.message_id().unwrap_or_default().to_owned());
    found
}

backend_tests! {
    spawn = |backend| TestApp::spawn_with_worker(backend, &[]);

    async fn the_customer_gets_one_mail_per_shipment_cancellation_and_refund(app) {
        let id = two_mugs_and_a_plate(&app).await;
        let paid = app.admin(Method::POST, &format!("/v1/orders/{id}/pay")).send().await.unwrap();
        assert_eq!(paid.status(), StatusCode::OK);
        let shipment = json!({"lines": [{"sku": "MUG", "quantity": 2}], "tracking": {"carrier": "DHL", "number": "JD0146", "url": "https://dhl.example/t/JD0146"}});
        let key = "ship-once";
        for _ in 0..2 {
            change_with_key(&app, &id, "fulfillments", shipment.clone(), key).await;
        }
        changed(change(&app, &id, "cancellations", json!({})).await, StatusCode::CREATED).await;
        changed(change(&app, &id, "refunds", json!({"amount": 500, "reason": "<the plate> & more"})).await, StatusCode::CREATED).await;
        let mails = crate::helpers::eventually(20, "three mails to the customer", || async {
            let found = mails(&app).await;
            (found.len() >= 3).then_some(found)
        }).await;
        assert_eq!(mails.len(), 3, "one per change, none for the replayed shipment");
        let text = |m: &mail_parser::Message<'_>| m.body_text(0).unwrap().into_owned();
        let by_subject = |prefix: &str| mails.iter().find(|m| m.subject().unwrap_or_default().starts_with(prefix)).unwrap_or_else(|| panic!("a mail \"{prefix}…\""));
        let shipped = text(by_subject("Your order"));
        assert!(shipped.contains("2 x Product MUG (MUG)") && shipped.contains("https://dhl.example/t/JD0146") && shipped.contains("JD0146"), "{shipped}");
        let cancelled = text(by_subject("Items cancelled"));
        assert!(cancelled.contains("1 x Product PLATE (PLATE)") && cancelled.contains("We owe you 5.00 EUR"), "{cancelled}");
        let refunded = by_subject("A refund");
        assert!(text(refunded).contains("We have refunded 5.00 EUR") && text(refunded).contains("<the plate> & more"));
        let html = refunded.body_html(0).unwrap();
        assert!(html.contains("&lt;the plate&gt; &amp; more") && !html.contains("<the plate>"), "escaped in HTML: {html}");
        let history = app.read(&format!("/v1/orders/{id}/history")).await;
        let event_ids: Vec<String> = history["data"].as_array().unwrap().iter()
            .filter(|e| ["order.fulfillment_created", "order.units_cancelled", "order.refunded"].contains(&e["type"].as_str().unwrap()))
            .map(|e| format!("update-{}@", e["id"].as_str().unwrap()))
            .collect();
        for m in &mails {
            let message_id = m.message_id().unwrap();
            assert!(event_ids.iter().any(|id| message_id.starts_with(id.as_str())), "{message_id} names its event");
        }
    }
}
