//! Orders in the store: placing them in batches (see `place.rs`), moving them between states
//! (`transition.rs`), and reading them back.

mod place;
mod place_postgres;
mod place_sqlite;
mod snapshot;
mod sql;
mod transition;

use orderly_domain::{
    NewOrder, Order, OrderAction, OrderId, OrderLine, OrderStatus, PageLimit, ProductId,
};
use sqlx::{ColumnIndex, Decode, FromRow, Row, Type};
use time::OffsetDateTime;
use uuid::Uuid;

pub use orderly_domain::reservation::{LineProblem, OrderRejection, ShortLine};
use place::{BatchContext, judge_retry, place_batch};

use crate::error::is_unique_violation;
use orderly_db::{WriteConnection, WritePool};

use crate::{Store, StoreError, with_pool};

/// A request to place one order.
#[derive(Debug, Clone)]
pub struct CreateOrder {
    /// The id the order gets if this request creates it.
    pub id: OrderId,
    /// The API key placing the order; idempotency keys are scoped to it.
    pub api_key: Uuid,
    pub idempotency_key: String,
    /// A hash of the request body: a retry must send the same body.
    pub fingerprint: Vec<u8>,
    pub order: NewOrder,
    /// The store currency; every product must be priced in it.
    pub currency: String,
    /// The W3C `traceparent` of the request, handed on to the order's events.
    pub trace_context: Option<String>,
    /// Jobs enqueued in the order's transaction when this request creates it.
    pub follow_up: Vec<orderly_queue::NewJob>,
}

/// How a request to place an order ended.
#[derive(Debug, Clone)]
pub enum CreateOutcome {
    /// The order is committed; retries will get it as it is now.
    Created(Box<Order>),
    /// A retry of a request that already created an order: here is that order as it was
    /// created.
    Replayed(Box<Order>),
    /// The idempotency key was used before with a different body.
    KeyReused,
    /// The same idempotency key is being processed right now.
    InFlight,
    /// Nothing was written; the client must change the request.
    Rejected(OrderRejection),
}

/// How a state change ended.
#[derive(Debug, Clone)]
pub enum TransitionOutcome {
    Done,
    NotFound,
    NotAllowed { current: OrderStatus },
}

/// Which orders a listing returns.
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub status: Option<OrderStatus>,
    pub email: Option<String>,
    /// Only orders created by this API key.
    pub created_by: Option<Uuid>,
    pub after: Option<OrderId>,
    pub limit: PageLimit,
}

/// Settings for placing orders.
#[derive(Debug, Clone, Copy)]
pub struct OrderSettings {
    pub idempotency_ttl: time::Duration,
    /// Longest a batch's transaction may take, from taking a connection to the answer to
    /// its `COMMIT` (see [`Store::create_orders`]).
    pub write_timeout: std::time::Duration,
}

const ORDER_BY_ID: &str = "SELECT id, status, email, name, note, currency, total, created_by, \
                           receipt_sent_at, created_at, updated_at FROM orders WHERE id = $1";

/// Followed by the page's conditions (`list_orders`).
const LIST_ORDERS: &str = "SELECT id, status, email, name, note, currency, total, created_by, \
                           receipt_sent_at, created_at, updated_at FROM orders WHERE id > ";

/// Followed by the id list (`push_id_list`).
const ORDERS_BY_IDS: &str = "SELECT id, status, email, name, note, currency, total, created_by, \
                             receipt_sent_at, created_at, updated_at FROM orders WHERE id IN ";

/// Followed by the id list (`push_id_list`) and the ordering.
const LINES_OF_ORDERS: &str = "SELECT order_id, product_id, sku, name, unit_price, quantity, \
                               line_total FROM order_lines WHERE order_id IN ";

/// Appends `(…)` with one bound parameter per id: the same text on both backends (SQLite has
/// no arrays). Its statements run unprepared (`persistent(false)`): one per batch size would
/// fill each connection's statement cache, and a plan cached while the table was small
/// (a sequential scan) would outlive the table's growth until the next `ANALYZE`.
fn push_id_list<DB>(query: &mut sqlx::QueryBuilder<DB>, ids: impl Iterator<Item = Uuid>)
where
    DB: sqlx::Database,
    for<'t> Uuid: sqlx::Encode<'t, DB> + Type<DB>,
{
    query.push("(");
    let mut list = query.separated(", ");
    for id in ids {
        list.push_bind(id);
    }
    list.push_unseparated(")");
}

struct OrderRow(Order);

impl<'r, R> FromRow<'r, R> for OrderRow
where
    R: Row,
    &'static str: ColumnIndex<R>,
    Uuid: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    OffsetDateTime: Decode<'r, R::Database> + Type<R::Database>,
    Option<OffsetDateTime>: Decode<'r, R::Database> + Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        let status: String = row.try_get("status")?;
        Ok(Self(Order {
            id: OrderId::from_uuid(row.try_get("id")?),
            status: status
                .parse()
                .map_err(|e: String| sqlx::Error::Decode(e.into()))?,
            email: row.try_get("email")?,
            name: row.try_get("name")?,
            note: row.try_get("note")?,
            currency: row.try_get("currency")?,
            total: row.try_get("total")?,
            lines: Vec::new(),
            created_by: row.try_get("created_by")?,
            receipt_sent_at: row.try_get("receipt_sent_at")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        }))
    }
}

/// A line with the id of its order, for reads of many orders' lines at once.
struct LineRow(Uuid, OrderLine);

impl<'r, R> FromRow<'r, R> for LineRow
where
    R: Row,
    &'static str: ColumnIndex<R>,
    Uuid: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        Ok(Self(
            row.try_get("order_id")?,
            OrderLine {
                product_id: ProductId::from_uuid(row.try_get("product_id")?),
                sku: row.try_get("sku")?,
                name: row.try_get("name")?,
                unit_price: row.try_get("unit_price")?,
                quantity: row.try_get("quantity")?,
                line_total: row.try_get("line_total")?,
            },
        ))
    }
}

/// How an order batch's transaction failed, by whether its `COMMIT` had been sent.
enum WriteFailure {
    /// Before `COMMIT`: nothing was committed.
    Statement(sqlx::Error),
    /// `COMMIT` itself failed.
    Commit(sqlx::Error),
    /// The deadline passed; the connection is closed, not returned to the pool.
    Deadline { committing: bool },
}

/// Whether a failed `COMMIT` certainly did not commit: the server answered it with an error
/// of its own (a serialization failure, a deferred constraint), not one that ends the session.
/// Any other failure (the connection lost, a protocol error) leaves the outcome unknown.
fn commit_refused(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(_)) && !orderly_db::is_unavailable(error)
}

impl Store {
    /// Places a batch of orders in one transaction, so the batch costs one durable commit and
    /// a fixed number of statements. An error means nothing of the batch was committed,
    /// except [`StoreError::CommitOutcomeUnknown`]: the connection failed (or the deadline
    /// passed) while `COMMIT` ran, so the orders may exist. Whoever asked must not be told
    /// they succeeded nor that they failed; a retry with the same idempotency key settles it
    /// (it replays the committed order or places it once). No idempotency key is held in the
    /// database while an order is written (its record is written in the same transaction as
    /// the order), so no key is left "in flight" by a failed commit.
    ///
    /// The transaction, from taking a connection to the answer to `COMMIT`, gets
    /// `settings.write_timeout`: a connection to a server that vanished without closing it
    /// (no TCP keepalive reaches it, see [`orderly_db::Db::connect`]) would otherwise hold
    /// this writer for the kernel's retransmission timeout, about 15 minutes. The deadline
    /// only stops waiting: it cannot cancel the commit on the server (sqlx sends no cancel
    /// request), so a commit waiting for the synchronous standby is never cut short into a
    /// local-only success.
    #[tracing::instrument(name = "db", skip_all, fields(op = "create_orders"))]
    pub async fn create_orders(
        &self,
        requests: &[CreateOrder],
        settings: &OrderSettings,
    ) -> Result<Vec<CreateOutcome>, StoreError> {
        let context = BatchContext {
            now: orderly_domain::now(),
            idempotency_ttl: settings.idempotency_ttl,
        };
        let result = with_pool!(self, pool => {
            let mut conn = pool.acquire().await?;
            let mut committing = false;
            let write = async {
                let mut tx = conn.begin_write().await.map_err(WriteFailure::Statement)?;
                let placed = place_batch(&mut *tx, requests, &context)
                    .await
                    .map_err(WriteFailure::Statement)?;
                committing = true;
                tx.commit().await.map_err(WriteFailure::Commit)?;
                Ok(placed)
            };
            let result = tokio::time::timeout(settings.write_timeout, write)
                .await
                .unwrap_or(Err(WriteFailure::Deadline { committing }));
            // A connection whose state is unknown is closed rather than handed to the next
            // caller.
            let unknown = match &result {
                Err(WriteFailure::Deadline { .. }) => true,
                Err(WriteFailure::Commit(e)) => !commit_refused(e),
                _ => false,
            };
            if unknown {
                conn.close_on_drop();
            }
            result
        });
        match result {
            Ok((outcomes, enqueued)) => {
                self.queue.after_commit(enqueued);
                Ok(outcomes)
            }
            // Another process committed the same idempotency key between our lookup and our
            // insert. For a single order that has an answer; a batch is retried one by one.
            Err(WriteFailure::Statement(e)) if is_unique_violation(&e) && requests.len() == 1 => {
                Ok(vec![self.settle_key_race(&requests[0]).await?])
            }
            Err(WriteFailure::Statement(e)) => Err(e.into()),
            Err(WriteFailure::Commit(e)) if commit_refused(&e) => Err(e.into()),
            Err(WriteFailure::Commit(e)) => Err(StoreError::CommitOutcomeUnknown(e)),
            Err(WriteFailure::Deadline { committing: true }) => Err(
                StoreError::CommitOutcomeUnknown(sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer to COMMIT within {:?}", settings.write_timeout),
                ))),
            ),
            Err(WriteFailure::Deadline { committing: false }) => {
                Err(StoreError::WriteTimedOut(settings.write_timeout))
            }
        }
    }

    /// The answer for a request whose idempotency key another transaction took first.
    async fn settle_key_race(&self, request: &CreateOrder) -> Result<CreateOutcome, StoreError> {
        let record = with_pool!(self, pool => sqlx::query_as::<_, (Vec<u8>, i32, String, OffsetDateTime)>(
            "SELECT fingerprint, response_status, response_body, expires_at \
             FROM idempotency_keys WHERE api_key_id = $1 AND key = $2")
            .bind(request.api_key)
            .bind(&request.idempotency_key)
            .fetch_optional(pool)
            .await)?;
        Ok(match record {
            Some((fingerprint, response_status, response_body, expires_at))
                if expires_at > orderly_domain::now() =>
            {
                judge_retry(
                    &place::IdempotencyRecord {
                        api_key_id: request.api_key,
                        key: request.idempotency_key.clone(),
                        fingerprint,
                        response_status,
                        response_body,
                        expires_at,
                    },
                    request,
                )?
            }
            _ => CreateOutcome::InFlight,
        })
    }

    /// Applies `action` to the order and returns it as it now stands. `trace` is the
    /// `traceparent` of the request asking, carried by the webhook deliveries it queues.
    #[tracing::instrument(name = "db", skip_all, fields(op = "transition_order"))]
    pub async fn transition_order(
        &self,
        id: OrderId,
        action: OrderAction,
        trace: Option<&str>,
    ) -> Result<(TransitionOutcome, Option<Order>), StoreError> {
        let now = orderly_domain::now();
        let outcome = with_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let outcome = transition::transition(&mut *tx, id, action, trace, now).await?;
            tx.commit().await?;
            outcome
        });
        let (outcome, enqueued) = outcome;
        self.queue.after_commit(enqueued);
        let order = self.order_by_id(id).await?;
        Ok((outcome, order))
    }

    #[tracing::instrument(name = "db", skip_all, fields(op = "order_by_id"))]
    pub async fn order_by_id(&self, id: OrderId) -> Result<Option<Order>, StoreError> {
        let row = with_pool!(self, pool => sqlx::query_as::<_, OrderRow>(ORDER_BY_ID)
            .bind(id.as_uuid())
            .fetch_optional(pool)
            .await)?;
        match row {
            Some(OrderRow(order)) => {
                let mut found = [order];
                self.attach_lines(&mut found).await?;
                let [order] = found;
                Ok(Some(order))
            }
            None => Ok(None),
        }
    }

    /// One page of orders in creation order, with their lines.
    #[tracing::instrument(name = "db", skip_all, fields(op = "list_orders"))]
    pub async fn list_orders(&self, filter: &OrderFilter) -> Result<Vec<Order>, StoreError> {
        let after = filter.after.map_or(Uuid::nil(), |id| id.as_uuid());
        // The statement names only the filters given, so that each combination (eight at
        // most) is prepared and planned on its own and finds its index (orders_status_id,
        // orders_email_id, orders_created_by_id). One statement for all, with
        // `($2 IS NULL OR email = $2)`, gets a generic plan on PostgreSQL that walks the
        // primary key past every other customer's orders: seconds at millions of rows.
        let rows = with_pool!(self, pool => {
            let mut query = sqlx::QueryBuilder::new(LIST_ORDERS);
            query.push_bind(after);
            if let Some(status) = filter.status {
                query.push(" AND status = ").push_bind(status.as_str());
            }
            if let Some(email) = filter.email.as_deref() {
                query.push(" AND email = ").push_bind(email);
            }
            if let Some(created_by) = filter.created_by {
                query.push(" AND created_by = ").push_bind(created_by);
            }
            query.push(" ORDER BY id LIMIT ").push_bind(i64::from(filter.limit.get()));
            query.build_query_as::<OrderRow>().fetch_all(pool).await
        })?;
        let mut orders: Vec<Order> = rows.into_iter().map(|OrderRow(order)| order).collect();
        self.attach_lines(&mut orders).await?;
        Ok(orders)
    }

    /// The orders with the given ids, with their lines, in two statements whatever their
    /// number: for callers that need many at once (a batch of receipts). Each id's order, or
    /// `None` where there is none, in the order of `ids`.
    #[tracing::instrument(name = "db", skip_all, fields(op = "orders_by_ids", count = ids.len()))]
    pub async fn orders_by_ids(&self, ids: &[OrderId]) -> Result<Vec<Option<Order>>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = with_pool!(self, pool => {
            let mut query = sqlx::QueryBuilder::new(ORDERS_BY_IDS);
            push_id_list(&mut query, ids.iter().map(|id| id.as_uuid()));
            query.build_query_as::<OrderRow>().persistent(false).fetch_all(pool).await
        })?;
        let mut found: Vec<Order> = rows.into_iter().map(|OrderRow(order)| order).collect();
        self.attach_lines(&mut found).await?;
        let mut by_id: std::collections::HashMap<OrderId, Order> =
            found.into_iter().map(|order| (order.id, order)).collect();
        Ok(ids.iter().map(|id| by_id.remove(id)).collect())
    }

    /// Reads the lines of every order in `orders` with one statement and puts them in place.
    async fn attach_lines(&self, orders: &mut [Order]) -> Result<(), StoreError> {
        if orders.is_empty() {
            return Ok(());
        }
        let rows = with_pool!(self, pool => {
            let mut query = sqlx::QueryBuilder::new(LINES_OF_ORDERS);
            push_id_list(&mut query, orders.iter().map(|order| order.id.as_uuid()));
            query.push(" ORDER BY order_id, line_no");
            query.build_query_as::<LineRow>().persistent(false).fetch_all(pool).await
        })?;
        let position: std::collections::HashMap<Uuid, usize> = orders
            .iter()
            .enumerate()
            .map(|(i, order)| (order.id.as_uuid(), i))
            .collect();
        for LineRow(order, line) in rows {
            if let Some(&i) = position.get(&order) {
                orders[i].lines.push(line);
            }
        }
        Ok(())
    }

    /// Records that the receipts of `ids` went out at `at`, in one statement, leaving alone
    /// those whose sending was recorded before.
    #[tracing::instrument(name = "db", skip_all, fields(op = "mark_receipts_sent", count = ids.len()))]
    pub async fn mark_receipts_sent(
        &self,
        ids: &[OrderId],
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        with_pool!(self, pool => {
            let mut query = sqlx::QueryBuilder::new("UPDATE orders SET receipt_sent_at = ");
            query.push_bind(orderly_db::Timestamp::new(at));
            query.push(" WHERE receipt_sent_at IS NULL AND id IN ");
            push_id_list(&mut query, ids.iter().map(|id| id.as_uuid()));
            query.build().persistent(false).execute(pool).await.map(|_| ())
        })?;
        Ok(())
    }
}
