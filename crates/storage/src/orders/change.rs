//! A change to an order — a capture, a shipment, a cancellation of units, a refund, a return
//! requested or received — in one transaction: the order locked and read, the lifecycle's rule applied (`orderly_domain::
//! lifecycle`), its figures and lines written back, the stock of cancelled units given back,
//! the payment, shipment or refund recorded with its actor, its events (and their webhook
//! deliveries) written to the outbox, and its idempotency record kept with the order as the
//! change left it.

use orderly_domain::{
    Actor, LifecycleError, LineUnits, Order, OrderId, OrderStatus, ProductRef, ReceivedUnits,
    ReturnStatus,
};
use orderly_queue::Enqueued;
use time::OffsetDateTime;
use uuid::Uuid;

use super::change_record::write;
use super::change_sql::{ChangeRecord, ChangeSql};
use super::snapshot;
use super::{edit, returns};

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
    /// Put shipped units on a return.
    RequestReturn {
        lines: Vec<UnitsOf>,
        reason: Option<String>,
    },
    /// Receive return `return_id`: the units that came back, and the refund to record.
    ReceiveReturn {
        return_id: Uuid,
        lines: Vec<ReceivedOf>,
        refund: Option<ReturnRefund>,
    },
    /// Replace the order's lines by this full set, before anything ships.
    Edit { lines: Vec<UnitsOf> },
}

/// Units that came back on a return, and whether they go back in stock.
#[derive(Debug, Clone)]
pub struct ReceivedOf {
    pub product: ProductRef,
    pub quantity: i64,
    pub restock: bool,
}

/// The refund a received return records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnRefund {
    /// This amount, against the returned lines.
    Amount(i64),
    /// The returned units' price less what was refunded on their lines, within the money
    /// kept (none when that is nothing).
    Due,
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
    /// The order has no return of that id.
    ReturnNotFound,
    /// Line `index` of an edit names a product that cannot be ordered (unknown, inactive,
    /// archived, priced in another currency).
    NotOrderable {
        index: usize,
    },
    /// Line `index` of an edit asks for more units than are in stock.
    OutOfStock {
        index: usize,
        available: i64,
    },
}

/// How changes are made: how long their idempotency records are kept, and how many runs the
/// mail telling the customer gets.
#[derive(Debug, Clone, Copy)]
pub struct ChangeSettings {
    pub key_ttl: time::Duration,
    pub notice_attempts: i32,
}

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
    // The id of what the change records: the payment, shipment, refund or return.
    let change_id = Uuid::now_v7();
    let mut ledger = order.ledger();
    let judged = if let OrderChange::Edit { lines } = &request.change {
        match edit::plan(conn, &order, lines).await? {
            Ok(plan) => ledger
                .edit(&plan.kept, &plan.added_figures())
                .map(|()| order.lines.extend(plan.added))
                .map_err(|reason| ChangeOutcome::Refused {
                    reason,
                    status: order.status,
                }),
            Err(outcome) => Err(outcome),
        }
    } else {
        judge(&mut order, &mut ledger, &request.change, change_id, now)
    };
    if let Err(outcome) = judged {
        return none(outcome);
    }
    order.apply(&ledger);
    order.version += 1;
    order.updated_at = now;
    let enqueued = write(conn, request, &before, &order, change_id, settings, now).await?;
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

/// Applies the change's rule to `ledger` (and, for a return, to `order`'s returns); when
/// the rules refuse it, the outcome to answer with.
fn judge(
    order: &mut Order,
    ledger: &mut orderly_domain::Ledger,
    change: &OrderChange,
    id: Uuid,
    now: OffsetDateTime,
) -> Result<(), ChangeOutcome> {
    let status = order.status;
    let refused = |reason| ChangeOutcome::Refused { reason, status };
    if let OrderChange::ReceiveReturn {
        return_id,
        lines,
        refund,
    } = change
    {
        return receive(order, ledger, *return_id, lines, *refund, id, now);
    }
    let units = resolve(order, change).map_err(|index| ChangeOutcome::UnknownLine { index })?;
    match change {
        OrderChange::Capture { amount, .. } => ledger.capture(*amount),
        OrderChange::PayInFull => ledger.capture(ledger.balance_due()),
        OrderChange::Ship { .. } => ledger.ship(&units.unwrap_or_else(|| ledger.open_units())),
        OrderChange::Cancel { .. } => ledger.cancel(&units.unwrap_or_else(|| ledger.open_units())),
        OrderChange::Refund { amount, .. } => ledger.refund(*amount, units.as_deref()),
        OrderChange::RequestReturn { reason, .. } => {
            let units = units.unwrap_or_default();
            ledger.request_return(&units).map(|()| {
                let ret = returns::requested(order, id, &units, reason.clone(), now);
                order.returns.get_or_insert_with(Vec::new).push(ret);
            })
        }
        OrderChange::ReceiveReturn { .. } | OrderChange::Edit { .. } => {
            unreachable!("received above; edits are planned by the caller")
        }
    }
    .map_err(refused)
}

/// Receives return `return_id`: the units that came back, and the refund `refund_id` when
/// one is recorded.
fn receive(
    order: &mut Order,
    ledger: &mut orderly_domain::Ledger,
    return_id: Uuid,
    lines: &[ReceivedOf],
    refund: Option<ReturnRefund>,
    refund_id: Uuid,
    now: OffsetDateTime,
) -> Result<(), ChangeOutcome> {
    let status = order.status;
    let refused = |reason| ChangeOutcome::Refused { reason, status };
    let Some(ret) = order.returns.iter().flatten().find(|r| r.id == return_id) else {
        return Err(ChangeOutcome::ReturnNotFound);
    };
    if ret.status == ReturnStatus::Received {
        return Err(refused(LifecycleError::ReturnReceived));
    }
    let received = lines
        .iter()
        .enumerate()
        .map(|(index, wanted)| {
            line_of(order, &wanted.product)
                .map(|line| ReceivedUnits {
                    line,
                    units: wanted.quantity,
                    restock: wanted.restock,
                })
                .ok_or(ChangeOutcome::UnknownLine { index })
        })
        .collect::<Result<Vec<_>, _>>()?;
    ledger
        .receive_return(&ret.requested(), &received)
        .map_err(refused)?;
    let amount = match refund {
        None => 0,
        Some(ReturnRefund::Due) => ledger.return_refund(&received),
        Some(ReturnRefund::Amount(amount)) => amount,
    };
    let refunded = refund.is_some_and(|r| r != ReturnRefund::Due || amount > 0);
    if refunded {
        let units: Vec<LineUnits> = received
            .iter()
            .map(|r| LineUnits {
                line: r.line,
                units: r.units,
            })
            .collect();
        ledger.refund(amount, Some(&units)).map_err(refused)?;
    }
    if let Some(ret) = order
        .returns
        .iter_mut()
        .flatten()
        .find(|r| r.id == return_id)
    {
        returns::received(ret, &received, refunded.then_some(refund_id), now);
    }
    Ok(())
}

/// The index of the order's line holding `product`.
fn line_of(order: &Order, product: &ProductRef) -> Option<usize> {
    order.lines.iter().position(|line| match product {
        ProductRef::Sku(sku) => line.sku == sku.as_str(),
        ProductRef::Id(id) => line.product_id == *id,
    })
}

/// The request's lines as the order's line indexes; `Err(i)` when line `i` of the request
/// names no line of the order. `None` when the change names no lines.
fn resolve(order: &Order, change: &OrderChange) -> Result<Option<Vec<LineUnits>>, usize> {
    let lines = match change {
        OrderChange::Ship { lines, .. }
        | OrderChange::Cancel { lines }
        | OrderChange::Refund { lines, .. } => lines.as_deref(),
        OrderChange::RequestReturn { lines, .. } => Some(lines.as_slice()),
        OrderChange::Capture { .. }
        | OrderChange::PayInFull
        | OrderChange::ReceiveReturn { .. }
        | OrderChange::Edit { .. } => None,
    };
    let Some(lines) = lines else { return Ok(None) };
    lines
        .iter()
        .enumerate()
        .map(|(index, wanted)| {
            line_of(order, &wanted.product)
                .map(|line| LineUnits {
                    line,
                    units: wanted.quantity,
                })
                .ok_or(index)
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}
