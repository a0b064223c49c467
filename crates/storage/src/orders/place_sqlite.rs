//! [`PlaceSql`] on SQLite: one prepared statement per row. SQLite runs in-process, so a
//! statement costs microseconds and there is no round trip to save; the batch's single
//! transaction (one fsync) is what makes it fast. `BEGIN IMMEDIATE` already holds the only
//! write lock, so products need no row locks.

use orderly_domain::reservation::StockedProduct;
use orderly_domain::{Order, ProductId};
use sqlx::SqliteConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::place::{BatchWrites, EventRow, IdempotencyRecord, PlaceSql};

type ProductRow = (Uuid, String, String, i64, String, i64, bool);

const PRODUCT_BY_ID: &str =
    "SELECT id, sku, name, price, currency, stock, active FROM products WHERE id = $1";
const PRODUCT_BY_SKU: &str =
    "SELECT id, sku, name, price, currency, stock, active FROM products WHERE sku = $1";

fn stocked((id, sku, name, price, currency, stock, active): ProductRow) -> StockedProduct {
    StockedProduct {
        id: ProductId::from_uuid(id),
        sku,
        name,
        price,
        currency,
        stock,
        active,
    }
}

impl PlaceSql for SqliteConnection {
    async fn load_products(
        &mut self,
        ids: &[Uuid],
        skus: &[String],
    ) -> Result<Vec<StockedProduct>, sqlx::Error> {
        let mut products = Vec::with_capacity(ids.len() + skus.len());
        for id in ids {
            let row: Option<ProductRow> = sqlx::query_as(PRODUCT_BY_ID)
                .bind(id)
                .fetch_optional(&mut *self)
                .await?;
            products.extend(row.map(stocked));
        }
        for sku in skus {
            let row: Option<ProductRow> = sqlx::query_as(PRODUCT_BY_SKU)
                .bind(sku)
                .fetch_optional(&mut *self)
                .await?;
            products.extend(row.map(stocked));
        }
        Ok(products)
    }

    async fn idempotency_records(
        &mut self,
        keys: &[(Uuid, String)],
    ) -> Result<Vec<IdempotencyRecord>, sqlx::Error> {
        let mut records = Vec::new();
        for (api_key_id, key) in keys {
            let row: Option<(Vec<u8>, i32, String, OffsetDateTime)> = sqlx::query_as(
                "SELECT fingerprint, response_status, response_body, expires_at \
                 FROM idempotency_keys WHERE api_key_id = $1 AND key = $2",
            )
            .bind(api_key_id)
            .bind(key)
            .fetch_optional(&mut *self)
            .await?;
            records.extend(row.map(
                |(fingerprint, response_status, response_body, expires_at)| IdempotencyRecord {
                    api_key_id: *api_key_id,
                    key: key.clone(),
                    fingerprint,
                    response_status,
                    response_body,
                    expires_at,
                },
            ));
        }
        Ok(records)
    }

    async fn delete_idempotency_records(
        &mut self,
        keys: &[(Uuid, String)],
    ) -> Result<(), sqlx::Error> {
        for (api_key_id, key) in keys {
            sqlx::query("DELETE FROM idempotency_keys WHERE api_key_id = $1 AND key = $2")
                .bind(api_key_id)
                .bind(key)
                .execute(&mut *self)
                .await?;
        }
        Ok(())
    }

    async fn write_batch(&mut self, writes: &BatchWrites<'_>) -> Result<(), sqlx::Error> {
        self.take_stock(writes.taken, writes.at).await?;
        self.insert_orders(writes.orders).await?;
        self.insert_events(writes.events).await?;
        let order_ids: Vec<Uuid> = writes.orders.iter().map(|o| o.id.as_uuid()).collect();
        self.insert_idempotency_records(writes.records, &order_ids, writes.at)
            .await
    }
}

/// The statements of [`PlaceSql::write_batch`], one table each.
trait TableWrites {
    async fn take_stock(
        &mut self,
        taken: &[(ProductId, i64)],
        at: OffsetDateTime,
    ) -> Result<(), sqlx::Error>;
    async fn insert_orders(&mut self, orders: &[&Order]) -> Result<(), sqlx::Error>;
    async fn insert_events(&mut self, events: &[EventRow<'_>]) -> Result<(), sqlx::Error>;
    async fn insert_idempotency_records(
        &mut self,
        records: &[IdempotencyRecord],
        order_ids: &[Uuid],
        created_at: OffsetDateTime,
    ) -> Result<(), sqlx::Error>;
}

impl TableWrites for SqliteConnection {
    async fn take_stock(
        &mut self,
        taken: &[(ProductId, i64)],
        at: OffsetDateTime,
    ) -> Result<(), sqlx::Error> {
        for (id, quantity) in taken {
            sqlx::query(
                "UPDATE products SET stock = stock - $2, version = version + 1, \
                 updated_at = $3 WHERE id = $1",
            )
            .bind(id.as_uuid())
            .bind(quantity)
            .bind(orderly_db::Timestamp::new(at))
            .execute(&mut *self)
            .await?;
        }
        Ok(())
    }

    async fn insert_orders(&mut self, orders: &[&Order]) -> Result<(), sqlx::Error> {
        for order in orders {
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
            .bind(orderly_db::Timestamp::new(order.created_at))
            .execute(&mut *self)
            .await?;
            for (i, line) in order.lines.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO order_lines (order_id, line_no, product_id, sku, name, \
                     unit_price, quantity, line_total) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(order.id.as_uuid())
                .bind(i as i32 + 1)
                .bind(line.product_id.as_uuid())
                .bind(&line.sku)
                .bind(&line.name)
                .bind(line.unit_price)
                .bind(line.quantity)
                .bind(line.line_total)
                .execute(&mut *self)
                .await?;
            }
        }
        Ok(())
    }

    async fn insert_events(&mut self, events: &[EventRow<'_>]) -> Result<(), sqlx::Error> {
        for event in events {
            sqlx::query(
                "INSERT INTO events (id, type, subject_id, payload, created_at, trace_context) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(event.id)
            .bind(event.kind)
            .bind(event.subject_id)
            .bind(&event.payload)
            .bind(orderly_db::Timestamp::new(event.at))
            .bind(event.trace)
            .execute(&mut *self)
            .await?;
        }
        Ok(())
    }

    async fn insert_idempotency_records(
        &mut self,
        records: &[IdempotencyRecord],
        order_ids: &[Uuid],
        created_at: OffsetDateTime,
    ) -> Result<(), sqlx::Error> {
        for (record, order_id) in records.iter().zip(order_ids) {
            sqlx::query(
                "INSERT INTO idempotency_keys (api_key_id, key, fingerprint, order_id, \
                 response_status, response_body, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(record.api_key_id)
            .bind(&record.key)
            .bind(&record.fingerprint)
            .bind(order_id)
            .bind(record.response_status)
            .bind(&record.response_body)
            .bind(orderly_db::Timestamp::new(created_at))
            .bind(orderly_db::Timestamp::new(record.expires_at))
            .execute(&mut *self)
            .await?;
        }
        Ok(())
    }
}
