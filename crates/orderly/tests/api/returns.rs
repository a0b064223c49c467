//! Returns over HTTP: shipped units asked back, received (restocked or not, refunded or not),
//! never more than shipped, received once; their events with actors, the customer's mail,
//! idempotency, and hostile input that changes nothing.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{StatusCode, TestApp, backend_tests, eventually, problem};
use crate::lifecycle::{change, change_with_key, changed, mails, stock, two_mugs_and_a_plate};

/// Two mugs at 10.00 and a plate at 5.00, paid and shipped in full; its id.
async fn shipped_order(app: &TestApp) -> String {
    let id = two_mugs_and_a_plate(app).await;
    let paid = app
        .admin(Method::POST, &format!("/v1/orders/{id}/pay"))
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), StatusCode::OK);
    let shipped = app
        .admin(Method::POST, &format!("/v1/orders/{id}/fulfill"))
        .send()
        .await
        .unwrap();
    assert_eq!(shipped.status(), StatusCode::OK);
    id
}

fn return_id(order: &Value, n: usize) -> String {
    order["returns"][n]["id"].as_str().unwrap().to_owned()
}

fn line<'a>(order: &'a Value, sku: &str) -> &'a Value {
    order["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["sku"] == sku)
        .unwrap()
}

backend_tests! {
    async fn a_unit_comes_back_is_restocked_and_refunded(app) {
        let id = shipped_order(&app).await;
        let mugs = stock(&app, "MUG").await;
        let asked = json!({"lines": [{"sku": "MUG", "quantity": 1}], "reason": "chipped on arrival"});
        let order = changed(change(&app, &id, "returns", asked).await, StatusCode::CREATED).await;
        assert_eq!(order["returns"][0]["status"], "requested");
        assert_eq!(order["returns"][0]["reason"], "chipped on arrival");
        assert_eq!((&line(&order, "MUG")["return_requested"], &line(&order, "MUG")["returned"]), (&json!(1), &json!(0)));
        assert_eq!(order["total"], 2_500, "a unit only asked for stays in the total");
        assert_eq!(order["status"], "fulfilled", "a return moves no status");
        // One mug left to return: two are not.
        let too_many = problem(change(&app, &id, "returns", json!({"lines": [{"sku": "MUG", "quantity": 2}]})).await, StatusCode::CONFLICT).await;
        assert_eq!(too_many["code"], "not_returnable");

        let ret = return_id(&order, 0);
        let received = json!({"lines": [{"sku": "MUG", "quantity": 1, "restock": true}], "refund": true});
        let order = changed(change(&app, &id, &format!("returns/{ret}/receive"), received.clone()).await, StatusCode::CREATED).await;
        assert_eq!(order["returns"][0]["status"], "received");
        assert_eq!(order["returns"][0]["lines"][0]["received"], 1);
        assert!(order["returns"][0]["refund_id"].is_string(), "{order}");
        assert_eq!((&line(&order, "MUG")["returned"], &line(&order, "MUG")["restocked"]), (&json!(1), &json!(1)));
        assert_eq!(line(&order, "MUG")["return_requested"], 0);
        assert_eq!((order["refunded"].as_i64(), order["payment_status"].as_str()), (Some(1_000), Some("partially_refunded")));
        // The mug left the total and its money went back: nothing due, nothing owed.
        assert_eq!((order["total"].as_i64(), order["balance_due"].as_i64(), order["refund_owed"].as_i64()), (Some(1_500), Some(0), Some(0)));
        assert_eq!(stock(&app, "MUG").await, mugs + 1);
        let again = problem(change(&app, &id, &format!("returns/{ret}/receive"), received).await, StatusCode::CONFLICT).await;
        assert_eq!(again["code"], "return_received");

        let history = app.read(&format!("/v1/orders/{id}/history")).await;
        let steps: Vec<(&str, &str)> = history["data"].as_array().unwrap().iter()
            .map(|e| (e["type"].as_str().unwrap(), e["actor"]["type"].as_str().unwrap_or("-")))
            .skip(5)
            .collect();
        assert_eq!(steps, [
            ("order.return_requested", "api_key"),
            ("order.return_received", "api_key"),
            ("order.refunded", "api_key"),
        ]);
        assert_eq!(app.scalar("SELECT COUNT(*) FROM refunds").await, 1);
        assert_eq!(app.scalar("SELECT COUNT(*) FROM order_returns").await, 1);
    }

    async fn what_does_not_come_back_may_be_asked_for_again_and_nothing_is_restocked_unasked(app) {
        let id = shipped_order(&app).await;
        let mugs = stock(&app, "MUG").await;
        let order = changed(change(&app, &id, "returns", json!({"lines": [{"sku": "MUG", "quantity": 2}]})).await, StatusCode::CREATED).await;
        let ret = return_id(&order, 0);
        // One of the two came back, broken: not restocked, and no refund asked for.
        let got = json!({"lines": [{"sku": "MUG", "quantity": 1, "restock": false}]});
        let order = changed(change(&app, &id, &format!("returns/{ret}/receive"), got).await, StatusCode::CREATED).await;
        assert_eq!((&line(&order, "MUG")["returned"], &line(&order, "MUG")["restocked"]), (&json!(1), &json!(0)));
        assert_eq!(line(&order, "MUG")["return_requested"], 0, "the other mug stayed with the customer");
        assert_eq!(order["refunded"], 0);
        assert_eq!((order["total"].as_i64(), order["refund_owed"].as_i64()), (Some(1_500), Some(1_000)), "what it cost is owed until refunded");
        assert!(order["returns"][0].get("refund_id").is_none(), "{order}");
        assert_eq!(stock(&app, "MUG").await, mugs);
        // The mug that stayed with the customer may be asked back again.
        let order = changed(change(&app, &id, "returns", json!({"lines": [{"sku": "MUG", "quantity": 1}]})).await, StatusCode::CREATED).await;
        assert_eq!((&line(&order, "MUG")["returned"], &line(&order, "MUG")["return_requested"]), (&json!(1), &json!(1)));
        assert_eq!(order["returns"].as_array().unwrap().len(), 2);
    }

    async fn a_receipt_is_idempotent_and_a_refused_one_changes_nothing(app) {
        let id = shipped_order(&app).await;
        let order = changed(change(&app, &id, "returns", json!({"lines": [{"sku": "PLATE", "quantity": 1}]})).await, StatusCode::CREATED).await;
        let ret = return_id(&order, 0);
        let route = format!("returns/{ret}/receive");
        let before = app.read(&format!("/v1/orders/{id}")).await;
        // Hostile and impossible receipts: each refused, nothing changed.
        for (body, status, code) in [
            (json!({"lines": [{"sku": "PLATE", "quantity": 2}]}), StatusCode::CONFLICT, "not_on_return"),
            (json!({"lines": [{"sku": "MUG", "quantity": 1}]}), StatusCode::CONFLICT, "not_on_return"),
            (json!({"lines": [{"sku": "PLATE", "quantity": 1}], "refund": 501}), StatusCode::CONFLICT, "over_refundable"),
            (json!({"lines": [{"sku": "NOPE", "quantity": 1}]}), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            (json!({"lines": [{"sku": "PLATE", "quantity": 1, "restock": "yes"}]}), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            (json!({"lines": [{"sku": "PLATE", "quantity": 1}], "refund": -5}), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            (json!({"lines": [{"sku": "PLATE", "quantity": 1}], "refund": {"amount": 5}}), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            (json!({"lines": [{"sku": "PLATE", "quantity": 1}], "extra": 1}), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            (json!({"lines": []}), StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        ] {
            let refused = problem(change(&app, &id, &route, body.clone()).await, status).await;
            assert_eq!(refused["code"], code, "{body}: {refused}");
        }
        for bad in [json!({"lines": [{"sku": "PLATE", "quantity": 1}], "reason": "nul\u{0}"}), json!({"lines": [{"sku": "MUG", "quantity": 0}]})] {
            problem(change(&app, &id, "returns", bad).await, StatusCode::UNPROCESSABLE_ENTITY).await;
        }
        for stale_route in [route.as_str(), "returns"] {
            let stale = app.admin(Method::POST, &format!("/v1/orders/{id}/{stale_route}"))
                .header("idempotency-key", format!("stale-{stale_route}")).header("if-match", "\"1\"")
                .json(&json!({"lines": [{"sku": "PLATE", "quantity": 1}]})).send().await.unwrap();
            problem(stale, StatusCode::PRECONDITION_FAILED).await;
        }
        let unknown = format!("returns/{}/receive", uuid::Uuid::now_v7());
        assert_eq!(problem(change(&app, &id, &unknown, json!({"lines": [{"sku": "PLATE", "quantity": 1}]})).await, StatusCode::NOT_FOUND).await["code"], "not_found");
        problem(change(&app, &id, "returns/not-a-uuid/receive", json!({"lines": [{"sku": "PLATE", "quantity": 1}]})).await, StatusCode::NOT_FOUND).await;
        let twice = app.admin(Method::POST, &format!("/v1/orders/{id}/{route}"))
            .header("idempotency-key", "dup").header("content-type", "application/json")
            .body(r#"{"lines": [{"sku": "PLATE", "quantity": 1}], "refund": true, "refund": 1}"#).send().await.unwrap();
        assert_eq!(problem(twice, StatusCode::UNPROCESSABLE_ENTITY).await["errors"][0]["code"], "duplicate_key");
        assert_eq!(app.read(&format!("/v1/orders/{id}")).await, before, "nothing changed");

        // The same receipt sent twice with its key is recorded once; another body with the key is 422.
        let body = json!({"lines": [{"sku": "PLATE", "quantity": 1}], "refund": 500});
        let first = change_with_key(&app, &id, &route, body.clone(), "receive-once").await;
        assert_eq!(first.status(), StatusCode::CREATED);
        let first: Value = first.json().await.unwrap();
        let replay = change_with_key(&app, &id, &route, body, "receive-once").await;
        assert_eq!(replay.headers()["idempotent-replayed"], "true");
        assert_eq!(replay.json::<Value>().await.unwrap(), first);
        let reused = change_with_key(&app, &id, &route, json!({"lines": [{"sku": "PLATE", "quantity": 1}]}), "receive-once").await;
        assert_eq!(problem(reused, StatusCode::UNPROCESSABLE_ENTITY).await["code"], "idempotency_key_reused");
        assert_eq!(app.scalar("SELECT COUNT(*) FROM refunds").await, 1);
        // Units that never shipped cannot be returned.
        let unshipped = two_mugs_and_a_plate_again(&app).await;
        let refused = problem(change(&app, &unshipped, "returns", json!({"lines": [{"sku": "MUG", "quantity": 1}]})).await, StatusCode::CONFLICT).await;
        assert_eq!(refused["code"], "not_returnable");
    }
}

/// Another order of the same two products, placed and nothing more.
async fn two_mugs_and_a_plate_again(app: &TestApp) -> String {
    let placed = app
        .place_order(json!([{"sku": "MUG", "quantity": 1}]))
        .await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    placed.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

backend_tests! {
    spawn = |backend| TestApp::spawn_with_worker(backend, &[]);

    async fn the_customer_hears_once_when_the_return_is_received_and_once_of_its_refund(app) {
        let id = shipped_order(&app).await;
        let order = changed(change(&app, &id, "returns", json!({"lines": [{"sku": "MUG", "quantity": 2}]})).await, StatusCode::CREATED).await;
        let ret = return_id(&order, 0);
        let got = json!({"lines": [{"sku": "MUG", "quantity": 2, "restock": true}], "refund": true});
        changed(change(&app, &id, &format!("returns/{ret}/receive"), got).await, StatusCode::CREATED).await;
        let mails = eventually(20, "the return's two mails", || async {
            let found = mails(&app).await;
            (found.len() >= 3).then_some(found)
        }).await;
        // The shipment's, the return's and the refund's: none for the request itself.
        assert_eq!(mails.len(), 3);
        let subjects: Vec<String> = mails.iter().map(|m| m.subject().unwrap_or_default().to_owned()).collect();
        let returned = mails.iter().find(|m| m.subject().unwrap_or_default().starts_with("Your return")).unwrap_or_else(|| panic!("{subjects:?}"));
        let text = returned.body_text(0).unwrap();
        assert!(text.contains("2 x Product MUG (MUG)") && text.contains("refund follows"), "{text}");
        assert!(subjects.iter().any(|s| s.starts_with("A refund")), "{subjects:?}");
    }
}
