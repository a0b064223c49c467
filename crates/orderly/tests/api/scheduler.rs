//! The scheduler: one tick, one job, whatever the number of workers; and the order-expiry
//! chore it runs.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, StatusCode, TestApp, eventually};

async fn expiry(backend: Backend) {
    let Some(app) = TestApp::spawn_with_worker(
        backend,
        &[
            ("ORDERLY_WORKER__SCHEDULER", "true"),
            ("ORDERLY_ORDERS__PAYMENT_TIMEOUT_SECS", "1"),
            ("ORDERLY_SCHEDULES__EXPIRE_ORDERS__CRON", "* * * * * *"),
        ],
    )
    .await
    else {
        return;
    };
    app.create_product("EXP", 100, 10).await;
    let unpaid: Value = app
        .place_order(json!([{"sku": "EXP", "quantity": 3}]))
        .await
        .json()
        .await
        .unwrap();
    let paid: Value = app
        .place_order(json!([{"sku": "EXP", "quantity": 2}]))
        .await
        .json()
        .await
        .unwrap();
    let pay = app
        .admin(
            Method::POST,
            &format!("/v1/orders/{}/pay", paid["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(pay.status(), StatusCode::OK);
    let unpaid_path = format!("/v1/orders/{}", unpaid["id"].as_str().unwrap());
    eventually(15, "the unpaid order to expire", || async {
        let order: Value = app
            .admin(Method::GET, &unpaid_path)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (order["status"] == "expired").then_some(())
    })
    .await;
    let product: Value = app
        .admin(Method::GET, "/v1/products/by-sku/EXP")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        product["stock"], 8,
        "the expired order's 3 units came back; the paid order keeps its 2"
    );
    let paid_now: Value = app
        .admin(
            Method::GET,
            &format!("/v1/orders/{}", paid["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(paid_now["status"], "paid");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM events WHERE type = 'order.expired'")
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpaid_orders_expire_on_sqlite() {
    expiry(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpaid_orders_expire_on_postgres() {
    expiry(Backend::Postgres).await;
}
