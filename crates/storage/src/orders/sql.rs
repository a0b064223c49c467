//! The statements of an order state change, behind one trait implemented for both connection
//! types: the SQL is shared text, compiled once per driver by the macro, and the logic in
//! `transition.rs` is written once against the trait.

use std::future::Future;

use orderly_domain::{OrderStatus, ProductId};
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

/// Statements on one connection inside an open transaction.
pub(crate) trait TransitionSql: crate::webhooks::OutboxSql {
    /// Moves the order to `to` if it is in one of `from` and nothing was captured for it;
    /// `false` when not. (Only expiry moves an order this way: every other change is the
    /// lifecycle's, `change.rs`.)
    fn set_order_status(
        &mut self,
        order: Uuid,
        to: OrderStatus,
        from: [OrderStatus; 2],
        at: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, sqlx::Error>> + Send;
    fn order_status(
        &mut self,
        order: Uuid,
    ) -> impl Future<Output = Result<Option<String>, sqlx::Error>> + Send;
    /// The order's lines as `(product, units neither cancelled nor shipped)`, in product
    /// order, leaving out lines with none.
    fn order_quantities(
        &mut self,
        order: Uuid,
    ) -> impl Future<Output = Result<Vec<(Uuid, i64)>, sqlx::Error>> + Send;
    fn release_stock(
        &mut self,
        product: ProductId,
        quantity: i64,
        at: OffsetDateTime,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    /// Writes the event `id` to the outbox.
    fn insert_event(
        &mut self,
        id: Uuid,
        kind: &str,
        subject: Uuid,
        payload: &serde_json::Value,
        at: OffsetDateTime,
        trace: Option<&str>,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}

macro_rules! impl_transition_sql {
    ($connection:ty) => {
        impl TransitionSql for $connection {
            async fn set_order_status(
                &mut self,
                order: Uuid,
                to: OrderStatus,
                from: [OrderStatus; 2],
                at: OffsetDateTime,
            ) -> Result<bool, sqlx::Error> {
                let done = sqlx::query(
                    "UPDATE orders SET status = $2, updated_at = $3, version = version + 1 \
                     WHERE id = $1 AND (status = $4 OR status = $5) AND captured = 0",
                )
                .bind(order)
                .bind(to.as_str())
                .bind(orderly_db::Timestamp::new(at))
                .bind(from[0].as_str())
                .bind(from[1].as_str())
                .execute(&mut *self)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn order_status(&mut self, order: Uuid) -> Result<Option<String>, sqlx::Error> {
                sqlx::query_scalar("SELECT status FROM orders WHERE id = $1")
                    .bind(order)
                    .fetch_optional(&mut *self)
                    .await
            }

            async fn order_quantities(
                &mut self,
                order: Uuid,
            ) -> Result<Vec<(Uuid, i64)>, sqlx::Error> {
                sqlx::query_as(
                    "SELECT product_id, quantity - cancelled - shipped FROM order_lines \
                     WHERE order_id = $1 AND quantity - cancelled - shipped > 0 \
                     ORDER BY product_id",
                )
                .bind(order)
                .fetch_all(&mut *self)
                .await
            }

            async fn release_stock(
                &mut self,
                product: ProductId,
                quantity: i64,
                at: OffsetDateTime,
            ) -> Result<(), sqlx::Error> {
                sqlx::query(
                    "UPDATE products SET stock = stock + $2, version = version + 1, \
                     updated_at = $3 WHERE id = $1",
                )
                .bind(product.as_uuid())
                .bind(quantity)
                .bind(orderly_db::Timestamp::new(at))
                .execute(&mut *self)
                .await
                .map(|_| ())
            }

            async fn insert_event(
                &mut self,
                id: Uuid,
                kind: &str,
                subject: Uuid,
                payload: &serde_json::Value,
                at: OffsetDateTime,
                trace: Option<&str>,
            ) -> Result<(), sqlx::Error> {
                sqlx::query(
                    "INSERT INTO events (id, type, subject_id, payload, created_at, \
                     trace_context) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(id)
                .bind(kind)
                .bind(subject)
                .bind(Json(payload))
                .bind(orderly_db::Timestamp::new(at))
                .bind(trace)
                .execute(&mut *self)
                .await
                .map(|_| ())
            }
        }
    };
}

impl_transition_sql!(sqlx::SqliteConnection);
impl_transition_sql!(sqlx::PgConnection);
