//! A change to an order — a capture, a shipment, a cancellation of units, a refund — in one
//! transaction: the order locked and read, the lifecycle's rule applied (`orderly_domain::
//! lifecycle`), its figures and lines written back, the stock of cancelled units given back,
//! the payment, shipment or refund recorded with its actor, its events (and their webhook
//! deliveries) written to the outbox, and its idempotency record kept with the order as the
//! change left it.

use orderly_domain::{Actor, LifecycleError, LineUnits, Order, OrderId, OrderStatus, ProductRef};
use orderly_queue::kinds::{CustomerNoticeArgs, NotifyCustomer};
use orderly_queue::{Enqueued, enqueue_in};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use super::change_sql::{ChangeRecord, ChangeRow, ChangeSql};
use super::snapshot;
use crate::webhooks::{OutboxEvent, queue_deliveries};

/// Units of the line that holds a product, named by SKU or id.
#[derive(Debug, Clone)]
pub struct UnitsOf {
    pub product: ProductRef,
    pub quantity: i64,
}

/// Where a shipment is, as the carrier tells it.
#[derive(Debug, Clone, Default)]
pub struct Tracking {
    pub carrier: Option<String>,
    pub number: Option<String>,
    pub url: Option<String>,
}

/// What a change does.
#[derive(Debug, Clone)]
pub enum OrderChange {
    /// A capture reported by a payment provider; `(provider, reference)` is recorded once.
    Capture {
        amount: i64,
        provider: String,
        reference: String,
    },
    /// Capture whatever is due (`/pay`), recorded as provider `manual`.
    PayInFull,
    /// Ship these units; `None` ships every open unit (`/fulfill`).
    Ship {
        lines: Option<Vec<UnitsOf>>,
        tracking: Tracking,
    },
    /// Cancel these units; `None` cancels every open unit (`/cancel`).
    Cancel { lines: Option<Vec<UnitsOf>> },
    Refund {
        amount: i64,
        reason: Option<String>,
        lines: Option<Vec<UnitsOf>>,
    },
}

/// An `Idempotency-Key` of a change.
#[derive(Debug, Clone)]
pub struct ChangeKey {
    pub api_key: Uuid,
    pub key: String,
    /// A hash of the request (route and body): a retry must send the same.
    pub fingerprint: Vec<u8>,
}

/// A request to change an order.
#[derive(Debug, Clone)]
pub struct ChangeRequest {
    pub order: OrderId,
    pub change: OrderChange,
    pub actor: Actor,
    /// The order's version the client last saw (`If-Match`).
    pub expected_version: Option<i64>,
    pub key: Option<ChangeKey>,
    /// The W3C `traceparent` of the request, continued by the event's deliveries.
    pub trace: Option<String>,
}

/// How a change ended. Anything but `Done` wrote nothing.
#[derive(Debug, Clone)]
pub enum ChangeOutcome {
    /// Committed: the order as it now stands.
    Done(Box<Order>),
    /// A retry of a change already made: the order as that change left it.
    Replayed(Box<Order>),
    /// The idempotency key was used before with another request.
    KeyReused,
    NotFound,
    /// The order is no longer at the version the client named.
    Stale {
        version: i64,
    },
    /// The lifecycle's rules refuse it; `status` is the order's.
    Refused {
        reason: LifecycleError,
        status: OrderStatus,
    },
    /// Line `index` of the request names a product the order does not hold.
    UnknownLine {
        index: usize,
    },
    /// This `(provider, reference)` was recorded before, for this order (here as it stands)
    /// or, with `None`, for another.
    RecordedBefore(Option<Box<Order>>),
}

/// How changes are made: how long their idempotency records are kept, and how many runs the
/// mail telling the customer gets.
#[derive(Debug, Clone, Copy)]
pub struct ChangeSettings {
    pub key_ttl: time::Duration,
    pub notice_attempts: i32,
}

/// The events a customer is mailed about.
const CUSTOMER_NOTICES: [&str; 3] = [
    "order.fulfillment_created",
    "order.units_cancelled",
    "order.refunded",
];

/// The result of [`apply`]: its outcome and the jobs its events enqueued.
pub(crate) type Applied = (ChangeOutcome, Enqueued);

/// Applies `request` inside an open write transaction.
pub(crate) async fn apply<C: ChangeSql>(
    conn: &mut C,
    request: &ChangeRequest,
    settings: ChangeSettings,
    now: OffsetDateTime,
) -> Result<Applied, sqlx::Error> {
    let none = |outcome| Ok((outcome, Enqueued::default()));
    if let Some(key) = &request.key
        && let Some(record) = conn.change_record(key.api_key, &key.key).await?
        && record.expires_at > now
    {
        if record.fingerprint != key.fingerprint {
            return none(ChangeOutcome::KeyReused);
        }
        let order = snapshot::read(&record.response_body, key.api_key)?;
        return none(ChangeOutcome::Replayed(Box::new(order)));
    }
    let Some(mut order) = conn.lock_order(request.order.as_uuid()).await? else {
        return none(ChangeOutcome::NotFound);
    };
    if let Some(expected) = request.expected_version
        && expected != order.version
    {
        return none(ChangeOutcome::Stale {
            version: order.version,
        });
    }
    if let OrderChange::Capture {
        provider,
        reference,
        ..
    } = &request.change
        && let Some(recorded_for) = conn.payment_order(provider, reference).await?
    {
        let same = recorded_for == order.id.as_uuid();
        return none(ChangeOutcome::RecordedBefore(same.then(|| Box::new(order))));
    }
    let before = order.clone();
    let mut ledger = order.ledger();
    let units = match resolve(&order, &request.change) {
        Ok(units) => units,
        Err(index) => return none(ChangeOutcome::UnknownLine { index }),
    };
    let judged = match &request.change {
        OrderChange::Capture { amount, .. } => ledger.capture(*amount),
        OrderChange::PayInFull => ledger.capture(ledger.balance_due()),
        OrderChange::Ship { .. } => ledger.ship(&units.unwrap_or_else(|| ledger.open_units())),
        OrderChange::Cancel { .. } => ledger.cancel(&units.unwrap_or_else(|| ledger.open_units())),
        OrderChange::Refund { amount, .. } => ledger.refund(*amount, units.as_deref()),
    };
    if let Err(reason) = judged {
        let status = order.status;
        return none(ChangeOutcome::Refused { reason, status });
    }
    order.apply(&ledger);
    order.version += 1;
    order.updated_at = now;
    let enqueued = write(conn, request, &before, &order, settings, now).await?;
    if let Some(key) = &request.key {
        let record = ChangeRecord {
            fingerprint: key.fingerprint.clone(),
            response_status: 200,
            response_body: snapshot::write(&order),
            expires_at: now + settings.key_ttl,
        };
        conn.insert_change_record(key.api_key, &key.key, order.id.as_uuid(), &record, now)
            .await?;
    }
    Ok((ChangeOutcome::Done(Box::new(order)), enqueued))
}

/// The request's lines as the order's line indexes; `Err(i)` when line `i` of the request
/// names no line of the order. `None` when the change names no lines.
fn resolve(order: &Order, change: &OrderChange) -> Result<Option<Vec<LineUnits>>, usize> {
    let lines = match change {
        OrderChange::Ship { lines, .. }
        | OrderChange::Cancel { lines }
        | OrderChange::Refund { lines, .. } => lines.as_deref(),
        OrderChange::Capture { .. } | OrderChange::PayInFull => None,
    };
    let Some(lines) = lines else { return Ok(None) };
    lines
        .iter()
        .enumerate()
        .map(|(index, wanted)| {
            let line = order.lines.iter().position(|line| match &wanted.product {
                ProductRef::Sku(sku) => line.sku == sku.as_str(),
                ProductRef::Id(id) => line.product_id == *id,
            });
            line.map(|line| LineUnits {
                line,
                units: wanted.quantity,
            })
            .ok_or(index)
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Writes what changed from `before` to `after`: figures, lines, stock, the change's own
/// record and its events.
async fn write<C: ChangeSql>(
    conn: &mut C,
    request: &ChangeRequest,
    before: &Order,
    after: &Order,
    settings: ChangeSettings,
    now: OffsetDateTime,
) -> Result<Enqueued, sqlx::Error> {
    let id = after.id.as_uuid();
    conn.write_figures(after, now).await?;
    let mut changed_units = Vec::new();
    // Lines in product order, as reservations lock them.
    let mut lines: Vec<(usize, _)> = after.lines.iter().enumerate().collect();
    lines.sort_by_key(|(_, line)| line.product_id);
    for (i, line) in lines {
        let was = &before.lines[i];
        if (line.cancelled, line.shipped, line.refunded)
            == (was.cancelled, was.shipped, was.refunded)
        {
            continue;
        }
        conn.write_line(id, i as i32 + 1, line).await?;
        let released = line.cancelled - was.cancelled;
        if released > 0 {
            conn.release_stock(line.product_id, released, now).await?;
        }
        let units = (line.cancelled - was.cancelled) + (line.shipped - was.shipped);
        if units > 0 {
            changed_units.push(json!({"sku": line.sku, "product_id": line.product_id.as_uuid(), "quantity": units}));
        }
    }
    let actor = actor_json(&request.actor);
    let row = ChangeRow {
        id: Uuid::now_v7(),
        order: id,
        actor: &actor,
        at: now,
    };
    let (kind, mut payload) =
        record_change(conn, request, &row, after, before, changed_units).await?;
    payload["order_id"] = json!(after.id.to_string());
    payload["actor"] = actor.clone();
    let mut events = vec![(kind, payload)];
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

/// Records the payment, shipment or refund, and names its event with its payload.
async fn record_change<C: ChangeSql>(
    conn: &mut C,
    request: &ChangeRequest,
    row: &ChangeRow<'_>,
    after: &Order,
    before: &Order,
    changed_units: Vec<Value>,
) -> Result<(&'static str, Value), sqlx::Error> {
    let figures = json!({
        "total": after.total,
        "captured": after.captured,
        "refunded": after.refunded,
        "balance_due": after.ledger().balance_due(),
        "refund_owed": after.ledger().refund_owed(),
    });
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
            ("order.payment_captured", merge(payment, figures))
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
            ("order.fulfillment_created", merge(shipment, figures))
        }
        OrderChange::Cancel { .. } => (
            "order.units_cancelled",
            merge(json!({"lines": changed_units}), figures),
        ),
        OrderChange::Refund {
            amount,
            reason,
            lines,
        } => {
            let named = lines.as_ref().map(|lines| {
                Value::Array(
                    lines
                        .iter()
                        .map(|l| match &l.product {
                            ProductRef::Sku(sku) => {
                                json!({"sku": sku.as_str(), "quantity": l.quantity})
                            }
                            ProductRef::Id(id) => {
                                json!({"product_id": id.as_uuid(), "quantity": l.quantity})
                            }
                        })
                        .collect(),
                )
            });
            conn.insert_refund(row, *amount, reason.as_deref(), named.as_ref())
                .await?;
            let refund =
                json!({"refund_id": row.id, "amount": amount, "reason": reason, "lines": named});
            ("order.refunded", merge(refund, figures))
        }
    })
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
