-- The operator's console and the controls it shares with the API and the CLI (see the
-- PostgreSQL migration of the same name). Times are RFC 3339 text in UTC.
CREATE TABLE queue_pauses (
    queue     TEXT NOT NULL PRIMARY KEY,
    paused_at TEXT NOT NULL,
    paused_by TEXT NOT NULL
) STRICT;

CREATE TABLE worker_heartbeats (
    worker     TEXT NOT NULL PRIMARY KEY,
    queues     TEXT NOT NULL,
    started_at TEXT NOT NULL,
    beat_at    TEXT NOT NULL,
    expires_at TEXT NOT NULL
) STRICT;

CREATE TABLE schedule_pauses (
    name      TEXT NOT NULL PRIMARY KEY,
    paused_at TEXT NOT NULL,
    paused_by TEXT NOT NULL
) STRICT;

CREATE TABLE console_sessions (
    token_hash BLOB NOT NULL PRIMARY KEY,
    key_id     BLOB NOT NULL REFERENCES api_keys (id),
    csrf_token TEXT NOT NULL,
    address    TEXT,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
) STRICT;
CREATE INDEX console_sessions_expires_at ON console_sessions (expires_at);

CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY,
    at      TEXT NOT NULL,
    key_id  BLOB,
    address TEXT,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    detail  TEXT
) STRICT;
CREATE INDEX audit_log_target ON audit_log (target, id);
