//! The statements an order transaction is made of, behind one trait implemented for both
//! connection types. The order logic in `create.rs` and `transition.rs` is written once
//! against this trait; the SQL here is shared text, compiled once per driver by the macro.

use std::future::Future;

use orderly_domain::{Order, OrderLine, OrderStatus, ProductId};
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

/// A stored idempotency record.
#[derive(Debug, Clone)]
pub(crate) struct IdempotencyRecord {
    pub fingerprint: Vec<u8>,
    pub response_status: i32,
    pub response_body: String,
    pub expires_at: OffsetDateTime,
}

/// The product facts an order line snapshots when its stock is reserved.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    pub sku: String,
    pub name: String,
    pub price: i64,
    pub currency: String,
}

/// One outbox event.
#[derive(Debug, Clone)]
pub(crate) struct NewEvent<'a> {
    pub kind: &'a str,
    pub subject_id: Uuid,
    pub payload: serde_json::Value,
    pub at: OffsetDateTime,
}

/// Statements on one connection inside an open transaction.
pub(crate) trait OrderSql: Send {
    fn savepoint(&mut self) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    fn release_savepoint(&mut self) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    fn rollback_to_savepoint(&mut self) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    fn idempotency_record(
        &mut self,
        api_key: Uuid,
        key: &str,
    ) -> impl Future<Output = Result<Option<IdempotencyRecord>, sqlx::Error>> + Send;
    fn delete_idempotency_record(
        &mut self,
        api_key: Uuid,
        key: &str,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    #[allow(clippy::too_many_arguments)]
    fn insert_idempotency_record(
        &mut self,
        api_key: Uuid,
        key: &str,
        fingerprint: &[u8],
        order_id: Uuid,
        response: (i32, &str),
        created_at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    fn product_id_by_sku(
        &mut self,
        sku: &str,
    ) -> impl Future<Output = Result<Option<Uuid>, sqlx::Error>> + Send;
    /// Takes `quantity` off the product's stock if it is active and has that many.
    fn reserve_stock(
        &mut self,
        product: ProductId,
        quantity: i64,
        at: OffsetDateTime,
    ) -> impl Future<Output = Result<Option<Snapshot>, sqlx::Error>> + Send;
    /// The product's stock and whether it is orderable, to explain a failed reservation.
    fn stock_state(
        &mut self,
        product: ProductId,
    ) -> impl Future<Output = Result<Option<(i64, bool)>, sqlx::Error>> + Send;
    fn release_stock(
        &mut self,
        product: ProductId,
        quantity: i64,
        at: OffsetDateTime,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    fn insert_order(
        &mut self,
        order: &Order,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    fn insert_order_line(
        &mut self,
        order: Uuid,
        line_no: i32,
        line: &OrderLine,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    fn insert_event(
        &mut self,
        event: &NewEvent<'_>,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    /// Moves the order to `to` if it is in one of `from`; `false` when it is not.
    fn set_order_status(
        &mut self,
        order: Uuid,
        to: OrderStatus,
        from: [OrderStatus; 2],
        at: OffsetDateTime,
    ) -> impl Future<Output = Result<bool, sqlx::Error>> + Send;
    /// The order's lines as `(product, quantity)`, in product order.
    fn order_quantities(
        &mut self,
        order: Uuid,
    ) -> impl Future<Output = Result<Vec<(Uuid, i64)>, sqlx::Error>> + Send;
    fn order_status(
        &mut self,
        order: Uuid,
    ) -> impl Future<Output = Result<Option<String>, sqlx::Error>> + Send;
}

macro_rules! impl_order_sql {
    ($connection:ty) => {
        impl OrderSql for $connection {
            async fn savepoint(&mut self) -> Result<(), sqlx::Error> {
                sqlx::query("SAVEPOINT order_sp").execute(&mut *self).await.map(|_| ())
            }

            async fn release_savepoint(&mut self) -> Result<(), sqlx::Error> {
                sqlx::query("RELEASE SAVEPOINT order_sp").execute(&mut *self).await.map(|_| ())
            }

            async fn rollback_to_savepoint(&mut self) -> Result<(), sqlx::Error> {
                sqlx::query("ROLLBACK TO SAVEPOINT order_sp")
                    .execute(&mut *self)
                    .await
                    .map(|_| ())
            }

            async fn idempotency_record(
                &mut self,
                api_key: Uuid,
                key: &str,
            ) -> Result<Option<IdempotencyRecord>, sqlx::Error> {
                let row: Option<(Vec<u8>, i32, String, OffsetDateTime)> = sqlx::query_as(
                    "SELECT fingerprint, response_status, response_body, expires_at \
                     FROM idempotency_keys WHERE api_key_id = $1 AND key = $2",
                )
                .bind(api_key)
                .bind(key)
                .fetch_optional(&mut *self)
                .await?;
                Ok(row.map(|(fingerprint, response_status, response_body, expires_at)| {
                    IdempotencyRecord { fingerprint, response_status, response_body, expires_at }
                }))
            }

            async fn delete_idempotency_record(
                &mut self,
                api_key: Uuid,
                key: &str,
            ) -> Result<(), sqlx::Error> {
                sqlx::query("DELETE FROM idempotency_keys WHERE api_key_id = $1 AND key = $2")
                    .bind(api_key)
                    .bind(key)
                    .execute(&mut *self)
                    .await
                    .map(|_| ())
            }

            async fn insert_idempotency_record(
                &mut self,
                api_key: Uuid,
                key: &str,
                fingerprint: &[u8],
                order_id: Uuid,
                response: (i32, &str),
                created_at: OffsetDateTime,
                expires_at: OffsetDateTime,
            ) -> Result<(), sqlx::Error> {
                sqlx::query(
                    "INSERT INTO idempotency_keys (api_key_id, key, fingerprint, order_id, \
                     response_status, response_body, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(api_key)
                .bind(key)
                .bind(fingerprint)
                .bind(order_id)
                .bind(response.0)
                .bind(response.1)
                .bind(created_at)
                .bind(expires_at)
                .execute(&mut *self)
                .await
                .map(|_| ())
            }

            async fn product_id_by_sku(&mut self, sku: &str) -> Result<Option<Uuid>, sqlx::Error> {
                sqlx::query_scalar("SELECT id FROM products WHERE sku = $1")
                    .bind(sku)
                    .fetch_optional(&mut *self)
                    .await
            }

            async fn reserve_stock(
                &mut self,
                product: ProductId,
                quantity: i64,
                at: OffsetDateTime,
            ) -> Result<Option<Snapshot>, sqlx::Error> {
                let row: Option<(String, String, i64, String)> = sqlx::query_as(
                    "UPDATE products SET stock = stock - $2, version = version + 1, \
                     updated_at = $3 WHERE id = $1 AND stock >= $2 AND active \
                     RETURNING sku, name, price, currency",
                )
                .bind(product.as_uuid())
                .bind(quantity)
                .bind(at)
                .fetch_optional(&mut *self)
                .await?;
                Ok(row.map(|(sku, name, price, currency)| Snapshot { sku, name, price, currency }))
            }

            async fn stock_state(
                &mut self,
                product: ProductId,
            ) -> Result<Option<(i64, bool)>, sqlx::Error> {
                sqlx::query_as("SELECT stock, active FROM products WHERE id = $1")
                    .bind(product.as_uuid())
                    .fetch_optional(&mut *self)
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
                .bind(at)
                .execute(&mut *self)
                .await
                .map(|_| ())
            }

            async fn insert_order(&mut self, order: &Order) -> Result<(), sqlx::Error> {
                sqlx::query(
                    "INSERT INTO orders (id, status, email, name, note, currency, total, \
                     created_by, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
                )
                .bind(order.id.as_uuid())
                .bind(order.status.as_str())
                .bind(&order.email)
                .bind(&order.name)
                .bind(order.note.as_deref())
                .bind(&order.currency)
                .bind(order.total)
                .bind(order.created_by)
                .bind(order.created_at)
                .execute(&mut *self)
                .await
                .map(|_| ())
            }

            async fn insert_order_line(
                &mut self,
                order: Uuid,
                line_no: i32,
                line: &OrderLine,
            ) -> Result<(), sqlx::Error> {
                sqlx::query(
                    "INSERT INTO order_lines (order_id, line_no, product_id, sku, name, \
                     unit_price, quantity, line_total) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(order)
                .bind(line_no)
                .bind(line.product_id.as_uuid())
                .bind(&line.sku)
                .bind(&line.name)
                .bind(line.unit_price)
                .bind(line.quantity)
                .bind(line.line_total)
                .execute(&mut *self)
                .await
                .map(|_| ())
            }

            async fn insert_event(&mut self, event: &NewEvent<'_>) -> Result<(), sqlx::Error> {
                sqlx::query(
                    "INSERT INTO events (id, type, subject_id, payload, created_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(Uuid::now_v7())
                .bind(event.kind)
                .bind(event.subject_id)
                .bind(Json(&event.payload))
                .bind(event.at)
                .execute(&mut *self)
                .await
                .map(|_| ())
            }

            async fn set_order_status(
                &mut self,
                order: Uuid,
                to: OrderStatus,
                from: [OrderStatus; 2],
                at: OffsetDateTime,
            ) -> Result<bool, sqlx::Error> {
                let done = sqlx::query(
                    "UPDATE orders SET status = $2, updated_at = $3 \
                     WHERE id = $1 AND (status = $4 OR status = $5)",
                )
                .bind(order)
                .bind(to.as_str())
                .bind(at)
                .bind(from[0].as_str())
                .bind(from[1].as_str())
                .execute(&mut *self)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn order_quantities(
                &mut self,
                order: Uuid,
            ) -> Result<Vec<(Uuid, i64)>, sqlx::Error> {
                sqlx::query_as(
                    "SELECT product_id, quantity FROM order_lines WHERE order_id = $1 \
                     ORDER BY product_id",
                )
                .bind(order)
                .fetch_all(&mut *self)
                .await
            }

            async fn order_status(&mut self, order: Uuid) -> Result<Option<String>, sqlx::Error> {
                sqlx::query_scalar("SELECT status FROM orders WHERE id = $1")
                    .bind(order)
                    .fetch_optional(&mut *self)
                    .await
            }
        }
    };
}

impl_order_sql!(sqlx::SqliteConnection);
impl_order_sql!(sqlx::PgConnection);
