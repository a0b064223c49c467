-- The catalogue and the API keys that guard it.
-- Ids are UUIDv7: time-ordered, so the primary key doubles as the pagination cursor.

CREATE TABLE products (
    id          uuid        NOT NULL PRIMARY KEY,
    sku         text        NOT NULL CONSTRAINT products_sku_key UNIQUE,
    name        text        NOT NULL,
    description text        NOT NULL DEFAULT '',
    price       bigint      NOT NULL CHECK (price >= 0),
    currency    text        NOT NULL,
    stock       bigint      NOT NULL CHECK (stock >= 0),
    active      boolean     NOT NULL DEFAULT true,
    -- Bumped by every change; served as the ETag.
    version     bigint      NOT NULL DEFAULT 1,
    archived_at timestamptz,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

CREATE TABLE api_keys (
    id          uuid        NOT NULL PRIMARY KEY,
    name        text        NOT NULL,
    role        text        NOT NULL CHECK (role IN ('admin', 'storefront')),
    -- The first characters of the key, so an operator can tell keys apart in listings.
    prefix      text        NOT NULL,
    -- SHA-256 of the whole key; the key itself is never stored.
    secret_hash bytea       NOT NULL CONSTRAINT api_keys_secret_hash_key UNIQUE,
    created_at  timestamptz NOT NULL,
    revoked_at  timestamptz
);
