-- The order lifecycle: captures, shipments, cancellations of units and refunds. Expand only:
-- every new column has a default, so the previous release's statements work unchanged.
-- Orders it paid or fulfilled before this migration are backfilled here (captured the whole
-- total; every unit shipped; a cancelled order's units cancelled); orders it changes while
-- both releases run are read the same way (`orderly_storage::orders::lifecycle`).

ALTER TABLE orders ADD COLUMN captured bigint NOT NULL DEFAULT 0 CHECK (captured >= 0);
ALTER TABLE orders ADD COLUMN refunded bigint NOT NULL DEFAULT 0 CHECK (refunded >= 0);
-- Moves on with every change: the order's ETag.
ALTER TABLE orders ADD COLUMN version bigint NOT NULL DEFAULT 1;

ALTER TABLE order_lines ADD COLUMN cancelled bigint NOT NULL DEFAULT 0 CHECK (cancelled >= 0);
ALTER TABLE order_lines ADD COLUMN shipped bigint NOT NULL DEFAULT 0 CHECK (shipped >= 0);
-- Money refunded against this line by refunds that named it.
ALTER TABLE order_lines ADD COLUMN refunded bigint NOT NULL DEFAULT 0 CHECK (refunded >= 0);
ALTER TABLE order_lines ADD CONSTRAINT order_lines_units_within_quantity
    CHECK (cancelled + shipped <= quantity);

UPDATE order_lines SET shipped = quantity
    WHERE order_id IN (SELECT id FROM orders WHERE status = 'fulfilled');
UPDATE order_lines SET cancelled = quantity
    WHERE order_id IN (SELECT id FROM orders WHERE status = 'cancelled');
UPDATE orders SET captured = total WHERE status IN ('paid', 'fulfilled');
UPDATE orders SET total = 0 WHERE status = 'cancelled';

-- A capture reported by a payment provider: one per (provider, reference), so a capture
-- reported twice is recorded once.
CREATE TABLE payments (
    id         uuid        NOT NULL PRIMARY KEY,
    order_id   uuid        NOT NULL REFERENCES orders (id),
    amount     bigint      NOT NULL CHECK (amount > 0),
    provider   text        NOT NULL,
    reference  text        NOT NULL,
    actor      jsonb       NOT NULL,
    created_at timestamptz NOT NULL,
    UNIQUE (provider, reference)
);
CREATE INDEX payments_order_id ON payments (order_id);

-- A shipment of units: `lines` is `[{"line_no", "quantity"}]`.
CREATE TABLE fulfillments (
    id         uuid        NOT NULL PRIMARY KEY,
    order_id   uuid        NOT NULL REFERENCES orders (id),
    lines      jsonb       NOT NULL,
    carrier    text,
    number     text,
    url        text,
    actor      jsonb       NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX fulfillments_order_id ON fulfillments (order_id);

-- Money given back by the shop's payment provider (orderly moves none).
CREATE TABLE refunds (
    id         uuid        NOT NULL PRIMARY KEY,
    order_id   uuid        NOT NULL REFERENCES orders (id),
    amount     bigint      NOT NULL CHECK (amount > 0),
    reason     text,
    lines      jsonb,
    actor      jsonb       NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX refunds_order_id ON refunds (order_id);

-- The Idempotency-Key of each change to an order: the request's fingerprint and the order
-- as the change left it, replayed to retries until the record expires.
CREATE TABLE order_change_keys (
    api_key_id      uuid        NOT NULL,
    key             text        NOT NULL,
    fingerprint     bytea       NOT NULL,
    order_id        uuid        NOT NULL,
    response_status int         NOT NULL,
    response_body   text        NOT NULL,
    created_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    PRIMARY KEY (api_key_id, key)
);
CREATE INDEX order_change_keys_expires_at ON order_change_keys (expires_at);
