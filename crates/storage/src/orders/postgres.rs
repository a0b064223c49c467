//! Placing a batch of orders on PostgreSQL in two round trips: `orderly_place_orders` (see
//! `migrations/postgres/0003_place_orders.sql`) does every order's work inside the database,
//! then one `UPDATE … FROM unnest(…)` stores the rendered responses for idempotent replays.
//! Statement-by-statement from Rust, an order costs nine round trips; on two cores those
//! round trips, not the SQL, were where the time went.

use orderly_domain::{Order, OrderId, OrderLine, OrderStatus, ProductId, ProductRef};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::types::Json;
use uuid::Uuid;

use super::create::BatchContext;
use super::{CreateOrder, CreateOutcome, LineProblem, OrderRejection, ShortLine, StoredResponse};
use crate::StoreError;

/// One order's result, as the function reports it.
#[derive(Debug, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
enum Placed {
    Created { total: i64, lines: Vec<PlacedLine> },
    Replayed { status: i32, body: String },
    KeyReused,
    InFlight,
    Invalid { problems: Vec<Problem> },
    Short { shorts: Vec<Short> },
    TooLarge,
    Error { sqlstate: String, message: String },
}

#[derive(Debug, Deserialize)]
struct PlacedLine {
    product_id: Uuid,
    sku: String,
    name: String,
    unit_price: i64,
    quantity: i64,
    line_total: i64,
}

#[derive(Debug, Deserialize)]
struct Problem {
    line: usize,
    code: String,
}

#[derive(Debug, Deserialize)]
struct Short {
    line: usize,
    product_id: Uuid,
    requested: i64,
    available: i64,
}

fn request_json(request: &CreateOrder, context: &BatchContext<'_>, order_id: Uuid) -> Value {
    let lines: Vec<Value> = request
        .order
        .lines
        .iter()
        .map(|line| match &line.product {
            ProductRef::Id(id) => {
                json!({"product_id": id.as_uuid(), "quantity": line.quantity.get()})
            }
            ProductRef::Sku(sku) => json!({"sku": sku.as_str(), "quantity": line.quantity.get()}),
        })
        .collect();
    let fingerprint: String = request
        .fingerprint
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    json!({
        "api_key": request.api_key,
        "key": request.idempotency_key,
        "fingerprint": fingerprint,
        "now": context.now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "order_id": order_id,
        "event_id": Uuid::now_v7(),
        "currency": request.currency,
        "email": request.order.email.as_str(),
        "name": request.order.name.as_str(),
        "note": request.order.note.as_ref().map(|n| n.as_str()),
        "ttl_secs": context.idempotency_ttl.as_seconds_f64(),
        "lines": lines,
    })
}

fn problem_message(code: &str) -> &'static str {
    match code {
        "unknown_product" => "names no product in the catalogue",
        "duplicate_product" => "names a product another line already orders",
        "product_unavailable" => "the product is inactive or archived",
        "currency_mismatch" => "the product is priced in another currency",
        _ => "cannot be ordered",
    }
}

fn static_code(code: &str) -> &'static str {
    match code {
        "unknown_product" => "unknown_product",
        "duplicate_product" => "duplicate_product",
        "product_unavailable" => "product_unavailable",
        "currency_mismatch" => "currency_mismatch",
        _ => "invalid_line",
    }
}

/// Places `requests` inside the open transaction `conn`.
pub(crate) async fn place_batch(
    conn: &mut sqlx::PgConnection,
    requests: &[CreateOrder],
    context: &BatchContext<'_>,
) -> Result<Vec<Result<CreateOutcome, StoreError>>, StoreError> {
    let ids: Vec<Uuid> = requests.iter().map(|_| Uuid::now_v7()).collect();
    let batch: Vec<Value> = requests
        .iter()
        .zip(&ids)
        .map(|(request, id)| request_json(request, context, *id))
        .collect();
    let Json(placed): Json<Vec<Placed>> = sqlx::query_scalar("SELECT orderly_place_orders($1)")
        .bind(Json(&batch))
        .fetch_one(&mut *conn)
        .await?;
    if placed.len() != requests.len() {
        return Err(StoreError::Corrupt(format!(
            "orderly_place_orders answered {} results for {} orders",
            placed.len(),
            requests.len()
        )));
    }

    let mut outcomes = Vec::with_capacity(requests.len());
    let (mut keys, mut api_keys, mut bodies) = (Vec::new(), Vec::new(), Vec::new());
    for ((request, id), placed) in requests.iter().zip(ids).zip(placed) {
        let outcome = match placed {
            Placed::Created { total, lines } => {
                let order = Order {
                    id: OrderId::from_uuid(id),
                    status: OrderStatus::Pending,
                    email: request.order.email.as_str().to_owned(),
                    name: request.order.name.as_str().to_owned(),
                    note: request.order.note.as_ref().map(|n| n.as_str().to_owned()),
                    currency: request.currency.clone(),
                    total,
                    lines: lines
                        .into_iter()
                        .map(|l| OrderLine {
                            product_id: ProductId::from_uuid(l.product_id),
                            sku: l.sku,
                            name: l.name,
                            unit_price: l.unit_price,
                            quantity: l.quantity,
                            line_total: l.line_total,
                        })
                        .collect(),
                    created_by: request.api_key,
                    created_at: context.now,
                    updated_at: context.now,
                };
                let response = StoredResponse {
                    status: 201,
                    body: (context.render)(&order),
                };
                api_keys.push(request.api_key);
                keys.push(request.idempotency_key.clone());
                bodies.push(response.body.clone());
                Ok(CreateOutcome::Created { order, response })
            }
            Placed::Replayed { status, body } => Ok(CreateOutcome::Replayed(StoredResponse {
                status: u16::try_from(status).unwrap_or(201),
                body,
            })),
            Placed::KeyReused => Ok(CreateOutcome::KeyReused),
            Placed::InFlight => Ok(CreateOutcome::InFlight),
            Placed::Invalid { mut problems } => {
                problems.sort_by_key(|p| p.line);
                let problems = problems
                    .into_iter()
                    .map(|p| LineProblem {
                        line: p.line,
                        code: static_code(&p.code),
                        message: problem_message(&p.code).into(),
                    })
                    .collect();
                Ok(CreateOutcome::Rejected(OrderRejection::InvalidLines(
                    problems,
                )))
            }
            Placed::Short { mut shorts } => {
                shorts.sort_by_key(|s| s.line);
                let shorts = shorts
                    .into_iter()
                    .map(|s| ShortLine {
                        line: s.line,
                        product_id: ProductId::from_uuid(s.product_id),
                        requested: s.requested,
                        available: s.available,
                    })
                    .collect();
                Ok(CreateOutcome::Rejected(OrderRejection::OutOfStock(shorts)))
            }
            Placed::TooLarge => Ok(CreateOutcome::Rejected(OrderRejection::TotalTooLarge)),
            Placed::Error { sqlstate, message } => Err(StoreError::OrderFailed(format!(
                "placing the order failed in the database ({sqlstate}): {message}"
            ))),
        };
        outcomes.push(outcome);
    }

    if !bodies.is_empty() {
        sqlx::query(
            "UPDATE idempotency_keys AS i SET response_body = u.body \
             FROM unnest($1::uuid[], $2::text[], $3::text[]) AS u(api_key_id, key, body) \
             WHERE i.api_key_id = u.api_key_id AND i.key = u.key",
        )
        .bind(&api_keys)
        .bind(&keys)
        .bind(&bodies)
        .execute(&mut *conn)
        .await?;
    }
    Ok(outcomes)
}
