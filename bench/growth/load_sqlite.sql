-- The same load as load_postgres.sql (read its description), in SQLite's dialect: ids are 16
-- bytes that sort before any new UUIDv7, times the text form orderly keeps.
-- Run as: sed 's/:n\b/N/g' load_sqlite.sql | sqlite3 FILE (SQLite takes no parameters in a view).
.bail on
PRAGMA journal_mode = WAL;
BEGIN;
CREATE TEMP TABLE tpl AS
SELECT o.created_by, o.currency, o.total, o.name, l.line_no, l.product_id, l.sku,
       l.name AS line_name, l.unit_price, l.quantity, l.line_total, e.payload,
       k.api_key_id, k.fingerprint, k.response_body, j.queue, j.max_attempts
FROM orders o
JOIN order_lines l ON l.order_id = o.id
JOIN events e ON e.subject_id = o.id AND e.type = 'order.created'
JOIN idempotency_keys k ON k.order_id = o.id
JOIN jobs j ON j.kind = 'send_receipt'
 AND json_extract(j.args, '$.order_id') = lower(substr(hex(o.id), 1, 8) || '-' || substr(hex(o.id), 9, 4) || '-' || substr(hex(o.id), 13, 4) || '-' || substr(hex(o.id), 17, 4) || '-' || substr(hex(o.id), 21))
LIMIT 1;
CREATE TEMP TABLE template_found (n INTEGER
  CONSTRAINT "no template order: place one through the API first" CHECK (n > 0));
INSERT INTO template_found SELECT count(*) FROM tpl;

CREATE TEMP VIEW g AS
SELECT value AS i,
       CAST(x'0190' || printf('%014d', value) AS BLOB) AS id,
       strftime('%Y-%m-%dT%H:%M:%S', 'now', printf('%+.3f seconds', -32 * 86400 + value * 31 * 86400.0 / :n)) || '.000000Z' AS at,
       strftime('%Y-%m-%dT%H:%M:%S', 'now', printf('%+.3f seconds', -8 * 86400 + value * 8 * 86400.0 / :n)) || '.000000Z' AS finished
FROM generate_series(1, :n);

INSERT INTO orders (id, status, email, name, note, currency, total, created_by,
                    receipt_sent_at, created_at, updated_at)
SELECT g.id,
       CASE WHEN i % 100 = 0 THEN 'pending' WHEN i % 100 < 3 THEN 'cancelled'
            WHEN i % 100 < 23 THEN 'paid' ELSE 'fulfilled' END,
       'customer' || (i % max(:n / 10, 1)) || '@example.com', tpl.name, NULL,
       tpl.currency, tpl.total, tpl.created_by, g.at, g.at, g.at
FROM g, tpl;

INSERT INTO order_lines (order_id, line_no, product_id, sku, name, unit_price, quantity, line_total)
SELECT g.id, tpl.line_no, tpl.product_id, tpl.sku, tpl.line_name, tpl.unit_price,
       tpl.quantity, tpl.line_total
FROM g, tpl;

INSERT INTO events (id, type, subject_id, payload, created_at)
SELECT g.id, 'order.created', g.id, tpl.payload, g.at FROM g, tpl;

INSERT INTO jobs (queue, kind, args, state, attempt, max_attempts, run_at, last_error,
                  created_at, finished_at)
SELECT tpl.queue, 'send_receipt',
       '{"order_id":"' || lower(substr(hex(g.id), 1, 8) || '-' || substr(hex(g.id), 9, 4) || '-' || substr(hex(g.id), 13, 4) || '-' || substr(hex(g.id), 17, 4) || '-' || substr(hex(g.id), 21)) || '"}',
       CASE WHEN i % 1000 = 0 THEN 'discarded' ELSE 'completed' END,
       CASE WHEN i % 1000 = 0 THEN tpl.max_attempts ELSE 1 END, tpl.max_attempts, g.finished,
       CASE WHEN i % 1000 = 0 THEN 'mail: 554 5.7.1 recipient rejected' END,
       g.finished, g.finished
FROM g, tpl;

INSERT INTO idempotency_keys (api_key_id, key, fingerprint, order_id, response_status,
                              response_body, created_at, expires_at)
SELECT tpl.api_key_id, 'growth-' || i, tpl.fingerprint, g.id, 201, tpl.response_body, g.at,
       strftime('%Y-%m-%dT%H:%M:%S', g.at, '+1 day') || '.000000Z'
FROM g, tpl WHERE i > :n * 31 / 32;
COMMIT;
ANALYZE;
