//! Orders in the store: placing them in batches (see `place.rs`), moving them between states
//! (`transition.rs`), and reading them back (`read.rs`).

mod change;
mod change_record;
mod change_sql;
mod edit;
mod place;
mod place_postgres;
mod place_sqlite;
mod read;
mod returns;
mod snapshot;
pub(crate) mod sql;
mod transition;

use orderly_domain::{NewOrder, Order, OrderAction, OrderId, OrderStatus, PageLimit};
use time::OffsetDateTime;
use uuid::Uuid;

pub use change::{
    ChangeKey, ChangeOutcome, ChangeRequest, ChangeSettings, OrderChange, ReceivedOf, ReturnRefund,
    Tracking, UnitsOf,
};
pub(crate) use change_record::actor_json;
pub use orderly_domain::reservation::{LineProblem, OrderRejection, ShortLine};
use place::{BatchContext, judge_retry, place_batch};
use read::push_id_list;

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
    /// Who places it, as its `order.created` event records.
    pub actor: orderly_domain::Actor,
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
        actor: &orderly_domain::Actor,
        trace: Option<&str>,
    ) -> Result<(TransitionOutcome, Option<Order>), StoreError> {
        let now = orderly_domain::now();
        let outcome = with_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let outcome = transition::transition(&mut *tx, id, action, actor, trace, now).await?;
            tx.commit().await?;
            outcome
        });
        let (outcome, enqueued) = outcome;
        self.queue.after_commit(enqueued);
        let order = self.order_by_id(id).await?;
        Ok((outcome, order))
    }

    /// Applies a change (a capture, a shipment, a cancellation of units, a refund) to an order
    /// in one transaction; see `change.rs`. Two requests that race to record the same
    /// idempotency key or payment reference: the second, refused by the unique key, runs once
    /// more and then sees what the first recorded (a replay, or the payment recorded before).
    #[tracing::instrument(name = "db", skip_all, fields(op = "change_order"))]
    pub async fn change_order(
        &self,
        request: &ChangeRequest,
        settings: ChangeSettings,
    ) -> Result<ChangeOutcome, StoreError> {
        for attempt in 0..2 {
            let now = orderly_domain::now();
            let result = with_pool!(self, pool => async {
                let mut tx = pool.begin_write().await?;
                let applied = change::apply(&mut *tx, request, settings, now).await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>(applied)
            }.await);
            match result {
                Ok((outcome, enqueued)) => {
                    self.queue.after_commit(enqueued);
                    return Ok(outcome);
                }
                Err(e) if attempt == 0 && is_unique_violation(&e) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        unreachable!("the loop returns on its second pass")
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
