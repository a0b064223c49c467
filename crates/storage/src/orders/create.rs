//! Placing orders: the per-order transaction body (idempotency, stock reservation in product
//! order, price snapshots, totals, the order, its lines and its `order.created` event) and the
//! batch that runs many of them in one database transaction, each inside its own savepoint.

use std::collections::HashSet;

use orderly_domain::order::order_total;
use orderly_domain::{Order, OrderId, OrderLine, OrderStatus, ProductId, ProductRef};
use serde_json::json;
use time::OffsetDateTime;

use super::sql::{IdempotencyRecord, NewEvent, OrderSql};
use super::{CreateOrder, CreateOutcome, LineProblem, OrderRejection, ShortLine, StoredResponse};
use crate::error::is_unique_violation;

/// Renders the `201` body stored for replays. Supplied by the HTTP layer, which owns the
/// representation.
pub type RenderOrder = dyn Fn(&Order) -> String + Send + Sync;

/// What every order of a batch shares.
pub(crate) struct BatchContext<'a> {
    pub now: OffsetDateTime,
    pub idempotency_ttl: time::Duration,
    pub render: &'a RenderOrder,
}

/// Runs each request inside its own savepoint on an open transaction. A request that is
/// refused or fails is rolled back to its savepoint and does not disturb the others.
pub(crate) async fn create_batch<C: OrderSql>(
    conn: &mut C,
    requests: &[CreateOrder],
    context: &BatchContext<'_>,
) -> Result<Vec<Result<CreateOutcome, sqlx::Error>>, sqlx::Error> {
    let mut outcomes = Vec::with_capacity(requests.len());
    for request in requests {
        conn.savepoint().await?;
        let outcome = create_one(conn, request, context).await;
        match &outcome {
            Ok(CreateOutcome::Created { .. }) => conn.release_savepoint().await?,
            _ => conn.rollback_to_savepoint().await?,
        }
        let outcome = match outcome {
            Err(e) if is_unique_violation(&e) => {
                // Another transaction committed the same idempotency key after our lookup.
                replay_or_conflict(conn, request, context.now).await
            }
            other => other,
        };
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

async fn replay_or_conflict<C: OrderSql>(
    conn: &mut C,
    request: &CreateOrder,
    now: OffsetDateTime,
) -> Result<CreateOutcome, sqlx::Error> {
    match conn
        .idempotency_record(request.api_key, &request.idempotency_key)
        .await?
    {
        Some(record) if record.expires_at > now => Ok(judge_retry(record, request)),
        _ => Ok(CreateOutcome::InFlight),
    }
}

/// A live record for the request's key: the same request is replayed, another is refused.
fn judge_retry(record: IdempotencyRecord, request: &CreateOrder) -> CreateOutcome {
    if record.fingerprint == request.fingerprint {
        CreateOutcome::Replayed(StoredResponse {
            status: record.response_status as u16,
            body: record.response_body,
        })
    } else {
        CreateOutcome::KeyReused
    }
}

async fn create_one<C: OrderSql>(
    conn: &mut C,
    request: &CreateOrder,
    context: &BatchContext<'_>,
) -> Result<CreateOutcome, sqlx::Error> {
    let now = context.now;
    if let Some(record) = conn
        .idempotency_record(request.api_key, &request.idempotency_key)
        .await?
    {
        if record.expires_at > now {
            return Ok(judge_retry(record, request));
        }
        conn.delete_idempotency_record(request.api_key, &request.idempotency_key)
            .await?;
    }

    // Resolve every line to a product id, refusing unknown skus and repeated products.
    let mut problems = Vec::new();
    let mut resolved: Vec<(usize, ProductId, i64)> = Vec::with_capacity(request.order.lines.len());
    let mut seen = HashSet::new();
    for (index, line) in request.order.lines.iter().enumerate() {
        let id = match &line.product {
            ProductRef::Id(id) => Some(*id),
            ProductRef::Sku(sku) => conn
                .product_id_by_sku(sku.as_str())
                .await?
                .map(ProductId::from_uuid),
        };
        match id {
            None => problems.push(LineProblem::unknown(index)),
            Some(id) if !seen.insert(id) => problems.push(LineProblem {
                line: index,
                code: "duplicate_product",
                message: "names a product another line already orders".into(),
            }),
            Some(id) => resolved.push((index, id, line.quantity.get())),
        }
    }

    // Reserve stock in product-id order, so concurrent orders lock rows in one order and
    // cannot deadlock. Every line is tried, so every short line is reported.
    resolved.sort_by_key(|(_, id, _)| *id);
    let mut shorts = Vec::new();
    let mut snapshots = Vec::with_capacity(resolved.len());
    for &(index, id, quantity) in &resolved {
        match conn.reserve_stock(id, quantity, now).await? {
            Some(snapshot) if snapshot.currency == request.currency => {
                snapshots.push((index, id, quantity, snapshot))
            }
            Some(_) => problems.push(LineProblem {
                line: index,
                code: "currency_mismatch",
                message: "the product is priced in another currency".into(),
            }),
            None => match conn.stock_state(id).await? {
                None => problems.push(LineProblem::unknown(index)),
                Some((_, false)) => problems.push(LineProblem {
                    line: index,
                    code: "product_unavailable",
                    message: "the product is inactive or archived".into(),
                }),
                Some((available, true)) => shorts.push(ShortLine {
                    line: index,
                    product_id: id,
                    requested: quantity,
                    available,
                }),
            },
        }
    }
    if !problems.is_empty() {
        problems.sort_by_key(|p| p.line);
        return Ok(CreateOutcome::Rejected(OrderRejection::InvalidLines(
            problems,
        )));
    }
    if !shorts.is_empty() {
        shorts.sort_by_key(|s| s.line);
        return Ok(CreateOutcome::Rejected(OrderRejection::OutOfStock(shorts)));
    }

    // Lines keep the order the client sent them in.
    snapshots.sort_by_key(|(index, ..)| *index);
    let amounts: Vec<(i64, i64)> = snapshots
        .iter()
        .map(|(_, _, quantity, s)| (s.price, *quantity))
        .collect();
    let Some((line_totals, total)) = order_total(&amounts) else {
        return Ok(CreateOutcome::Rejected(OrderRejection::TotalTooLarge));
    };
    let lines: Vec<OrderLine> = snapshots
        .into_iter()
        .zip(line_totals)
        .map(|((_, id, quantity, s), line_total)| OrderLine {
            product_id: id,
            sku: s.sku,
            name: s.name,
            unit_price: s.price,
            quantity,
            line_total,
        })
        .collect();
    let order = Order {
        id: OrderId::generate(),
        status: OrderStatus::Pending,
        email: request.order.email.as_str().to_owned(),
        name: request.order.name.as_str().to_owned(),
        note: request.order.note.as_ref().map(|n| n.as_str().to_owned()),
        currency: request.currency.clone(),
        total,
        lines,
        created_by: request.api_key,
        created_at: now,
        updated_at: now,
    };

    conn.insert_order(&order).await?;
    for (line_no, line) in order.lines.iter().enumerate() {
        conn.insert_order_line(order.id.as_uuid(), line_no as i32 + 1, line)
            .await?;
    }
    conn.insert_event(&NewEvent {
        kind: "order.created",
        subject_id: order.id.as_uuid(),
        payload: json!({
            "order_id": order.id.to_string(),
            "status": order.status.as_str(),
            "email": order.email,
            "currency": order.currency,
            "total": order.total,
        }),
        at: now,
    })
    .await?;
    let response = StoredResponse {
        status: 201,
        body: (context.render)(&order),
    };
    conn.insert_idempotency_record(
        request.api_key,
        &request.idempotency_key,
        &request.fingerprint,
        order.id.as_uuid(),
        (i32::from(response.status), &response.body),
        now,
        now + context.idempotency_ttl,
    )
    .await?;
    Ok(CreateOutcome::Created { order, response })
}

impl LineProblem {
    fn unknown(line: usize) -> Self {
        Self {
            line,
            code: "unknown_product",
            message: "names no product in the catalogue".into(),
        }
    }
}
