//! [`PlaceSql`] on PostgreSQL: every statement takes the whole batch as arrays (`unnest`), so
//! a batch costs the same seven round trips whether it holds one order or a hundred.

use orderly_domain::reservation::StockedProduct;
use orderly_domain::{Order, ProductId};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::place::{EventRow, IdempotencyRecord, PlaceSql};

type ProductRow = (Uuid, String, String, i64, String, i64, bool);

impl PlaceSql for PgConnection {
    async fn load_products(
        &mut self,
        ids: &[Uuid],
        skus: &[String],
    ) -> Result<Vec<StockedProduct>, sqlx::Error> {
        let rows: Vec<ProductRow> = sqlx::query_as(
            "SELECT id, sku, name, price, currency, stock, active FROM products \
             WHERE id = ANY($1) OR sku = ANY($2) ORDER BY id FOR UPDATE",
        )
        .bind(ids)
        .bind(skus)
        .fetch_all(&mut *self)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, sku, name, price, currency, stock, active)| StockedProduct {
                    id: ProductId::from_uuid(id),
                    sku,
                    name,
                    price,
                    currency,
                    stock,
                    active,
                },
            )
            .collect())
    }

    async fn idempotency_records(
        &mut self,
        keys: &[(Uuid, String)],
    ) -> Result<Vec<IdempotencyRecord>, sqlx::Error> {
        let (api_keys, names): (Vec<Uuid>, Vec<String>) = keys.iter().cloned().unzip();
        let rows: Vec<(Uuid, String, Vec<u8>, i32, String, OffsetDateTime)> = sqlx::query_as(
            "SELECT i.api_key_id, i.key, i.fingerprint, i.response_status, i.response_body, \
             i.expires_at FROM idempotency_keys AS i \
             JOIN unnest($1::uuid[], $2::text[]) AS k(api_key_id, key) \
             ON i.api_key_id = k.api_key_id AND i.key = k.key",
        )
        .bind(&api_keys)
        .bind(&names)
        .fetch_all(&mut *self)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(api_key_id, key, fingerprint, response_status, response_body, expires_at)| {
                    IdempotencyRecord {
                        api_key_id,
                        key,
                        fingerprint,
                        response_status,
                        response_body,
                        expires_at,
                    }
                },
            )
            .collect())
    }

    async fn delete_idempotency_records(
        &mut self,
        keys: &[(Uuid, String)],
    ) -> Result<(), sqlx::Error> {
        let (api_keys, names): (Vec<Uuid>, Vec<String>) = keys.iter().cloned().unzip();
        sqlx::query(
            "DELETE FROM idempotency_keys AS i USING unnest($1::uuid[], $2::text[]) \
             AS k(api_key_id, key) WHERE i.api_key_id = k.api_key_id AND i.key = k.key",
        )
        .bind(&api_keys)
        .bind(&names)
        .execute(&mut *self)
        .await
        .map(|_| ())
    }

    async fn take_stock(
        &mut self,
        taken: &[(ProductId, i64)],
        at: OffsetDateTime,
    ) -> Result<(), sqlx::Error> {
        let ids: Vec<Uuid> = taken.iter().map(|(id, _)| id.as_uuid()).collect();
        let quantities: Vec<i64> = taken.iter().map(|(_, q)| *q).collect();
        sqlx::query(
            "UPDATE products AS p SET stock = p.stock - t.quantity, version = p.version + 1, \
             updated_at = $3 FROM unnest($1::uuid[], $2::bigint[]) AS t(id, quantity) \
             WHERE p.id = t.id",
        )
        .bind(&ids)
        .bind(&quantities)
        .bind(at)
        .execute(&mut *self)
        .await
        .map(|_| ())
    }

    async fn insert_orders(&mut self, orders: &[&Order]) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO orders (id, status, email, name, note, currency, total, created_by, \
             created_at, updated_at) \
             SELECT id, status, email, name, note, currency, total, created_by, at, at \
             FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], \
             $6::text[], $7::bigint[], $8::uuid[], $9::timestamptz[]) \
             AS o(id, status, email, name, note, currency, total, created_by, at)",
        )
        .bind(orders.iter().map(|o| o.id.as_uuid()).collect::<Vec<_>>())
        .bind(orders.iter().map(|o| o.status.as_str()).collect::<Vec<_>>())
        .bind(orders.iter().map(|o| o.email.as_str()).collect::<Vec<_>>())
        .bind(orders.iter().map(|o| o.name.as_str()).collect::<Vec<_>>())
        .bind(orders.iter().map(|o| o.note.as_deref()).collect::<Vec<_>>())
        .bind(
            orders
                .iter()
                .map(|o| o.currency.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(orders.iter().map(|o| o.total).collect::<Vec<_>>())
        .bind(orders.iter().map(|o| o.created_by).collect::<Vec<_>>())
        .bind(orders.iter().map(|o| o.created_at).collect::<Vec<_>>())
        .execute(&mut *self)
        .await?;
        let lines: Vec<(Uuid, i32, &orderly_domain::OrderLine)> = orders
            .iter()
            .flat_map(|o| {
                o.lines
                    .iter()
                    .enumerate()
                    .map(|(i, line)| (o.id.as_uuid(), i as i32 + 1, line))
            })
            .collect();
        sqlx::query(
            "INSERT INTO order_lines (order_id, line_no, product_id, sku, name, unit_price, \
             quantity, line_total) \
             SELECT * FROM unnest($1::uuid[], $2::int[], $3::uuid[], $4::text[], $5::text[], \
             $6::bigint[], $7::bigint[], $8::bigint[])",
        )
        .bind(lines.iter().map(|l| l.0).collect::<Vec<_>>())
        .bind(lines.iter().map(|l| l.1).collect::<Vec<_>>())
        .bind(
            lines
                .iter()
                .map(|l| l.2.product_id.as_uuid())
                .collect::<Vec<_>>(),
        )
        .bind(lines.iter().map(|l| l.2.sku.as_str()).collect::<Vec<_>>())
        .bind(lines.iter().map(|l| l.2.name.as_str()).collect::<Vec<_>>())
        .bind(lines.iter().map(|l| l.2.unit_price).collect::<Vec<_>>())
        .bind(lines.iter().map(|l| l.2.quantity).collect::<Vec<_>>())
        .bind(lines.iter().map(|l| l.2.line_total).collect::<Vec<_>>())
        .execute(&mut *self)
        .await
        .map(|_| ())
    }

    async fn insert_events(&mut self, events: &[EventRow]) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO events (id, type, subject_id, payload, created_at) \
             SELECT id, type, subject_id, payload::jsonb, at \
             FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::timestamptz[]) \
             AS e(id, type, subject_id, payload, at)",
        )
        .bind(events.iter().map(|e| e.id).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.kind).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.subject_id).collect::<Vec<_>>())
        .bind(
            events
                .iter()
                .map(|e| e.payload.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(events.iter().map(|e| e.at).collect::<Vec<_>>())
        .execute(&mut *self)
        .await
        .map(|_| ())
    }

    async fn insert_idempotency_records(
        &mut self,
        records: &[IdempotencyRecord],
        order_ids: &[Uuid],
        created_at: OffsetDateTime,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO idempotency_keys (api_key_id, key, fingerprint, order_id, \
             response_status, response_body, created_at, expires_at) \
             SELECT api_key_id, key, fingerprint, order_id, status, body, $7, expires_at \
             FROM unnest($1::uuid[], $2::text[], $3::bytea[], $4::uuid[], $5::int[], \
             $6::text[], $8::timestamptz[]) \
             AS r(api_key_id, key, fingerprint, order_id, status, body, expires_at)",
        )
        .bind(records.iter().map(|r| r.api_key_id).collect::<Vec<_>>())
        .bind(records.iter().map(|r| r.key.as_str()).collect::<Vec<_>>())
        .bind(
            records
                .iter()
                .map(|r| r.fingerprint.as_slice())
                .collect::<Vec<_>>(),
        )
        .bind(order_ids)
        .bind(
            records
                .iter()
                .map(|r| r.response_status)
                .collect::<Vec<_>>(),
        )
        .bind(
            records
                .iter()
                .map(|r| r.response_body.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(created_at)
        .bind(records.iter().map(|r| r.expires_at).collect::<Vec<_>>())
        .execute(&mut *self)
        .await
        .map(|_| ())
    }
}
