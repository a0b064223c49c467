//! The catalogue's events: `product.created`, `product.updated` and `product.stock_adjusted`,
//! each with its actor, written only by a change that happened; and the stock a product holds
//! always accounted for by its start, the orders and the adjustments, even while orders and
//! stock changes race.

use std::sync::Arc;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{StatusCode, TestApp, backend_tests, eventually, problem};

/// Every event of the catalogue, oldest first, as the feed serves them once the worker has
/// sequenced them (on PostgreSQL the feed shows an event once it has its position).
async fn product_events(app: &TestApp) -> Vec<Value> {
    let written = app
        .scalar("SELECT COUNT(*) FROM events WHERE type LIKE 'product.%'")
        .await;
    let mut events = eventually(15, "the catalogue's events in the feed", || async {
        let mut events = Vec::new();
        for kind in [
            "product.created",
            "product.updated",
            "product.stock_adjusted",
        ] {
            let page = app.read(&format!("/v1/events?type={kind}&limit=100")).await;
            events.extend(page["data"].as_array().unwrap().iter().cloned());
        }
        (events.len() as i64 == written).then_some(events)
    })
    .await;
    events.sort_by_key(|e| e["position"].as_i64().unwrap());
    events
}

async fn patch(app: &TestApp, id: &str, body: Value) -> reqwest::Response {
    app.admin(Method::PATCH, &format!("/v1/products/{id}"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

backend_tests! {
    async fn each_catalogue_change_fires_its_event_with_its_actor(app) {
        let Some(app) = TestApp::spawn_with_worker(app.backend, &[]).await else { return };
        let created = app.create_product("MUG", 1_000, 10).await;
        let id = created["id"].as_str().unwrap();
        assert_eq!(patch(&app, id, json!({"stock": 14, "reason": "delivery from the potter"})).await.status(), StatusCode::OK);
        assert_eq!(patch(&app, id, json!({"name": "Big mug", "price": 1_200})).await.status(), StatusCode::OK);
        assert_eq!(patch(&app, id, json!({"stock": 12, "description": "chipped"})).await.status(), StatusCode::OK);
        // Nothing changes: no event.
        assert_eq!(patch(&app, id, json!({"stock": 12})).await.status(), StatusCode::OK);
        // Refused changes write nothing.
        app.create_product("PLATE", 500, 1).await;
        problem(patch(&app, id, json!({"sku": "PLATE", "stock": 1})).await, StatusCode::CONFLICT).await;
        let stale = app.admin(Method::PATCH, &format!("/v1/products/{id}"))
            .header("if-match", "\"1\"").json(&json!({"stock": 99})).send().await.unwrap();
        problem(stale, StatusCode::PRECONDITION_FAILED).await;
        problem(patch(&app, id, json!({"name": "x", "reason": "why"})).await, StatusCode::UNPROCESSABLE_ENTITY).await;
        for reason in [json!("nul\u{0}byte"), json!("x".repeat(501)), json!(""), json!(["list"])] {
            let refused = problem(patch(&app, id, json!({"stock": 50, "reason": reason})).await, StatusCode::UNPROCESSABLE_ENTITY).await;
            assert_eq!(refused["errors"][0]["field"], "reason", "{refused}");
        }
        let twice = app.admin(Method::PATCH, &format!("/v1/products/{id}"))
            .header("content-type", "application/json")
            .body(r#"{"stock": 50, "reason": "a", "reason": "b"}"#).send().await.unwrap();
        assert_eq!(problem(twice, StatusCode::UNPROCESSABLE_ENTITY).await["errors"][0]["code"], "duplicate_key");
        let archived = app.admin(Method::POST, &format!("/v1/products/{id}/archive")).send().await.unwrap();
        assert_eq!(archived.status(), StatusCode::OK);
        let again = app.admin(Method::POST, &format!("/v1/products/{id}/archive")).send().await.unwrap();
        assert_eq!(again.status(), StatusCode::OK);

        let events: Vec<Value> = product_events(&app).await.into_iter()
            .filter(|e| e["subject_id"] == json!(id)).collect();
        let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, [
            "product.created",
            "product.stock_adjusted",
            "product.updated",
            "product.updated",
            "product.stock_adjusted",
            "product.updated",
        ]);
        for event in &events {
            assert_eq!(event["data"]["actor"], json!({"type": "api_key", "id": event["data"]["actor"]["id"], "name": "test admin"}), "{event}");
            assert_eq!((&event["data"]["product_id"], &event["data"]["sku"]), (&json!(id), &json!("MUG")));
        }
        assert_eq!(events[0]["data"]["product"]["stock"], 10);
        let adjusted = &events[1]["data"];
        assert_eq!((&adjusted["stock_before"], &adjusted["stock"], &adjusted["delta"], &adjusted["reason"]),
            (&json!(10), &json!(14), &json!(4), &json!("delivery from the potter")));
        assert_eq!(events[2]["data"]["previous"], json!({"name": "Product MUG", "price": 1_000}));
        assert_eq!(events[2]["data"]["product"]["name"], "Big mug");
        assert_eq!(events[3]["data"]["previous"], json!({"description": ""}));
        assert_eq!((&events[4]["data"]["delta"], &events[4]["data"]["reason"]), (&json!(-2), &Value::Null));
        assert_eq!(events[5]["data"]["previous"], json!({"active": true, "archived": false}));
        assert!(events[5]["data"]["product"]["archived_at"].is_string());
    }

    async fn stock_is_always_its_start_less_orders_plus_adjustments_while_both_race(app) {
        let Some(app) = TestApp::spawn_with_worker(app.backend, &[]).await else { return };
        let created = app.create_product("RACE", 100, 200).await;
        let id = created["id"].as_str().unwrap().to_owned();
        let app = Arc::new(app);
        let buyers: Vec<_> = (0..4).map(|buyer| {
            let app = app.clone();
            tokio::spawn(async move {
                let mut placed = 0;
                for i in 0..20 {
                    let quantity = 1 + (buyer + i) % 5;
                    let answer = app.place_order(json!([{"sku": "RACE", "quantity": quantity}])).await;
                    match answer.status() {
                        StatusCode::CREATED => placed += quantity,
                        StatusCode::CONFLICT | StatusCode::UNPROCESSABLE_ENTITY => {}
                        other => panic!("an order answered {other}"),
                    }
                }
                placed
            })
        }).collect();
        let adjuster = {
            let (app, id) = (app.clone(), id.clone());
            tokio::spawn(async move {
                for i in 0..20_i64 {
                    let stock = 20 + (i * 37) % 90;
                    assert_eq!(patch(&app, &id, json!({"stock": stock, "reason": "recount"})).await.status(), StatusCode::OK);
                }
            })
        };
        let mut ordered = 0;
        for buyer in buyers {
            ordered += buyer.await.unwrap();
        }
        adjuster.await.unwrap();
        let adjusted: i64 = product_events(&app).await.iter()
            .filter(|e| e["type"] == "product.stock_adjusted")
            .map(|e| e["data"]["delta"].as_i64().unwrap())
            .sum();
        let stock = app.read(&format!("/v1/products/{id}")).await["stock"].as_i64().unwrap();
        assert!(ordered > 0, "some orders went through");
        assert_eq!(stock, 200 - ordered + adjusted, "ordered {ordered}, adjusted {adjusted}");
        assert!(stock >= 0);
        assert_eq!(app.scalar("SELECT CAST(COALESCE(SUM(quantity), 0) AS BIGINT) FROM order_lines").await, ordered);
    }
}
