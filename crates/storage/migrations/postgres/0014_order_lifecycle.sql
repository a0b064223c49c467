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
-- The daily summary sums the day's captures and refunds.
CREATE INDEX payments_created_at ON payments (created_at);

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
CREATE INDEX refunds_created_at ON refunds (created_at);

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

-- While both releases run, the previous one moves an order's status as a whole (`/pay`,
-- `/fulfill`, `/cancel`, expiry) without touching `version`, giving back every unit's stock on
-- cancel and expiry. Where that would be wrong for an order this release has changed in part,
-- it is refused here, and the client's retry reaches a process of this release: a paying of an
-- order partly paid already, any move of an order with units shipped, and a cancel or expiry
-- of an order with units cancelled (their stock is back already) or, for expiry, a capture.
-- Every other such move is right as the previous release meant it, and is read so
-- (`Order::settle_legacy`).
CREATE FUNCTION orders_refuse_wrong_whole_moves() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (
        EXISTS (SELECT 1 FROM order_lines WHERE order_id = OLD.id AND shipped > 0)
        OR (NEW.status IN ('cancelled', 'expired')
            AND EXISTS (SELECT 1 FROM order_lines WHERE order_id = OLD.id AND cancelled > 0))
        OR (NEW.status IN ('paid', 'expired') AND OLD.captured > 0)
    ) THEN
        RAISE EXCEPTION 'order % was changed in part by a newer release of orderly; retry the request', OLD.id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

-- Called only for a status moved without the version: never for this release's own changes
-- (each moves the version) nor for the receipts' `receipt_sent_at`.
CREATE TRIGGER orders_refuse_wrong_whole_moves BEFORE UPDATE ON orders
    FOR EACH ROW
    WHEN (NEW.status <> OLD.status AND NEW.version = OLD.version)
    EXECUTE FUNCTION orders_refuse_wrong_whole_moves();
