//! The order page's lifecycle forms: a capture, a shipment, units cancelled and a refund, each
//! recorded once however often the form is sent, refused when the order changed since the page
//! was drawn, refused with the API's own rules, and in the history and the audit log with the
//! operator as their actor.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::Browser;
use crate::helpers::backend_tests;

/// A form's hidden `name` field as the page drew it.
fn hidden(page: &str, form: &str, name: &str) -> String {
    let start = page.find(&format!("/changes/{form}\"")).expect("the form");
    let at = page[start..]
        .find(&format!("name=\"{name}\" value=\""))
        .expect("the field")
        + start;
    let at = at + name.len() + 15;
    page[at..at + page[at..].find('"').unwrap()].to_owned()
}

backend_tests! {
    async fn the_order_page_records_each_step_once_with_the_operator_as_actor(app) {
        app.create_product("TEA", 1_000, 10).await;
        let order: Value = app.place_order(json!([{"sku": "TEA", "quantity": 3}])).await.json().await.unwrap();
        let id = order["id"].as_str().unwrap().to_owned();
        let here = format!("/console/orders/{id}");
        let mut browser = Browser::new(&app);
        browser.sign_in(&app.admin_key.clone(), &[]).await;

        let (_, page, _) = browser.get(&here).await;
        let (csrf, version, key) = (hidden(&page, "payments", "csrf"), hidden(&page, "payments", "version"), hidden(&page, "payments", "key"));
        assert_eq!(version, "1");
        let capture = [("csrf", csrf.as_str()), ("version", "1"), ("key", key.as_str()), ("amount", "30.00"), ("provider", "manual"), ("reference", "till-7")];
        for _ in 0..2 {
            let sent = browser.post(&format!("{here}/changes/payments"), &capture).await;
            assert_eq!(sent.status(), StatusCode::SEE_OTHER);
        }
        let paid = app.read(&format!("/v1/orders/{id}")).await;
        assert_eq!((&paid["status"], &paid["captured"]), (&json!("paid"), &json!(3_000)), "one capture: {paid}");

        // A form drawn before that change is refused, and changes nothing.
        let stale = [("csrf", csrf.as_str()), ("version", "1"), ("key", "another"), ("units.TEA", "1")];
        assert_eq!(browser.post(&format!("{here}/changes/cancellations"), &stale).await.status(), StatusCode::PRECONDITION_FAILED);
        // The API's rules hold here too: more units than are open, an amount that is no amount.
        let (_, page, _) = browser.get(&here).await;
        let version = hidden(&page, "fulfillments", "version");
        let too_many = [("csrf", csrf.as_str()), ("version", version.as_str()), ("key", "k1"), ("units.TEA", "4")];
        assert_eq!(browser.post(&format!("{here}/changes/fulfillments"), &too_many).await.status(), StatusCode::CONFLICT);
        let no_amount = [("csrf", csrf.as_str()), ("version", version.as_str()), ("key", "k2"), ("amount", "ten")];
        assert_eq!(browser.post(&format!("{here}/changes/refunds"), &no_amount).await.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let bad_url = [("csrf", csrf.as_str()), ("version", version.as_str()), ("key", "k3"), ("units.TEA", "1"), ("url", "javascript:alert(1)")];
        assert_eq!(browser.post(&format!("{here}/changes/fulfillments"), &bad_url).await.status(), StatusCode::UNPROCESSABLE_ENTITY);

        let ship = [("csrf", csrf.as_str()), ("version", version.as_str()), ("key", "k4"), ("units.TEA", "2"), ("carrier", "<b>Post</b>"), ("url", "https://post.example/t/1")];
        assert_eq!(browser.post(&format!("{here}/changes/fulfillments"), &ship).await.status(), StatusCode::SEE_OTHER);
        let cancel = [("csrf", csrf.as_str()), ("version", "3"), ("key", "k5"), ("units.TEA", "1")];
        assert_eq!(browser.post(&format!("{here}/changes/cancellations"), &cancel).await.status(), StatusCode::SEE_OTHER);
        let refund = [("csrf", csrf.as_str()), ("version", "4"), ("key", "k6"), ("amount", "10"), ("reason", "out of stock")];
        assert_eq!(browser.post(&format!("{here}/changes/refunds"), &refund).await.status(), StatusCode::SEE_OTHER);
        // A NUL in a field is refused before anything is read from the form.
        let nul = [("csrf", csrf.as_str()), ("version", "5"), ("key", "k8"), ("amount", "1"), ("reason", "a\u{0}b")];
        assert_eq!(browser.post(&format!("{here}/changes/refunds"), &nul).await.status(), StatusCode::BAD_REQUEST);
        // Without the CSRF token, nothing.
        let forged = [("version", "5"), ("key", "k7"), ("amount", "1")];
        assert_eq!(browser.post(&format!("{here}/changes/refunds"), &forged).await.status(), StatusCode::FORBIDDEN);

        let order = app.read(&format!("/v1/orders/{id}")).await;
        assert_eq!(
            (&order["status"], &order["total"], &order["refunded"], &order["refund_owed"], &order["lines"][0]["shipped"], &order["lines"][0]["cancelled"]),
            (&json!("fulfilled"), &json!(2_000), &json!(1_000), &json!(0), &json!(2), &json!(1)),
            "{order}"
        );
        let history = app.read(&format!("/v1/orders/{id}/history")).await;
        let console_steps = history["data"].as_array().unwrap().iter().filter(|e| e["actor"]["type"] == "console").count();
        assert_eq!(console_steps, 6, "capture, paid, shipment, cancellation, fulfilled, refund: {history}");
        let (_, page, _) = browser.get(&here).await;
        assert!(page.contains(r#"by <span class="actor" title="console">test admin</span>"#), "the history names the operator");
        assert!(!page.contains("<b>Post</b>"), "text from a form is escaped");
        let (_, audit, _) = browser.get("/console/audit").await;
        for action in ["order.payments", "order.fulfillments", "order.cancellations", "order.refunds"] {
            assert!(audit.contains(&format!("<code>{action}</code>")), "{action} in the audit log");
        }
        assert_eq!(app.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'order.payments'").await, 1, "a capture sent twice is audited once");
    }
}

backend_tests! {
    async fn the_order_page_edits_lines_and_asks_for_and_receives_returns(app) {
        app.create_product("MUG", 1_000, 10).await;
        app.create_product("PLATE", 500, 10).await;
        let order: Value = app.place_order(json!([{"sku": "MUG", "quantity": 2}])).await.json().await.unwrap();
        let id = order["id"].as_str().unwrap().to_owned();
        let here = format!("/console/orders/{id}");
        let mut browser = Browser::new(&app);
        browser.sign_in(&app.admin_key.clone(), &[]).await;

        // Three mugs instead of two, and a plate added by its SKU.
        let (_, page, _) = browser.get(&here).await;
        let (csrf, version) = (hidden(&page, "edit", "csrf"), hidden(&page, "edit", "version"));
        let edit = [("csrf", csrf.as_str()), ("version", version.as_str()), ("key", "e1"), ("units.MUG", "3"), ("add_sku", "PLATE"), ("add_quantity", "1")];
        assert_eq!(browser.post(&format!("{here}/changes/edit"), &edit).await.status(), StatusCode::SEE_OTHER);
        let edited = app.read(&format!("/v1/orders/{id}")).await;
        assert_eq!((&edited["total"], &edited["lines"][0]["quantity"], &edited["lines"][1]["sku"]), (&json!(3_500), &json!(3), &json!("PLATE")), "{edited}");
        for action in ["pay", "fulfill"] {
            let done = app.admin(reqwest::Method::POST, &format!("/v1/orders/{id}/{action}")).send().await.unwrap();
            assert_eq!(done.status(), StatusCode::OK);
        }
        let (_, page, _) = browser.get(&here).await;
        assert!(!page.contains("/changes/edit\""), "no edit once shipped");

        // A mug and the plate asked back; the mug restocked, the plate not; refunded.
        let version = hidden(&page, "returns", "version");
        let ask = [("csrf", csrf.as_str()), ("version", version.as_str()), ("key", "r1"), ("units.MUG", "1"), ("units.PLATE", "1"), ("reason", "changed their mind")];
        assert_eq!(browser.post(&format!("{here}/changes/returns"), &ask).await.status(), StatusCode::SEE_OTHER);
        let asked = app.read(&format!("/v1/orders/{id}")).await;
        let ret = asked["returns"][0]["id"].as_str().unwrap().to_owned();
        let (_, page, _) = browser.get(&here).await;
        let form = format!("receive-{ret}");
        let version = hidden(&page, &form, "version");
        let receive = [("csrf", csrf.as_str()), ("version", version.as_str()), ("key", "r2"), ("units.MUG", "1"), ("restock.MUG", "on"), ("units.PLATE", "1"), ("refund", "due")];
        assert_eq!(browser.post(&format!("{here}/changes/{form}"), &receive).await.status(), StatusCode::SEE_OTHER);
        let received = app.read(&format!("/v1/orders/{id}")).await;
        let figures = |sku: &str| {
            let line = received["lines"].as_array().unwrap().iter().find(|l| l["sku"] == sku).unwrap();
            (line["returned"].as_i64().unwrap(), line["restocked"].as_i64().unwrap())
        };
        assert_eq!((figures("MUG"), figures("PLATE")), ((1, 1), (1, 0)));
        assert_eq!((&received["refunded"], &received["returns"][0]["status"]), (&json!(1_500), &json!("received")));
        let history = app.read(&format!("/v1/orders/{id}/history")).await;
        let by_console: Vec<&str> = history["data"].as_array().unwrap().iter()
            .filter(|e| e["actor"]["type"] == "console").map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(by_console, ["order.edited", "order.return_requested", "order.return_received", "order.refunded"]);
        let (_, page, _) = browser.get(&here).await;
        assert!(page.contains("changed their mind") && page.contains("1 restocked"), "the returns on the page");
        assert!(page.contains("<h2>Record</h2>"), "a refund can still be recorded");
        // A cancelled order takes nothing more: no section of forms, not even its heading.
        let other: Value = app.place_order(json!([{"sku": "MUG", "quantity": 1}])).await.json().await.unwrap();
        let other = other["id"].as_str().unwrap().to_owned();
        let cancelled = app.admin(reqwest::Method::POST, &format!("/v1/orders/{other}/cancel")).send().await.unwrap();
        assert_eq!(cancelled.status(), StatusCode::OK);
        let (_, page, _) = browser.get(&format!("/console/orders/{other}")).await;
        assert!(!page.contains("<h2>Record</h2>"), "nothing to record on a cancelled order");
    }
}
