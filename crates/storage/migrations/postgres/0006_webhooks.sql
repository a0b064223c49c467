-- Webhook endpoints, the event types each subscribes to, and every delivery attempt.

CREATE TABLE webhook_endpoints (
    id                    uuid        NOT NULL PRIMARY KEY,
    url                   text        NOT NULL,
    description           text        NOT NULL DEFAULT '',
    -- `whsec_…`: kept readable because every delivery is signed with it.
    secret                text        NOT NULL,
    -- After a rotation the old secret also signs until it expires.
    previous_secret       text,
    previous_expires_at   timestamptz,
    -- Set when the endpoint stops receiving (by hand, on 410 Gone, or after failing too long).
    disabled_at           timestamptz,
    disabled_reason       text,
    -- The first failure since the last success; cleared by a success.
    failing_since         timestamptz,
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL
);

CREATE TABLE webhook_subscriptions (
    endpoint_id uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_type  text NOT NULL,
    PRIMARY KEY (endpoint_id, event_type)
);

CREATE INDEX webhook_subscriptions_event_type ON webhook_subscriptions (event_type);

CREATE TABLE webhook_attempts (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id      uuid        NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id         uuid        NOT NULL,
    event_type       text        NOT NULL,
    -- 1 for the first try of this event at this endpoint.
    attempt          int         NOT NULL,
    outcome          text        NOT NULL CHECK (outcome IN ('succeeded', 'failed', 'blocked')),
    response_status  int,
    latency_ms       bigint      NOT NULL,
    -- The first bytes of the response body, or why there was none.
    response_excerpt text,
    error            text,
    created_at       timestamptz NOT NULL
);

CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_id, id);
CREATE INDEX webhook_attempts_event ON webhook_attempts (event_id, endpoint_id);
CREATE INDEX events_created_at ON events (created_at);
