-- The order lifecycle: captures, shipments, cancellations of units and refunds. Orders paid,
-- fulfilled or cancelled before it are backfilled (captured the whole total; every unit
-- shipped; a cancelled order's units cancelled).

ALTER TABLE orders ADD COLUMN captured INTEGER NOT NULL DEFAULT 0 CHECK (captured >= 0);
ALTER TABLE orders ADD COLUMN refunded INTEGER NOT NULL DEFAULT 0 CHECK (refunded >= 0);
-- Moves on with every change: the order's ETag.
ALTER TABLE orders ADD COLUMN version INTEGER NOT NULL DEFAULT 1;

ALTER TABLE order_lines ADD COLUMN cancelled INTEGER NOT NULL DEFAULT 0 CHECK (cancelled >= 0);
ALTER TABLE order_lines ADD COLUMN shipped INTEGER NOT NULL DEFAULT 0
    CHECK (shipped >= 0 AND cancelled + shipped <= quantity);
-- Money refunded against this line by refunds that named it.
ALTER TABLE order_lines ADD COLUMN refunded INTEGER NOT NULL DEFAULT 0 CHECK (refunded >= 0);

UPDATE order_lines SET shipped = quantity
    WHERE order_id IN (SELECT id FROM orders WHERE status = 'fulfilled');
UPDATE order_lines SET cancelled = quantity
    WHERE order_id IN (SELECT id FROM orders WHERE status = 'cancelled');
UPDATE orders SET captured = total WHERE status IN ('paid', 'fulfilled');
UPDATE orders SET total = 0 WHERE status = 'cancelled';

-- A capture reported by a payment provider: one per (provider, reference), so a capture
-- reported twice is recorded once.
CREATE TABLE payments (
    id         BLOB       NOT NULL PRIMARY KEY,
    order_id   BLOB       NOT NULL REFERENCES orders (id),
    amount     INTEGER     NOT NULL CHECK (amount > 0),
    provider   TEXT        NOT NULL,
    reference  TEXT        NOT NULL,
    actor      TEXT        NOT NULL,
    created_at TEXT        NOT NULL,
    UNIQUE (provider, reference)
) STRICT;
CREATE INDEX payments_order_id ON payments (order_id);
-- The daily summary sums the day's captures and refunds.
CREATE INDEX payments_created_at ON payments (created_at);

-- A shipment of units: `lines` is `[{"line_no", "quantity"}]`.
CREATE TABLE fulfillments (
    id         BLOB       NOT NULL PRIMARY KEY,
    order_id   BLOB       NOT NULL REFERENCES orders (id),
    lines      TEXT        NOT NULL,
    carrier    TEXT,
    number     TEXT,
    url        TEXT,
    actor      TEXT        NOT NULL,
    created_at TEXT        NOT NULL
) STRICT;
CREATE INDEX fulfillments_order_id ON fulfillments (order_id);

-- Money given back by the shop's payment provider (orderly moves none).
CREATE TABLE refunds (
    id         BLOB       NOT NULL PRIMARY KEY,
    order_id   BLOB       NOT NULL REFERENCES orders (id),
    amount     INTEGER     NOT NULL CHECK (amount > 0),
    reason     TEXT,
    lines      TEXT,
    actor      TEXT        NOT NULL,
    created_at TEXT        NOT NULL
) STRICT;
CREATE INDEX refunds_order_id ON refunds (order_id);
CREATE INDEX refunds_created_at ON refunds (created_at);

-- The Idempotency-Key of each change to an order: the request's fingerprint and the order
-- as the change left it, replayed to retries until the record expires.
CREATE TABLE order_change_keys (
    api_key_id      BLOB       NOT NULL,
    key             TEXT        NOT NULL,
    fingerprint     BLOB        NOT NULL,
    order_id        BLOB       NOT NULL,
    response_status INTEGER     NOT NULL,
    response_body   TEXT        NOT NULL,
    created_at      TEXT        NOT NULL,
    expires_at      TEXT        NOT NULL,
    PRIMARY KEY (api_key_id, key)
) STRICT;
CREATE INDEX order_change_keys_expires_at ON order_change_keys (expires_at);
