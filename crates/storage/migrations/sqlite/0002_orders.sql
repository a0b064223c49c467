-- Orders, their lines, the event outbox and idempotency records.

CREATE TABLE orders (
    id         BLOB    NOT NULL PRIMARY KEY,
    status     TEXT    NOT NULL
               CHECK (status IN ('pending', 'paid', 'fulfilled', 'cancelled', 'expired')),
    email      TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    note       TEXT,
    currency   TEXT    NOT NULL,
    total      INTEGER NOT NULL CHECK (total >= 0),
    -- The API key that created the order: storefront keys read only their own.
    created_by BLOB    NOT NULL REFERENCES api_keys (id),
    created_at TEXT    NOT NULL,
    updated_at TEXT    NOT NULL
) STRICT;

CREATE INDEX orders_status_id ON orders (status, id);
CREATE INDEX orders_email_id ON orders (email, id);
CREATE INDEX orders_created_by_id ON orders (created_by, id);

-- Price and name are copied from the product when the order is placed.
CREATE TABLE order_lines (
    order_id   BLOB    NOT NULL REFERENCES orders (id),
    line_no    INTEGER NOT NULL,
    product_id BLOB    NOT NULL REFERENCES products (id),
    sku        TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    unit_price INTEGER NOT NULL CHECK (unit_price >= 0),
    quantity   INTEGER NOT NULL CHECK (quantity > 0),
    line_total INTEGER NOT NULL CHECK (line_total >= 0),
    PRIMARY KEY (order_id, line_no)
) STRICT;

-- The outbox: one row per domain event, written in the transaction that caused it.
CREATE TABLE events (
    id         BLOB NOT NULL PRIMARY KEY,
    type       TEXT NOT NULL,
    subject_id BLOB NOT NULL,
    payload    TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;

CREATE INDEX events_subject_id ON events (subject_id);

-- One row per (API key, Idempotency-Key) that created an order: the request's fingerprint
-- and the exact response, replayed to retries until the record expires.
CREATE TABLE idempotency_keys (
    api_key_id      BLOB    NOT NULL,
    key             TEXT    NOT NULL,
    fingerprint     BLOB    NOT NULL,
    order_id        BLOB    NOT NULL,
    response_status INTEGER NOT NULL,
    response_body   TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    expires_at      TEXT    NOT NULL,
    PRIMARY KEY (api_key_id, key)
) STRICT;

CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);
