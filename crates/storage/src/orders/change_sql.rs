//! The statements of a change to an order (a capture, a shipment, a cancellation of units, a
//! refund), behind one trait implemented for both connection types, as `sql.rs` does for
//! transitions. PostgreSQL locks the order's row for the transaction (`FOR UPDATE`); SQLite's
//! write transaction holds the whole database already.

use std::future::Future;

use orderly_domain::{Order, OrderLine};
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::read::{LineRow, OrderRow};
use super::returns::ReturnSql as _;
use super::sql::TransitionSql;

/// A change's idempotency record: the request's fingerprint and the order it left.
pub(crate) struct ChangeRecord {
    pub fingerprint: Vec<u8>,
    pub response_status: i32,
    pub response_body: String,
    pub expires_at: OffsetDateTime,
}

/// A row of `payments`, `fulfillments` or `refunds`.
pub(crate) struct ChangeRow<'a> {
    pub id: Uuid,
    pub order: Uuid,
    pub actor: &'a serde_json::Value,
    pub at: OffsetDateTime,
}

/// Statements on one connection inside an open write transaction.
pub(crate) trait ChangeSql:
    TransitionSql + super::returns::ReturnSql + super::edit::EditSql
{
    /// The order with its lines, its row locked until the transaction ends.
    fn lock_order(
        &mut self,
        order: Uuid,
    ) -> impl Future<Output = Result<Option<Order>, sqlx::Error>> + Send;
    /// Writes the order's figures and moves its version on.
    fn write_figures(
        &mut self,
        order: &Order,
        at: OffsetDateTime,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    /// Writes one line's units, refunded money and returned units.
    fn write_line(
        &mut self,
        order: Uuid,
        line_no: i32,
        line: &OrderLine,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    /// The order a capture `(provider, reference)` was recorded for, if it was.
    fn payment_order(
        &mut self,
        provider: &str,
        reference: &str,
    ) -> impl Future<Output = Result<Option<Uuid>, sqlx::Error>> + Send;
    fn insert_payment(
        &mut self,
        row: &ChangeRow<'_>,
        amount: i64,
        provider: &str,
        reference: &str,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    fn insert_fulfillment(
        &mut self,
        row: &ChangeRow<'_>,
        lines: &serde_json::Value,
        tracking: [Option<&str>; 3],
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    fn insert_refund(
        &mut self,
        row: &ChangeRow<'_>,
        amount: i64,
        reason: Option<&str>,
        lines: Option<&serde_json::Value>,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    fn change_record(
        &mut self,
        api_key: Uuid,
        key: &str,
    ) -> impl Future<Output = Result<Option<ChangeRecord>, sqlx::Error>> + Send;
    /// Records a change's key; replaces a record that has expired.
    fn insert_change_record(
        &mut self,
        api_key: Uuid,
        key: &str,
        order: Uuid,
        record: &ChangeRecord,
        at: OffsetDateTime,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}

/// The order's row, with the backend's lock (`$lock`) appended.
macro_rules! lock_order {
    ($lock:literal) => {
        concat!(
            "SELECT id, status, email, name, note, currency, total, captured, refunded, \
             version, created_by, receipt_sent_at, created_at, updated_at FROM orders \
             WHERE id = $1",
            $lock
        )
    };
}

const LINES: &str = "SELECT order_id, product_id, sku, name, unit_price, quantity, line_total, \
                     cancelled, shipped, refunded, return_requested, returned, restocked FROM order_lines \
                     WHERE order_id = $1 \
                     ORDER BY line_no";

macro_rules! impl_change_sql {
    ($connection:ty, $lock:literal) => {
        impl ChangeSql for $connection {
            async fn lock_order(&mut self, order: Uuid) -> Result<Option<Order>, sqlx::Error> {
                let Some(OrderRow(mut found)) = sqlx::query_as::<_, OrderRow>(lock_order!($lock))
                    .bind(order)
                    .fetch_optional(&mut *self)
                    .await?
                else {
                    return Ok(None);
                };
                let lines: Vec<LineRow> = sqlx::query_as(LINES)
                    .bind(order)
                    .fetch_all(&mut *self)
                    .await?;
                found.lines = lines.into_iter().map(|LineRow(_, line)| line).collect();
                found.returns = Some(self.order_returns(order).await?);
                found.settle_legacy();
                Ok(Some(found))
            }

            async fn write_figures(
                &mut self,
                order: &Order,
                at: OffsetDateTime,
            ) -> Result<(), sqlx::Error> {
                sqlx::query(
                    "UPDATE orders SET status = $2, total = $3, captured = $4, refunded = $5, \
                     version = version + 1, updated_at = $6 WHERE id = $1",
                )
                .bind(order.id.as_uuid())
                .bind(order.status.as_str())
                .bind(order.total)
                .bind(order.captured)
                .bind(order.refunded)
                .bind(orderly_db::Timestamp::new(at))
                .execute(&mut *self)
                .await
                .map(|_| ())
            }

            async fn write_line(
                &mut self,
                order: Uuid,
                line_no: i32,
                line: &OrderLine,
            ) -> Result<(), sqlx::Error> {
                sqlx::query(
                    "UPDATE order_lines SET cancelled = $3, shipped = $4, refunded = $5, \
                     return_requested = $6, returned = $7, restocked = $8, quantity = $9, \
                     line_total = $10 WHERE order_id = $1 AND line_no = $2",
                )
                .bind(order)
                .bind(line_no)
                .bind(line.cancelled)
                .bind(line.shipped)
                .bind(line.refunded)
                .bind(line.return_requested)
                .bind(line.returned)
                .bind(line.restocked)
                .bind(line.quantity)
                .bind(line.line_total)
                .execute(&mut *self)
                .await
                .map(|_| ())
            }

            async fn payment_order(
                &mut self,
                provider: &str,
                reference: &str,
            ) -> Result<Option<Uuid>, sqlx::Error> {
                sqlx::query_scalar(
                    "SELECT order_id FROM payments WHERE provider = $1 AND reference = $2",
                )
                .bind(provider)
                .bind(reference)
                .fetch_optional(&mut *self)
                .await
            }

            async fn insert_payment(
                &mut self,
                row: &ChangeRow<'_>,
                amount: i64,
                provider: &str,
                reference: &str,
            ) -> Result<(), sqlx::Error> {
                sqlx::query(
                    "INSERT INTO payments (id, order_id, amount, provider, reference, actor, \
                     created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(row.id)
                .bind(row.order)
                .bind(amount)
                .bind(provider)
                .bind(reference)
                .bind(Json(row.actor))
                .bind(orderly_db::Timestamp::new(row.at))
                .execute(&mut *self)
                .await
                .map(|_| ())
            }

            async fn insert_fulfillment(
                &mut self,
                row: &ChangeRow<'_>,
                lines: &serde_json::Value,
                [carrier, number, url]: [Option<&str>; 3],
            ) -> Result<(), sqlx::Error> {
                sqlx::query(
                    "INSERT INTO fulfillments (id, order_id, lines, carrier, number, url, \
                     actor, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(row.id)
                .bind(row.order)
                .bind(Json(lines))
                .bind(carrier)
                .bind(number)
                .bind(url)
                .bind(Json(row.actor))
                .bind(orderly_db::Timestamp::new(row.at))
                .execute(&mut *self)
                .await
                .map(|_| ())
            }

            async fn insert_refund(
                &mut self,
                row: &ChangeRow<'_>,
                amount: i64,
                reason: Option<&str>,
                lines: Option<&serde_json::Value>,
            ) -> Result<(), sqlx::Error> {
                sqlx::query(
                    "INSERT INTO refunds (id, order_id, amount, reason, lines, actor, \
                     created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(row.id)
                .bind(row.order)
                .bind(amount)
                .bind(reason)
                .bind(lines.map(Json))
                .bind(Json(row.actor))
                .bind(orderly_db::Timestamp::new(row.at))
                .execute(&mut *self)
                .await
                .map(|_| ())
            }

            async fn change_record(
                &mut self,
                api_key: Uuid,
                key: &str,
            ) -> Result<Option<ChangeRecord>, sqlx::Error> {
                let row: Option<(Vec<u8>, i32, String, orderly_db::Timestamp)> = sqlx::query_as(
                    "SELECT fingerprint, response_status, response_body, expires_at \
                         FROM order_change_keys WHERE api_key_id = $1 AND key = $2",
                )
                .bind(api_key)
                .bind(key)
                .fetch_optional(&mut *self)
                .await?;
                Ok(row.map(
                    |(fingerprint, response_status, response_body, expires_at)| ChangeRecord {
                        fingerprint,
                        response_status,
                        response_body,
                        expires_at: expires_at.get(),
                    },
                ))
            }

            async fn insert_change_record(
                &mut self,
                api_key: Uuid,
                key: &str,
                order: Uuid,
                record: &ChangeRecord,
                at: OffsetDateTime,
            ) -> Result<(), sqlx::Error> {
                sqlx::query("DELETE FROM order_change_keys WHERE api_key_id = $1 AND key = $2")
                    .bind(api_key)
                    .bind(key)
                    .execute(&mut *self)
                    .await?;
                sqlx::query(
                    "INSERT INTO order_change_keys (api_key_id, key, fingerprint, order_id, \
                     response_status, response_body, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(api_key)
                .bind(key)
                .bind(&record.fingerprint)
                .bind(order)
                .bind(record.response_status)
                .bind(&record.response_body)
                .bind(orderly_db::Timestamp::new(at))
                .bind(orderly_db::Timestamp::new(record.expires_at))
                .execute(&mut *self)
                .await
                .map(|_| ())
            }
        }
    };
}

impl_change_sql!(sqlx::SqliteConnection, "");
impl_change_sql!(sqlx::PgConnection, " FOR UPDATE");
