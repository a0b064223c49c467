//! [`PlaceSql`] on PostgreSQL: every statement takes the whole batch as arrays (`unnest`), so
//! a batch costs the same few round trips whether it holds one order or a hundred: the
//! products, the idempotency records, and all the writes in one.

use orderly_domain::ProductId;
use orderly_domain::reservation::StockedProduct;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::place::{BatchWrites, IdempotencyRecord, PlaceSql};

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
        // One primary-key probe per key, whatever the planner thinks of the table: as a plain
        // join, a plan made while the table was small (a hash join over a sequential scan)
        // stayed cached as it grew, and each batch read the whole table (4.7 ms at 6,000
        // rows, measured). `LIMIT 1` (the key is unique) keeps the subquery from being
        // flattened into such a join.
        let rows: Vec<(Uuid, String, Vec<u8>, i32, String, OffsetDateTime)> = sqlx::query_as(
            "SELECT i.api_key_id, i.key, i.fingerprint, i.response_status, i.response_body, \
             i.expires_at FROM unnest($1::uuid[], $2::text[]) AS k(api_key_id, key) \
             CROSS JOIN LATERAL (SELECT * FROM idempotency_keys AS r \
             WHERE r.api_key_id = k.api_key_id AND r.key = k.key LIMIT 1) AS i",
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

    #[allow(clippy::too_many_lines)] // One statement and its 30 bound arrays, in the order of its parameters.
    async fn write_batch(&mut self, writes: &BatchWrites<'_>) -> Result<(), sqlx::Error> {
        let BatchWrites {
            taken,
            orders,
            events,
            records,
            at,
        } = *writes;
        let lines: Vec<(Uuid, i32, &orderly_domain::OrderLine)> = orders
            .iter()
            .flat_map(|o| {
                o.lines
                    .iter()
                    .enumerate()
                    .map(|(i, line)| (o.id.as_uuid(), i as i32 + 1, line))
            })
            .collect();
        sqlx::query(WRITE_BATCH)
            .bind(at)
            // $2–$3: the stock taken.
            .bind(taken.iter().map(|(id, _)| id.as_uuid()).collect::<Vec<_>>())
            .bind(taken.iter().map(|(_, q)| *q).collect::<Vec<_>>())
            // $4–$11: the orders.
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
            // $12–$19: their lines.
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
            // $20–$23: the events.
            .bind(events.iter().map(|e| e.id).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.kind).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.subject_id).collect::<Vec<_>>())
            .bind(
                events
                    .iter()
                    .map(|e| e.payload.as_str())
                    .collect::<Vec<_>>(),
            )
            // $24–$29: the idempotency records, one per order in the same order.
            .bind(records.iter().map(|r| r.api_key_id).collect::<Vec<_>>())
            .bind(records.iter().map(|r| r.key.as_str()).collect::<Vec<_>>())
            .bind(
                records
                    .iter()
                    .map(|r| r.fingerprint.as_slice())
                    .collect::<Vec<_>>(),
            )
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
            .bind(records.iter().map(|r| r.expires_at).collect::<Vec<_>>())
            // $30: each event's trace context.
            .bind(events.iter().map(|e| e.trace).collect::<Vec<_>>())
            .execute(&mut *self)
            .await
            .map(|_| ())
    }
}

/// A batch's writes as one statement: one round trip instead of six (the round trips, each
/// a wake-up on both sides, were most of a batch's cost). Data-modifying CTEs all run,
/// referenced or not; the foreign keys of lines and records to their orders are checked at
/// the end of the statement, when the orders are in. Orders and events are dated `$1`.
const WRITE_BATCH: &str = "\
    WITH taken AS (\
      UPDATE products AS p SET stock = p.stock - t.quantity, version = p.version + 1, \
      updated_at = $1 FROM unnest($2::uuid[], $3::bigint[]) AS t(id, quantity) \
      WHERE p.id = t.id), \
    placed AS (\
      INSERT INTO orders (id, status, email, name, note, currency, total, created_by, \
      created_at, updated_at) \
      SELECT id, status, email, name, note, currency, total, created_by, $1, $1 \
      FROM unnest($4::uuid[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], \
      $10::bigint[], $11::uuid[]) AS o(id, status, email, name, note, currency, total, \
      created_by)), \
    placed_lines AS (\
      INSERT INTO order_lines (order_id, line_no, product_id, sku, name, unit_price, \
      quantity, line_total) \
      SELECT * FROM unnest($12::uuid[], $13::int[], $14::uuid[], $15::text[], $16::text[], \
      $17::bigint[], $18::bigint[], $19::bigint[])), \
    outbox AS (\
      INSERT INTO events (id, type, subject_id, payload, created_at, trace_context) \
      SELECT id, type, subject_id, payload::jsonb, $1, trace_context \
      FROM unnest($20::uuid[], $21::text[], $22::uuid[], $23::text[], $30::text[]) \
      AS e(id, type, subject_id, payload, trace_context)) \
    INSERT INTO idempotency_keys (api_key_id, key, fingerprint, order_id, response_status, \
    response_body, created_at, expires_at) \
    SELECT api_key_id, key, fingerprint, order_id, status, body, $1, expires_at \
    FROM unnest($24::uuid[], $25::text[], $26::bytea[], $4::uuid[], $27::int[], $28::text[], \
    $29::timestamptz[]) AS r(api_key_id, key, fingerprint, order_id, status, body, expires_at)";
