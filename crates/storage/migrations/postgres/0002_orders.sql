-- Orders, their lines, the event outbox and idempotency records.

CREATE TABLE orders (
    id         uuid        NOT NULL PRIMARY KEY,
    status     text        NOT NULL
               CHECK (status IN ('pending', 'paid', 'fulfilled', 'cancelled', 'expired')),
    email      text        NOT NULL,
    name       text        NOT NULL,
    note       text,
    currency   text        NOT NULL,
    total      bigint      NOT NULL CHECK (total >= 0),
    -- The API key that created the order: storefront keys read only their own.
    created_by uuid        NOT NULL REFERENCES api_keys (id),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE INDEX orders_status_id ON orders (status, id);
CREATE INDEX orders_email_id ON orders (email, id);
CREATE INDEX orders_created_by_id ON orders (created_by, id);

-- Price and name are copied from the product when the order is placed.
CREATE TABLE order_lines (
    order_id   uuid   NOT NULL REFERENCES orders (id),
    line_no    int    NOT NULL,
    product_id uuid   NOT NULL REFERENCES products (id),
    sku        text   NOT NULL,
    name       text   NOT NULL,
    unit_price bigint NOT NULL CHECK (unit_price >= 0),
    quantity   bigint NOT NULL CHECK (quantity > 0),
    line_total bigint NOT NULL CHECK (line_total >= 0),
    PRIMARY KEY (order_id, line_no)
);

-- The outbox: one row per domain event, written in the transaction that caused it.
CREATE TABLE events (
    id         uuid        NOT NULL PRIMARY KEY,
    type       text        NOT NULL,
    subject_id uuid        NOT NULL,
    payload    jsonb       NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE INDEX events_subject_id ON events (subject_id);

-- One row per (API key, Idempotency-Key) that created an order: the request's fingerprint
-- and the exact response, replayed to retries until the record expires.
CREATE TABLE idempotency_keys (
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

CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);
