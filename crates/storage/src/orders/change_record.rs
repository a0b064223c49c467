//! What a change to an order writes once its rule has passed: the order's figures and lines,
//! stock given back (cancelled or restocked units), the change's own row (payment, shipment,
//! refund, return) with its actor, its events and their webhook deliveries, and the customer's
//! notice.

use orderly_domain::{Actor, Order, OrderStatus, ProductRef};
use orderly_queue::kinds::{CustomerNoticeArgs, NotifyCustomer};
use orderly_queue::{Enqueued, enqueue_in};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use super::change::{ChangeRequest, ChangeSettings, OrderChange};
use super::change_sql::{ChangeRow, ChangeSql};
use super::returns::return_json;
use crate::webhooks::{OutboxEvent, queue_deliveries};

/// The events a customer is mailed about.
const CUSTOMER_NOTICES: [&str; 5] = [
    "order.fulfillment_created",
    "order.units_cancelled",
    "order.refunded",
    "order.return_received",
    "order.edited",
];

/// Writes what changed from `before` to `after`: figures, lines, stock, the change's own
/// record and its events.
pub(super) async fn write<C: ChangeSql>(
    conn: &mut C,
    request: &ChangeRequest,
    before: &Order,
    after: &Order,
    change_id: Uuid,
    settings: ChangeSettings,
    now: OffsetDateTime,
) -> Result<Enqueued, sqlx::Error> {
    let id = after.id.as_uuid();
    conn.write_figures(after, now).await?;
    let changed_units = write_lines(conn, before, after, now).await?;
    let actor = actor_json(&request.actor);
    let row = ChangeRow {
        id: change_id,
        order: id,
        actor: &actor,
        at: now,
    };
    let mut events = record_change(conn, request, &row, after, before, changed_units).await?;
    for (_, payload) in &mut events {
        payload["order_id"] = json!(after.id.to_string());
        payload["actor"] = actor.clone();
    }
    if after.status != before.status {
        events.push((
            status_event(after.status),
            json!({"order_id": after.id.to_string(), "status": after.status.as_str(), "actor": actor}),
        ));
    }
    let trace = request.trace.as_deref();
    let mut outbox = Vec::with_capacity(events.len());
    let mut notices = Vec::new();
    for (kind, payload) in &events {
        let event = OutboxEvent {
            id: Uuid::now_v7(),
            kind,
            trace,
        };
        conn.insert_event(event.id, kind, id, payload, now, trace)
            .await?;
        if CUSTOMER_NOTICES.contains(kind) {
            let args = CustomerNoticeArgs {
                order_id: id,
                event_id: event.id,
                kind: (*kind).to_owned(),
                data: payload.clone(),
            };
            notices.push(NotifyCustomer::job(&args).max_attempts(settings.notice_attempts));
        }
        outbox.push(event);
    }
    let mailed = enqueue_in(conn, &notices, now).await?;
    Ok(mailed.and(queue_deliveries(conn, &outbox, now).await?))
}

/// Writes the lines that changed, in product order (as reservations lock them), and moves
/// their stock; the units shipped or cancelled, per product, for the change's event.
async fn write_lines<C: ChangeSql>(
    conn: &mut C,
    before: &Order,
    after: &Order,
    now: OffsetDateTime,
) -> Result<Vec<Value>, sqlx::Error> {
    let id = after.id.as_uuid();
    let mut changed_units = Vec::new();
    let mut lines: Vec<(usize, _)> = after.lines.iter().enumerate().collect();
    lines.sort_by_key(|(_, line)| line.product_id);
    for (i, line) in lines {
        let Some(was) = before.lines.get(i) else {
            // A line an edit added: its units come out of stock.
            conn.insert_line(id, i as i32 + 1, line).await?;
            conn.reserve_stock(line.product_id, line.quantity, now)
                .await?;
            continue;
        };
        let figures = |l: &orderly_domain::OrderLine| {
            (
                (l.quantity, l.cancelled),
                l.shipped,
                l.refunded,
                (l.return_requested, l.returned, l.restocked),
            )
        };
        if figures(line) == figures(was) {
            continue;
        }
        conn.write_line(id, i as i32 + 1, line).await?;
        let released = (line.cancelled - was.cancelled) + (line.restocked - was.restocked);
        if released > 0 {
            conn.release_stock(line.product_id, released, now).await?;
        }
        // More units of a line (an edit): taken from stock, checked under its lock.
        let reserved = line.quantity - was.quantity;
        if reserved > 0 {
            conn.reserve_stock(line.product_id, reserved, now).await?;
        }
        let units = (line.cancelled - was.cancelled) + (line.shipped - was.shipped);
        if units > 0 {
            changed_units.push(json!({"sku": line.sku, "product_id": line.product_id.as_uuid(), "quantity": units}));
        }
    }
    Ok(changed_units)
}

/// Records the payment, shipment, refund or return, and names its events with their
/// payloads (each with the order's figures as the change left them).
async fn record_change<C: ChangeSql>(
    conn: &mut C,
    request: &ChangeRequest,
    row: &ChangeRow<'_>,
    after: &Order,
    before: &Order,
    changed_units: Vec<Value>,
) -> Result<Vec<(&'static str, Value)>, sqlx::Error> {
    let figures = json!({
        "total": after.total,
        "captured": after.captured,
        "refunded": after.refunded,
        "balance_due": after.ledger().balance_due(),
        "refund_owed": after.ledger().refund_owed(),
    });
    let event = |kind: &'static str, payload: Value| (kind, merge(payload, figures.clone()));
    Ok(match &request.change {
        OrderChange::Capture { .. } | OrderChange::PayInFull => {
            let amount = after.captured - before.captured;
            let (provider, reference) = match &request.change {
                OrderChange::Capture {
                    provider,
                    reference,
                    ..
                } => (provider.clone(), reference.clone()),
                _ => ("manual".to_owned(), row.id.to_string()),
            };
            conn.insert_payment(row, amount, &provider, &reference)
                .await?;
            let payment = json!({"payment_id": row.id, "amount": amount, "provider": provider, "reference": reference});
            vec![event("order.payment_captured", payment)]
        }
        OrderChange::Ship { tracking, .. } => {
            let lines = Value::Array(changed_units);
            let t = [
                tracking.carrier.as_deref(),
                tracking.number.as_deref(),
                tracking.url.as_deref(),
            ];
            conn.insert_fulfillment(row, &lines, t).await?;
            let shipment = json!({
                "fulfillment_id": row.id,
                "lines": lines,
                "tracking": {"carrier": t[0], "number": t[1], "url": t[2]},
            });
            vec![event("order.fulfillment_created", shipment)]
        }
        OrderChange::Cancel { .. } => {
            vec![event(
                "order.units_cancelled",
                json!({"lines": changed_units}),
            )]
        }
        OrderChange::Refund {
            amount,
            reason,
            lines,
        } => {
            let named = lines.as_ref().map(|lines| {
                Value::Array(
                    lines
                        .iter()
                        .map(|l| units_json(&l.product, l.quantity))
                        .collect(),
                )
            });
            conn.insert_refund(row, *amount, reason.as_deref(), named.as_ref())
                .await?;
            let refund =
                json!({"refund_id": row.id, "amount": amount, "reason": reason, "lines": named});
            vec![event("order.refunded", refund)]
        }
        OrderChange::Edit { .. } => {
            let edited =
                json!({"lines_before": kept_lines(before), "lines_after": kept_lines(after)});
            vec![event("order.edited", edited)]
        }
        OrderChange::RequestReturn { .. } | OrderChange::ReceiveReturn { .. } => {
            record_return(conn, &request.change, row, after, before)
                .await?
                .into_iter()
                .map(|(kind, payload)| event(kind, payload))
                .collect()
        }
    })
}

/// Records the return asked for, or the return received and the refund recorded with it.
async fn record_return<C: ChangeSql>(
    conn: &mut C,
    change: &OrderChange,
    row: &ChangeRow<'_>,
    after: &Order,
    before: &Order,
) -> Result<Vec<(&'static str, Value)>, sqlx::Error> {
    let return_id = match change {
        OrderChange::ReceiveReturn { return_id, .. } => *return_id,
        _ => {
            let ret = returned(after, row.id)?;
            conn.insert_return(row, ret).await?;
            return Ok(vec![("order.return_requested", return_json(ret))]);
        }
    };
    let ret = returned(after, return_id)?;
    conn.receive_return(row, ret).await?;
    let mut events = vec![("order.return_received", return_json(ret))];
    if let Some(refund_id) = ret.refund_id {
        let amount = after.refunded - before.refunded;
        let lines: Vec<Value> = ret
            .lines
            .iter()
            .filter(|l| l.received.unwrap_or(0) > 0)
            .map(|l| json!({"sku": l.sku, "quantity": l.received}))
            .collect();
        let lines = Value::Array(lines);
        conn.insert_refund(row, amount, Some("return"), Some(&lines))
            .await?;
        let refund = json!({"refund_id": refund_id, "amount": amount,
            "reason": "return", "lines": lines, "return_id": ret.id});
        events.push(("order.refunded", refund));
    }
    Ok(events)
}

/// The return `id` of `order`, as the change left it (the change made or received it, so it
/// is there).
fn returned(order: &Order, id: Uuid) -> Result<&orderly_domain::OrderReturn, sqlx::Error> {
    order
        .returns
        .iter()
        .flatten()
        .find(|r| r.id == id)
        .ok_or_else(|| sqlx::Error::Protocol(format!("return {id} is not on its order")))
}

/// The order's lines with the units each keeps, as an edit's event shows them.
fn kept_lines(order: &Order) -> Vec<Value> {
    order
        .lines
        .iter()
        .map(|l| {
            json!({"sku": l.sku, "product_id": l.product_id.as_uuid(),
                "unit_price": l.unit_price, "quantity": l.quantity - l.cancelled})
        })
        .collect()
}

/// Units of a product as events name them.
fn units_json(product: &ProductRef, quantity: i64) -> Value {
    match product {
        ProductRef::Sku(sku) => json!({"sku": sku.as_str(), "quantity": quantity}),
        ProductRef::Id(id) => json!({"product_id": id.as_uuid(), "quantity": quantity}),
    }
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

/// The event an order reaching `status` fires, as before the lifecycle.
fn status_event(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::Pending => "order.pending",
        OrderStatus::Paid => "order.paid",
        OrderStatus::Fulfilled => "order.fulfilled",
        OrderStatus::Cancelled => "order.cancelled",
        OrderStatus::Expired => "order.expired",
    }
}

/// An actor as events, payments, shipments and refunds record it.
pub(crate) fn actor_json(actor: &Actor) -> Value {
    json!({"type": actor.kind.as_str(), "id": actor.id, "name": actor.name})
}
