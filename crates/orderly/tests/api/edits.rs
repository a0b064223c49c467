//! Edits before shipping over HTTP: the lines replaced by a new full set, stock taken and
//! given back all or nothing, today's price for an added product, the totals (and on a paid
//! order `balance_due` or `refund_owed`) following; refused once a unit has shipped; the
//! event with the lines before and after; the customer's mail; hostile input.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{StatusCode, TestApp, backend_tests, eventually, problem};
use crate::lifecycle::{changed, mails, stock, two_mugs_and_a_plate};

async fn edit(app: &TestApp, order: &str, body: Value) -> reqwest::Response {
    edit_with_key(app, order, body, &uuid::Uuid::new_v4().to_string()).await
}

async fn edit_with_key(app: &TestApp, order: &str, body: Value, key: &str) -> reqwest::Response {
    app.admin(Method::PATCH, &format!("/v1/orders/{order}"))
        .header("idempotency-key", key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn line<'a>(order: &'a Value, sku: &str) -> &'a Value {
    order["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["sku"] == sku)
        .unwrap_or_else(|| panic!("no line {sku} in {order}"))
}

backend_tests! {
    async fn an_edit_drops_adds_and_changes_lines_with_their_stock(app) {
        let id = two_mugs_and_a_plate(&app).await;
        app.create_product("CUP", 300, 5).await;
        let (mugs, plates, cups) = (stock(&app, "MUG").await, stock(&app, "PLATE").await, stock(&app, "CUP").await);
        let order = changed(edit(&app, &id, json!({"lines": [{"sku": "MUG", "quantity": 3}, {"sku": "CUP", "quantity": 2}]})).await, StatusCode::CREATED).await;
        assert_eq!((&line(&order, "MUG")["quantity"], &line(&order, "MUG")["cancelled"]), (&json!(3), &json!(0)));
        assert_eq!((&line(&order, "PLATE")["quantity"], &line(&order, "PLATE")["cancelled"]), (&json!(1), &json!(1)));
        assert_eq!((&line(&order, "CUP")["quantity"], &line(&order, "CUP")["unit_price"]), (&json!(2), &json!(300)));
        assert_eq!((order["total"].as_i64(), order["balance_due"].as_i64()), (Some(3_600), Some(3_600)));
        assert_eq!((stock(&app, "MUG").await, stock(&app, "PLATE").await, stock(&app, "CUP").await), (mugs - 1, plates + 1, cups - 2));
        // Read back as answered.
        let read = app.read(&format!("/v1/orders/{id}")).await;
        assert_eq!(read, order);
        let history = app.read(&format!("/v1/orders/{id}/history")).await;
        let edited = history["data"].as_array().unwrap().iter().find(|e| e["type"] == "order.edited").unwrap();
        assert_eq!(edited["actor"]["type"], "api_key");
        let quantities = |field: &str| -> Vec<(String, i64)> {
            edited["data"][field].as_array().unwrap().iter()
                .map(|l| (l["sku"].as_str().unwrap().to_owned(), l["quantity"].as_i64().unwrap())).collect()
        };
        assert_eq!(quantities("lines_before"), [("MUG".to_owned(), 2), ("PLATE".to_owned(), 1)]);
        assert_eq!(quantities("lines_after"), [("MUG".to_owned(), 3), ("PLATE".to_owned(), 0), ("CUP".to_owned(), 2)]);
    }

    async fn on_a_paid_order_the_difference_is_due_or_owed(app) {
        let id = two_mugs_and_a_plate(&app).await;
        let paid = app.admin(Method::POST, &format!("/v1/orders/{id}/pay")).send().await.unwrap();
        assert_eq!(paid.status(), StatusCode::OK);
        let order = changed(edit(&app, &id, json!({"lines": [{"sku": "MUG", "quantity": 1}, {"sku": "PLATE", "quantity": 1}]})).await, StatusCode::CREATED).await;
        assert_eq!((order["total"].as_i64(), order["balance_due"].as_i64(), order["refund_owed"].as_i64()), (Some(1_500), Some(0), Some(1_000)));
        let order = changed(edit(&app, &id, json!({"lines": [{"sku": "MUG", "quantity": 4}, {"sku": "PLATE", "quantity": 1}]})).await, StatusCode::CREATED).await;
        assert_eq!((order["total"].as_i64(), order["balance_due"].as_i64(), order["refund_owed"].as_i64()), (Some(4_500), Some(2_000), Some(0)));
        assert_eq!(order["status"], "paid", "a paid order stays paid; the difference is due");
        // Nothing ships while a balance is due; once it is paid, the order ships and is no longer editable.
        changed(crate::lifecycle::change(&app, &id, "payments", json!({"amount": 2_000, "provider": "stripe", "reference": "ch_more"})).await, StatusCode::CREATED).await;
        changed(crate::lifecycle::change(&app, &id, "fulfillments", json!({"lines": [{"sku": "MUG", "quantity": 1}]})).await, StatusCode::CREATED).await;
        let late = problem(edit(&app, &id, json!({"lines": [{"sku": "MUG", "quantity": 4}]})).await, StatusCode::CONFLICT).await;
        assert_eq!(late["code"], "order_shipped");
    }

    async fn an_edit_that_cannot_be_satisfied_changes_nothing(app) {
        let id = two_mugs_and_a_plate(&app).await;
        app.create_product("CUP", 300, 1).await;
        let retired = app.create_product("OLD", 100, 10).await;
        let archived = app.admin(Method::POST, &format!("/v1/products/{}/archive", retired["id"].as_str().unwrap())).send().await.unwrap();
        assert_eq!(archived.status(), StatusCode::OK);
        let before = app.read(&format!("/v1/orders/{id}")).await;
        let stocks = (stock(&app, "MUG").await, stock(&app, "PLATE").await, stock(&app, "CUP").await);
        let short = problem(edit(&app, &id, json!({"lines": [{"sku": "MUG", "quantity": 1}, {"sku": "CUP", "quantity": 2}]})).await, StatusCode::CONFLICT).await;
        assert_eq!(short["code"], "insufficient_stock");
        let mugs_short = problem(edit(&app, &id, json!({"lines": [{"sku": "MUG", "quantity": 1_000}]})).await, StatusCode::CONFLICT).await;
        assert_eq!(mugs_short["code"], "insufficient_stock");
        for (body, field_code) in [
            (json!({"lines": [{"sku": "NOPE", "quantity": 1}]}), "not_orderable"),
            (json!({"lines": [{"sku": "OLD", "quantity": 1}]}), "not_orderable"),
            (json!({"lines": []}), "invalid_length"),
            (json!({"lines": [{"sku": "MUG", "quantity": 1}, {"sku": "MUG", "quantity": 2}]}), "duplicate_product"),
            (json!({"lines": [{"sku": "MUG", "quantity": 0}]}), "out_of_range"),
            (json!({"lines": [{"sku": "MU\u{0}G", "quantity": 1}]}), "invalid_format"),
            (json!({"lines": [{"sku": "MUG", "quantity": 1}], "note": "x"}), "unknown_field"),
            (json!({}), "required"),
        ] {
            let refused = problem(edit(&app, &id, body.clone()).await, StatusCode::UNPROCESSABLE_ENTITY).await;
            assert_eq!(refused["errors"][0]["code"], field_code, "{body}: {refused}");
        }
        let stale = app.admin(Method::PATCH, &format!("/v1/orders/{id}"))
            .header("idempotency-key", "stale").header("if-match", "\"0\"")
            .json(&json!({"lines": [{"sku": "MUG", "quantity": 1}]})).send().await.unwrap();
        problem(stale, StatusCode::PRECONDITION_FAILED).await;
        let twice = app.admin(Method::PATCH, &format!("/v1/orders/{id}"))
            .header("idempotency-key", "dup").header("content-type", "application/json")
            .body(r#"{"lines": [{"sku": "MUG", "quantity": 1, "quantity": 2}]}"#).send().await.unwrap();
        assert_eq!(problem(twice, StatusCode::UNPROCESSABLE_ENTITY).await["errors"][0]["code"], "duplicate_key");
        let no_key = app.admin(Method::PATCH, &format!("/v1/orders/{id}")).json(&json!({"lines": [{"sku": "MUG", "quantity": 1}]})).send().await.unwrap();
        assert_eq!(no_key.status(), StatusCode::BAD_REQUEST);
        assert_eq!(app.read(&format!("/v1/orders/{id}")).await, before, "nothing changed");
        assert_eq!((stock(&app, "MUG").await, stock(&app, "PLATE").await, stock(&app, "CUP").await), stocks);
        problem(edit(&app, &uuid::Uuid::now_v7().to_string(), json!({"lines": [{"sku": "MUG", "quantity": 1}]})).await, StatusCode::NOT_FOUND).await;

        // Sent twice with its key, applied once; another body with the key is refused.
        let body = json!({"lines": [{"sku": "MUG", "quantity": 1}]});
        let first: Value = edit_with_key(&app, &id, body.clone(), "edit-once").await.json().await.unwrap();
        let replay = edit_with_key(&app, &id, body, "edit-once").await;
        assert_eq!(replay.headers()["idempotent-replayed"], "true");
        assert_eq!(replay.json::<Value>().await.unwrap(), first);
        assert_eq!(stock(&app, "MUG").await, stocks.0 + 1);
        let reused = edit_with_key(&app, &id, json!({"lines": [{"sku": "MUG", "quantity": 2}]}), "edit-once").await;
        assert_eq!(problem(reused, StatusCode::UNPROCESSABLE_ENTITY).await["code"], "idempotency_key_reused");
    }
}

backend_tests! {
    spawn = |backend| TestApp::spawn_with_worker(backend, &[]);

    async fn the_customer_gets_one_mail_with_the_order_as_it_now_stands(app) {
        let id = two_mugs_and_a_plate(&app).await;
        changed(edit(&app, &id, json!({"lines": [{"sku": "MUG", "quantity": 1}]})).await, StatusCode::CREATED).await;
        let found = eventually(20, "the edit's mail", || async {
            let found = mails(&app).await;
            (!found.is_empty()).then_some(found)
        }).await;
        assert_eq!(found.len(), 1);
        assert!(found[0].subject().unwrap_or_default().ends_with("has changed"), "{:?}", found[0].subject());
        let text = found[0].body_text(0).unwrap();
        assert!(text.contains("1 x Product MUG (MUG)") && !text.contains("PLATE") && text.contains("10.00"), "{text}");
    }
}
