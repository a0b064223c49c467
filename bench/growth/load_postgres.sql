-- Loads :n orders in bulk, as a shop that has taken them over the last month: one line, one
-- order.created event and one finished receipt job each, and idempotency records for the last
-- day. One real order (placed through the API before the load) is the template, so every row
-- has the shape orderly writes. Ids sort before any new UUIDv7; times spread evenly:
-- orders and events over 32 days (1/16 past the 30-day event retention), finished jobs over
-- 8 days (1/8 past the 7-day job retention). 1 in 100 orders is pending, 2 cancelled, 20 paid,
-- the rest fulfilled; 1 in 1,000 jobs discarded. Ten orders per customer e-mail.
\set ON_ERROR_STOP on
CREATE TEMP TABLE tpl AS
SELECT o.created_by, o.currency, o.total, o.name, l.line_no, l.product_id, l.sku,
       l.name AS line_name, l.unit_price, l.quantity, l.line_total, e.payload,
       k.api_key_id, k.fingerprint, k.response_body, j.queue, j.max_attempts
FROM orders o
JOIN order_lines l ON l.order_id = o.id
JOIN events e ON e.subject_id = o.id AND e.type = 'order.created'
JOIN idempotency_keys k ON k.order_id = o.id
JOIN jobs j ON j.kind = 'send_receipt' AND j.args ->> 'order_id' = o.id::text
LIMIT 1;
SELECT count(*) AS templates FROM tpl \gset
\if :templates
\else
  \echo 'no template order: place one through the API first'
  \quit 3
\endif

CREATE TEMP VIEW g AS
SELECT i, ('0190' || lpad(to_hex(i), 28, '0'))::uuid AS id,
       now() - interval '32 days' + (i::float8 / :n) * interval '31 days' AS at,
       now() - interval '8 days' + (i::float8 / :n) * interval '8 days' AS finished
FROM generate_series(1, :n) i;

INSERT INTO orders (id, status, email, name, note, currency, total, created_by,
                    receipt_sent_at, created_at, updated_at)
SELECT g.id,
       CASE WHEN i % 100 = 0 THEN 'pending' WHEN i % 100 < 3 THEN 'cancelled'
            WHEN i % 100 < 23 THEN 'paid' ELSE 'fulfilled' END,
       'customer' || (i % greatest(:n / 10, 1)) || '@example.com', tpl.name, NULL,
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
SELECT tpl.queue, 'send_receipt', jsonb_build_object('order_id', g.id),
       CASE WHEN i % 1000 = 0 THEN 'discarded' ELSE 'completed' END,
       CASE WHEN i % 1000 = 0 THEN tpl.max_attempts ELSE 1 END, tpl.max_attempts, g.finished,
       CASE WHEN i % 1000 = 0 THEN 'mail: 554 5.7.1 recipient rejected' END,
       g.finished, g.finished
FROM g, tpl;

INSERT INTO idempotency_keys (api_key_id, key, fingerprint, order_id, response_status,
                              response_body, created_at, expires_at)
SELECT tpl.api_key_id, 'growth-' || i, tpl.fingerprint, g.id, 201, tpl.response_body, g.at,
       g.at + interval '1 day'
FROM g, tpl WHERE i > :n * 31 / 32;
