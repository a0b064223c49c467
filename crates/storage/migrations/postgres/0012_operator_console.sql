-- The operator's console and the controls it shares with the API and the CLI.

-- A queue listed here is paused: no worker fetches from it (the fetch statement looks here)
-- and each worker gives back the jobs it had fetched ahead but not started.
CREATE TABLE queue_pauses (
    queue     text        NOT NULL PRIMARY KEY,
    paused_at timestamptz NOT NULL,
    -- The key (id) or the tool that paused it.
    paused_by text        NOT NULL
);

-- Each worker process's heartbeat, for operators to see which are alive: written as it
-- extends its jobs' leases, deleted when it stops; a row past `expires_at` is a worker that
-- died (kept an hour, then deleted by the next beat of any worker).
CREATE TABLE worker_heartbeats (
    worker     text        NOT NULL PRIMARY KEY,
    queues     text        NOT NULL,
    started_at timestamptz NOT NULL,
    beat_at    timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);

-- A schedule listed here does not fire (it can still be run by hand).
CREATE TABLE schedule_pauses (
    name      text        NOT NULL PRIMARY KEY,
    paused_at timestamptz NOT NULL,
    paused_by text        NOT NULL
);

-- Console sessions: the cookie carries a random token, only its SHA-256 is kept. A session
-- lives until it expires, is signed out, or its key is revoked.
CREATE TABLE console_sessions (
    token_hash bytea       NOT NULL PRIMARY KEY,
    key_id     uuid        NOT NULL REFERENCES api_keys (id),
    -- Sent back with every action (the CSRF token).
    csrf_token text        NOT NULL,
    address    text,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX console_sessions_expires_at ON console_sessions (expires_at);

-- Every action taken in the console (and queue pauses from the API and CLI): who, what, when,
-- from where.
CREATE TABLE audit_log (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL,
    -- The API key that acted; NULL for the command line.
    key_id     uuid,
    address    text,
    action     text        NOT NULL,
    -- What it acted on: `order:<id>`, `job:<id>`, `queue:<name>`, …
    target     text        NOT NULL,
    detail     text
);
CREATE INDEX audit_log_target ON audit_log (target, id);
