//! The scheduler: one tick, one job, whatever the number of workers; and the order-expiry
//! chore it runs.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use orderly_queue::{JobKind, kinds};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, StatusCode, TestApp, eventually, outbox_message};

async fn expiry(backend: Backend) {
    let Some(app) = TestApp::spawn_with_worker(
        backend,
        &[
            ("ORDERLY_WORKER__SCHEDULER", "true"),
            ("ORDERLY_ORDERS__PAYMENT_TIMEOUT", "3s"),
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
    // The placements invalidated the product's cached reads, and each invalidation is
    // repeated 100 ms later.
    let last_invalidation = Instant::now() + Duration::from_millis(100);
    let pay = app
        .admin(
            Method::POST,
            &format!("/v1/orders/{}/pay", paid["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(pay.status(), StatusCode::OK);
    // Served from the cache before the expiry, once the placements' repeated invalidations
    // have passed: the chore must forget it.
    let before: Value = app.read("/v1/products/by-sku/EXP").await;
    let product_path = format!("/v1/products/{}", before["id"].as_str().unwrap());
    served_from_the_cache(&app, &product_path, 5, last_invalidation).await;
    let pending: Value = app
        .read(&format!("/v1/orders/{}", unpaid["id"].as_str().unwrap()))
        .await;
    assert_eq!(pending["status"], "pending", "cached before the expiry");
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
    // Read right after, through the cache, by SKU and by id.
    for path in ["/v1/products/by-sku/EXP", product_path.as_str()] {
        let product: Value = app.read(path).await;
        assert_eq!(
            product["stock"], 8,
            "{path}: the expired order's 3 units came back; the paid order keeps its 2"
        );
    }
    let paid_now: Value = app
        .read(&format!("/v1/orders/{}", paid["id"].as_str().unwrap()))
        .await;
    assert_eq!(paid_now["status"], "paid");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM events WHERE type = 'order.expired'")
            .await,
        1
    );
}

/// Waits until `path` is read from the cache with `stock`, after `last_invalidation` (and the
/// 100 ms after it in which each invalidation is repeated) has passed.
async fn served_from_the_cache(app: &TestApp, path: &str, stock: i64, last_invalidation: Instant) {
    let cache = app.cache.clone().expect("the product cache is on");
    let hits = || cache.stats().local_hits.load(Ordering::Relaxed);
    eventually(5, "the product served from the cache", || async {
        let hits_before = hits();
        let cached: Value = app.read(path).await;
        let after_invalidations = Instant::now() > last_invalidation + Duration::from_millis(100);
        (after_invalidations && hits() > hits_before && cached["stock"] == stock).then_some(())
    })
    .await;
}

orderly_testing::on_both_backends! {
    async fn unpaid_orders_expire(backend) {
        expiry(backend).await;
    }
}

/// Queues the sales summary as the schedule would: its tick, a minute from now, ends the
/// 24-hour window.
async fn queue_summary_tick(app: &TestApp) {
    let tick = (time::OffsetDateTime::now_utc() + time::Duration::minutes(1))
        .replace_nanosecond(0)
        .unwrap();
    let tick = tick
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    app.store
        .queue()
        .enqueue(&[orderly_queue::NewJob::named(
            kinds::SalesSummary::NAME,
            json!({ "tick": tick }),
        )
        .max_attempts(3)])
        .await
        .unwrap();
}

async fn sales_summary(backend: Backend) {
    let Some(app) = TestApp::spawn_with_worker(
        backend,
        &[(
            "ORDERLY_MAIL_OPERATORS",
            "ops@shop.example, Ana <ana@shop.example>",
        )],
    )
    .await
    else {
        return;
    };
    app.create_product("BEST", 1_000, 50).await;
    app.create_product("NEXT", 250, 50).await;
    app.create_product("LOW", 99, 3).await;
    let place = |lines| app.place_order(lines);
    let first: Value =
        place(json!([{"sku": "BEST", "quantity": 4}, {"sku": "NEXT", "quantity": 1}]))
            .await
            .json()
            .await
            .unwrap();
    place(json!([{"sku": "BEST", "quantity": 1}])).await;
    let lost: Value = place(json!([{"sku": "NEXT", "quantity": 9}]))
        .await
        .json()
        .await
        .unwrap();
    for (order, action) in [(&first, "pay"), (&lost, "cancel")] {
        let path = format!("/v1/orders/{}/{action}", order["id"].as_str().unwrap());
        let response = app.admin(Method::POST, &path).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let refund = app
        .admin(
            Method::POST,
            &format!("/v1/orders/{}/refunds", first["id"].as_str().unwrap()),
        )
        .header("idempotency-key", "summary-refund")
        .json(&json!({"amount": 500, "reason": "a chipped cup"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refund.status(), StatusCode::CREATED);
    queue_summary_tick(&app).await;
    let raw = outbox_message(&app, "sales-summary-").await;
    let message = mail_parser::MessageParser::default().parse(&raw).unwrap();
    let to: Vec<&str> = message
        .to()
        .unwrap()
        .iter()
        .filter_map(|a| a.address())
        .collect();
    assert_eq!(to, ["ops@shop.example", "ana@shop.example"]);
    // Three orders; the paid one (4 x 10.00 + 2.50) is the revenue.
    assert_eq!(
        message.subject(),
        Some("Sales summary: 3 orders, 42.50 EUR revenue")
    );
    let text = message.body_text(0).unwrap();
    assert!(text.contains("cancelled or expired: 1"), "{text}");
    assert!(text.contains("awaiting payment: 1"), "{text}");
    assert!(
        text.contains("captured 42.50 EUR, refunded 5.00 EUR, net 37.50 EUR"),
        "{text}"
    );
    let best = text.find("1. Product BEST (BEST): 5 units, 50.00 EUR");
    let next = text.find("2. Product NEXT (NEXT): 1 units, 2.50 EUR");
    assert!(best.is_some() && next.is_some(), "{text}");
    assert!(text.contains("Product LOW (LOW): 3 left"), "{text}");
    assert!(!text.contains("(BEST): 45 left"), "{text}");
}

orderly_testing::on_both_backends! {
    async fn the_sales_summary_reaches_the_operators(backend) {
        sales_summary(backend).await;
    }
}

async fn prune(backend: Backend) {
    let Some(app) = TestApp::spawn_with_worker(backend, &[]).await else {
        return;
    };
    app.create_product("OLD", 100, 10).await;
    for _ in 0..2 {
        app.place_order(json!([{"sku": "OLD", "quantity": 1}]))
            .await;
    }
    let completed = "SELECT COUNT(*) FROM jobs WHERE state = 'completed'";
    eventually(10, "both receipts sent", || async {
        (app.scalar(completed).await == 2).then_some(())
    })
    .await;
    // Age one of each: an event past its retention, an expired idempotency record, a job
    // finished long ago.
    let aged = "UPDATE events SET created_at = '2020-01-01T00:00:00.000000Z' \
             WHERE id = (SELECT id FROM events ORDER BY id LIMIT 1); \
         UPDATE idempotency_keys SET expires_at = '2020-01-01T00:00:00.000000Z' \
             WHERE order_id = (SELECT order_id FROM idempotency_keys ORDER BY order_id LIMIT 1); \
         UPDATE jobs SET finished_at = '2020-01-01T00:00:00.000000Z' \
             WHERE id = (SELECT MIN(id) FROM jobs);";
    app.execute(aged, aged).await;
    // And more old events than four batches of the prune's deletes (1,000 rows each), so
    // that it must go round.
    app.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4500) \
         INSERT INTO events (id, type, subject_id, payload, created_at) \
         SELECT randomblob(16), 'order.created', randomblob(16), '{}', \
         '2020-01-01T00:00:00.000000Z' FROM n",
        "INSERT INTO events (id, type, subject_id, payload, created_at) \
         SELECT gen_random_uuid(), 'order.created', gen_random_uuid(), '{}', \
         '2020-01-01T00:00:00Z' FROM generate_series(1, 4500)",
    )
    .await;
    app.store
        .queue()
        .enqueue(&[orderly_queue::NewJob::named(kinds::Prune::NAME, json!({})).max_attempts(3)])
        .await
        .unwrap();
    // The aged one is the product's (the oldest); the orders' two stay.
    eventually(10, "the prune chore", || async {
        (app.scalar("SELECT COUNT(*) FROM events").await == 2).then_some(())
    })
    .await;
    assert_eq!(app.scalar("SELECT COUNT(*) FROM idempotency_keys").await, 1);
    eventually(10, "the old job pruned", || async {
        (app.scalar(completed).await == 2).then_some(())
    })
    .await;
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'send_receipt'")
            .await,
        1,
        "the receipt job finished long ago is gone, the recent one kept"
    );
    app.assert_times_in_one_form().await;
}

orderly_testing::on_both_backends! {
    async fn prune_deletes_only_what_is_past_retention(backend) {
        prune(backend).await;
    }
}
