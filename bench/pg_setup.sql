-- Products and a key for bench/pg_order.sql, in a database migrated by `orderly migrate`.
INSERT INTO api_keys (id, name, role, prefix, secret_hash, created_at)
VALUES ('00000000-0000-7000-8000-000000000001', 'pgbench', 'storefront', 'oly_pgbench0',
        sha256('pgbench'::bytea), now());
INSERT INTO products (id, sku, name, description, price, currency, stock, active, version,
                      created_at, updated_at)
SELECT gen_random_uuid(), 'PGB-' || i, 'Bench product', '', 1250, 'EUR', 1000000000, true, 1,
       now(), now()
FROM generate_series(0, 99) AS i;
ANALYZE;
