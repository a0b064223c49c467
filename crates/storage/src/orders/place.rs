//! Placing a batch of orders in one transaction with a fixed number of statements, whatever
//! the batch size: load (and lock) the products the batch names, load its idempotency
//! records, decide every order in memory against a [`StockBook`], then write what was decided
//! ([`PlaceSql::write_batch`]: one statement on PostgreSQL, one per row on SQLite). The backends differ only in how they run those few statements
//! ([`PlaceSql`], in `place_sqlite.rs` and `place_postgres.rs`).

use std::collections::{HashMap, HashSet};
use std::future::Future;

use orderly_domain::reservation::{StockBook, StockedProduct};
use orderly_domain::{Order, OrderStatus, ProductId, ProductRef};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{CreateOrder, CreateOutcome, snapshot};
use crate::webhooks::{OutboxEvent, OutboxSql, queue_deliveries};
use orderly_queue::{Enqueued, NewJob, enqueue_in};

/// What every order of a batch shares.
pub(crate) struct BatchContext {
    pub now: OffsetDateTime,
    pub idempotency_ttl: time::Duration,
}

/// A stored idempotency record.
#[derive(Debug, Clone)]
pub(crate) struct IdempotencyRecord {
    pub api_key_id: Uuid,
    pub key: String,
    pub fingerprint: Vec<u8>,
    /// 201: the status of the answer that created the order.
    pub response_status: i32,
    /// The order as it was created ([`snapshot`]).
    pub response_body: String,
    pub expires_at: OffsetDateTime,
}

/// An outbox event to insert.
#[derive(Debug, Clone)]
pub(crate) struct EventRow<'a> {
    pub id: Uuid,
    pub kind: &'static str,
    pub subject_id: Uuid,
    pub payload: String,
    pub at: OffsetDateTime,
    /// The `traceparent` of the request that placed the order.
    pub trace: Option<&'a str>,
}

/// The statements of a batch, inside an open transaction.
pub(crate) trait PlaceSql: OutboxSql {
    /// The products with these ids or skus. On PostgreSQL they are locked, in id order, so
    /// concurrent batches queue on them instead of deadlocking.
    fn load_products(
        &mut self,
        ids: &[Uuid],
        skus: &[String],
    ) -> impl Future<Output = Result<Vec<StockedProduct>, sqlx::Error>> + Send;
    fn idempotency_records(
        &mut self,
        keys: &[(Uuid, String)],
    ) -> impl Future<Output = Result<Vec<IdempotencyRecord>, sqlx::Error>> + Send;
    fn delete_idempotency_records(
        &mut self,
        keys: &[(Uuid, String)],
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    /// Writes what the batch decided: the stock taken (guarded: stock never goes below zero,
    /// the statement fails instead), the orders and their lines, their events and their
    /// idempotency records.
    fn write_batch(
        &mut self,
        writes: &BatchWrites<'_>,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}

/// Everything a batch writes, for [`PlaceSql::write_batch`]; every row is dated `at`.
pub(crate) struct BatchWrites<'a> {
    pub taken: &'a [(ProductId, i64)],
    pub orders: &'a [&'a Order],
    pub events: &'a [EventRow<'a>],
    pub records: &'a [IdempotencyRecord],
    pub at: OffsetDateTime,
}

/// The answer to a request whose key has a live record: the same request gets the order it
/// created, another is refused.
pub(crate) fn judge_retry(
    record: &IdempotencyRecord,
    request: &CreateOrder,
) -> Result<CreateOutcome, sqlx::Error> {
    Ok(if record.fingerprint == request.fingerprint {
        CreateOutcome::Replayed(Box::new(snapshot::read(
            &record.response_body,
            record.api_key_id,
        )?))
    } else {
        CreateOutcome::KeyReused
    })
}

/// Places `requests` inside the open transaction `conn`. Any error means the caller must roll
/// the transaction back: nothing of the batch may be committed. After the commit, the jobs
/// it enqueued go to [`orderly_queue::Queue::after_commit`].
pub(crate) async fn place_batch<C: PlaceSql>(
    conn: &mut C,
    requests: &[CreateOrder],
    context: &BatchContext,
) -> Result<(Vec<CreateOutcome>, Enqueued), sqlx::Error> {
    let (outcomes, book) = decide(conn, requests, context.now).await?;
    let created: Vec<(&CreateOrder, &Order)> = requests
        .iter()
        .zip(&outcomes)
        .filter_map(|(request, outcome)| match outcome {
            CreateOutcome::Created(order) => Some((request, &**order)),
            _ => None,
        })
        .collect();
    if created.is_empty() {
        return Ok((outcomes, Enqueued::default()));
    }
    let enqueued = write_created(conn, &created, &book, context).await?;
    Ok((outcomes, enqueued))
}

/// Decides each request of the batch in memory, against the stock of the products the batch
/// names and the idempotency records of its keys; deletes the expired records it met.
async fn decide<C: PlaceSql>(
    conn: &mut C,
    requests: &[CreateOrder],
    now: OffsetDateTime,
) -> Result<(Vec<CreateOutcome>, StockBook), sqlx::Error> {
    let mut ids = Vec::new();
    let mut skus = Vec::new();
    for line in requests.iter().flat_map(|r| &r.order.lines) {
        match &line.product {
            ProductRef::Id(id) => ids.push(id.as_uuid()),
            ProductRef::Sku(sku) => skus.push(sku.as_str().to_owned()),
        }
    }
    ids.sort_unstable();
    ids.dedup();
    skus.sort_unstable();
    skus.dedup();
    let mut book = StockBook::new(conn.load_products(&ids, &skus).await?);

    let keys: Vec<(Uuid, String)> = requests
        .iter()
        .map(|r| (r.api_key, r.idempotency_key.clone()))
        .collect();
    let records: HashMap<(Uuid, String), IdempotencyRecord> = conn
        .idempotency_records(&keys)
        .await?
        .into_iter()
        .map(|r| ((r.api_key_id, r.key.clone()), r))
        .collect();

    let mut outcomes = Vec::with_capacity(requests.len());
    let mut expired = Vec::new();
    let mut seen = HashSet::new();
    for (request, key) in requests.iter().zip(keys) {
        if !seen.insert(key.clone()) {
            outcomes.push(CreateOutcome::InFlight);
            continue;
        }
        if let Some(record) = records.get(&key) {
            if record.expires_at > now {
                outcomes.push(judge_retry(record, request)?);
                continue;
            }
            expired.push(key);
        }
        outcomes.push(match book.place(&request.order, &request.currency) {
            Ok(placement) => CreateOutcome::Created(Box::new(Order {
                id: request.id,
                status: OrderStatus::Pending,
                email: request.order.email.as_str().to_owned(),
                name: request.order.name.as_str().to_owned(),
                note: request.order.note.as_ref().map(|n| n.as_str().to_owned()),
                currency: request.currency.clone(),
                total: placement.total,
                captured: 0,
                refunded: 0,
                version: 1,
                lines: placement.lines,
                created_by: request.api_key,
                receipt_sent_at: None,
                created_at: now,
                updated_at: now,
                returns: Some(Vec::new()),
            })),
            Err(rejection) => CreateOutcome::Rejected(rejection),
        });
    }
    if !expired.is_empty() {
        conn.delete_idempotency_records(&expired).await?;
    }
    Ok((outcomes, book))
}

/// Writes the orders the batch created: the stock they took, the orders, their
/// `order.created` events and the deliveries of those, their idempotency records (each with
/// its order as created, [`snapshot`]) and the jobs their requests asked to follow them.
async fn write_created<C: PlaceSql>(
    conn: &mut C,
    created: &[(&CreateOrder, &Order)],
    book: &StockBook,
    context: &BatchContext,
) -> Result<Enqueued, sqlx::Error> {
    let now = context.now;
    let orders: Vec<&Order> = created.iter().map(|(_, order)| *order).collect();
    let events: Vec<EventRow> = created
        .iter()
        .map(|(request, order)| EventRow {
            id: Uuid::now_v7(),
            kind: "order.created",
            subject_id: order.id.as_uuid(),
            payload: json!({
                "order_id": order.id.to_string(),
                "status": order.status.as_str(),
                "email": order.email,
                "currency": order.currency,
                "total": order.total,
                "actor": super::change_record::actor_json(&request.actor),
            })
            .to_string(),
            at: now,
            trace: request.trace_context.as_deref(),
        })
        .collect();
    let records: Vec<IdempotencyRecord> = created
        .iter()
        .map(|(request, order)| IdempotencyRecord {
            api_key_id: request.api_key,
            key: request.idempotency_key.clone(),
            fingerprint: request.fingerprint.clone(),
            response_status: 201,
            response_body: snapshot::write(order),
            expires_at: now + context.idempotency_ttl,
        })
        .collect();
    conn.write_batch(&BatchWrites {
        taken: &book.taken(),
        orders: &orders,
        events: &events,
        records: &records,
        at: now,
    })
    .await?;
    let follow_up: Vec<NewJob> = created
        .iter()
        .flat_map(|(request, _)| request.follow_up.iter().cloned())
        .collect();
    let jobs = enqueue_in(conn, &follow_up, now).await?;
    let outbox: Vec<OutboxEvent<'_>> = events
        .iter()
        .map(|event| OutboxEvent {
            id: event.id,
            kind: event.kind,
            trace: event.trace,
        })
        .collect();
    let deliveries = queue_deliveries(conn, &outbox, now).await?;
    Ok(jobs.and(deliveries))
}
