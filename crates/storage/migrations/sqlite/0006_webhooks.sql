-- Webhook endpoints, the event types each subscribes to, and every delivery attempt.

CREATE TABLE webhook_endpoints (
    id                    BLOB NOT NULL PRIMARY KEY,
    url                   TEXT NOT NULL,
    description           TEXT NOT NULL DEFAULT '',
    -- `whsec_…`: kept readable because every delivery is signed with it.
    secret                TEXT NOT NULL,
    -- After a rotation the old secret also signs until it expires.
    previous_secret       TEXT,
    previous_expires_at   TEXT,
    -- Set when the endpoint stops receiving (by hand, on 410 Gone, or after failing too long).
    disabled_at           TEXT,
    disabled_reason       TEXT,
    -- The first failure since the last success; cleared by a success.
    failing_since         TEXT,
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL
) STRICT;

CREATE TABLE webhook_subscriptions (
    endpoint_id BLOB NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_type  TEXT NOT NULL,
    PRIMARY KEY (endpoint_id, event_type)
) STRICT;

CREATE INDEX webhook_subscriptions_event_type ON webhook_subscriptions (event_type);

CREATE TABLE webhook_attempts (
    id               INTEGER PRIMARY KEY,
    endpoint_id      BLOB    NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id         BLOB    NOT NULL,
    event_type       TEXT    NOT NULL,
    -- 1 for the first try of this event at this endpoint.
    attempt          INTEGER NOT NULL,
    outcome          TEXT    NOT NULL CHECK (outcome IN ('succeeded', 'failed', 'blocked')),
    response_status  INTEGER,
    latency_ms       INTEGER NOT NULL,
    -- The first bytes of the response body, or why there was none.
    response_excerpt TEXT,
    error            TEXT,
    created_at       TEXT    NOT NULL
) STRICT;

CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_id, id);
CREATE INDEX webhook_attempts_event ON webhook_attempts (event_id, endpoint_id);
CREATE INDEX events_created_at ON events (created_at);
