-- pgbench script: orderly's order transaction for one order of one line (by sku), one
-- transaction per order. The statements are those orderly runs for a batch
-- (crates/storage/src/orders/place_postgres.rs), in their one-row forms: lock and read the
-- product, look up the idempotency key, take the stock, insert the order, its line, its
-- event and its idempotency record.
-- Variables: key_id (an api_keys.id), products (how many PGB-<n> products exist).
\set p random(0, :products - 1)
BEGIN;
SELECT gen_random_uuid() AS oid, md5(random()::text) AS ikey \gset
SELECT id AS pid, sku, name, price, currency, stock, active FROM products WHERE sku = 'PGB-' || :p ORDER BY id FOR UPDATE \gset
SELECT fingerprint, response_status, response_body, expires_at FROM idempotency_keys WHERE api_key_id = :key_id::uuid AND key = :ikey;
UPDATE products SET stock = stock - 1, version = version + 1, updated_at = now() WHERE id = :pid::uuid;
INSERT INTO orders (id, status, email, name, note, currency, total, created_by, created_at, updated_at) VALUES (:oid::uuid, 'pending', 'bench@example.com', 'Bench', NULL, 'EUR', 1250, :key_id::uuid, now(), now());
INSERT INTO order_lines (order_id, line_no, product_id, sku, name, unit_price, quantity, line_total) VALUES (:oid::uuid, 1, :pid::uuid, 'PGB-' || :p, 'Bench product', 1250, 1, 1250);
INSERT INTO events (id, type, subject_id, payload, created_at) VALUES (gen_random_uuid(), 'order.created', :oid::uuid, jsonb_build_object('order_id', :oid::text, 'status', 'pending', 'email', 'bench@example.com', 'currency', 'EUR', 'total', 1250), now());
INSERT INTO idempotency_keys (api_key_id, key, fingerprint, order_id, response_status, response_body, created_at, expires_at) VALUES (:key_id::uuid, :ikey, sha256(convert_to(:ikey, 'UTF8')), :oid::uuid, 201, repeat('x', 380), now(), now() + interval '1 day');
COMMIT;
