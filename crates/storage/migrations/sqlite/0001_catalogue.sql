-- The catalogue and the API keys that guard it.
-- Ids are UUIDv7 stored as 16-byte BLOBs: byte order is creation order, so the primary key
-- doubles as the pagination cursor. Timestamps are RFC 3339 text in UTC.

CREATE TABLE products (
    id          BLOB    NOT NULL PRIMARY KEY,
    sku         TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    description TEXT    NOT NULL DEFAULT '',
    price       INTEGER NOT NULL CHECK (price >= 0),
    currency    TEXT    NOT NULL,
    stock       INTEGER NOT NULL CHECK (stock >= 0),
    active      INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    -- Bumped by every change; served as the ETag.
    version     INTEGER NOT NULL DEFAULT 1,
    archived_at TEXT,
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL
) STRICT;

CREATE UNIQUE INDEX products_sku_key ON products (sku);

CREATE TABLE api_keys (
    id          BLOB NOT NULL PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'storefront')),
    -- The first characters of the key, so an operator can tell keys apart in listings.
    prefix      TEXT NOT NULL,
    -- SHA-256 of the whole key; the key itself is never stored.
    secret_hash BLOB NOT NULL,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
) STRICT;

CREATE UNIQUE INDEX api_keys_secret_hash_key ON api_keys (secret_hash);
