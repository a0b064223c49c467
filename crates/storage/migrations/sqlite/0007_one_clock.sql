-- One clock: every time on SQLite becomes TEXT of one fixed form, `YYYY-MM-DDTHH:MM:SS.ffffffZ`
-- (UTC, six fractional digits), so text order is time order and both backends share their SQL.
--
-- Until now the catalogue, orders, events, idempotency and webhook tables kept RFC 3339 text
-- whose fraction lost its trailing zeros (`…:36.5Z`, `…:36Z`), and the job and scheduler tables
-- kept Unix microseconds. Text times are padded to six digits here (every one was written in
-- UTC, ending in `Z`, to the microsecond); integer times are written out in the same form, which
-- loses nothing. The job and scheduler tables are rebuilt, since SQLite cannot change a
-- column's type; no foreign key points at them.

UPDATE products SET
    archived_at = substr(archived_at, 1, 19) || '.' || substr(CASE WHEN substr(archived_at, 20, 1) = '.' THEN substr(archived_at, 21, length(archived_at) - 21) ELSE '' END || '000000', 1, 6) || 'Z',
    created_at = substr(created_at, 1, 19) || '.' || substr(CASE WHEN substr(created_at, 20, 1) = '.' THEN substr(created_at, 21, length(created_at) - 21) ELSE '' END || '000000', 1, 6) || 'Z',
    updated_at = substr(updated_at, 1, 19) || '.' || substr(CASE WHEN substr(updated_at, 20, 1) = '.' THEN substr(updated_at, 21, length(updated_at) - 21) ELSE '' END || '000000', 1, 6) || 'Z';

UPDATE api_keys SET
    created_at = substr(created_at, 1, 19) || '.' || substr(CASE WHEN substr(created_at, 20, 1) = '.' THEN substr(created_at, 21, length(created_at) - 21) ELSE '' END || '000000', 1, 6) || 'Z',
    revoked_at = substr(revoked_at, 1, 19) || '.' || substr(CASE WHEN substr(revoked_at, 20, 1) = '.' THEN substr(revoked_at, 21, length(revoked_at) - 21) ELSE '' END || '000000', 1, 6) || 'Z';

UPDATE orders SET
    created_at = substr(created_at, 1, 19) || '.' || substr(CASE WHEN substr(created_at, 20, 1) = '.' THEN substr(created_at, 21, length(created_at) - 21) ELSE '' END || '000000', 1, 6) || 'Z',
    updated_at = substr(updated_at, 1, 19) || '.' || substr(CASE WHEN substr(updated_at, 20, 1) = '.' THEN substr(updated_at, 21, length(updated_at) - 21) ELSE '' END || '000000', 1, 6) || 'Z',
    receipt_sent_at = substr(receipt_sent_at, 1, 19) || '.' || substr(CASE WHEN substr(receipt_sent_at, 20, 1) = '.' THEN substr(receipt_sent_at, 21, length(receipt_sent_at) - 21) ELSE '' END || '000000', 1, 6) || 'Z';

UPDATE events SET
    created_at = substr(created_at, 1, 19) || '.' || substr(CASE WHEN substr(created_at, 20, 1) = '.' THEN substr(created_at, 21, length(created_at) - 21) ELSE '' END || '000000', 1, 6) || 'Z';

UPDATE idempotency_keys SET
    created_at = substr(created_at, 1, 19) || '.' || substr(CASE WHEN substr(created_at, 20, 1) = '.' THEN substr(created_at, 21, length(created_at) - 21) ELSE '' END || '000000', 1, 6) || 'Z',
    expires_at = substr(expires_at, 1, 19) || '.' || substr(CASE WHEN substr(expires_at, 20, 1) = '.' THEN substr(expires_at, 21, length(expires_at) - 21) ELSE '' END || '000000', 1, 6) || 'Z';

UPDATE webhook_endpoints SET
    previous_expires_at = substr(previous_expires_at, 1, 19) || '.' || substr(CASE WHEN substr(previous_expires_at, 20, 1) = '.' THEN substr(previous_expires_at, 21, length(previous_expires_at) - 21) ELSE '' END || '000000', 1, 6) || 'Z',
    disabled_at = substr(disabled_at, 1, 19) || '.' || substr(CASE WHEN substr(disabled_at, 20, 1) = '.' THEN substr(disabled_at, 21, length(disabled_at) - 21) ELSE '' END || '000000', 1, 6) || 'Z',
    failing_since = substr(failing_since, 1, 19) || '.' || substr(CASE WHEN substr(failing_since, 20, 1) = '.' THEN substr(failing_since, 21, length(failing_since) - 21) ELSE '' END || '000000', 1, 6) || 'Z',
    created_at = substr(created_at, 1, 19) || '.' || substr(CASE WHEN substr(created_at, 20, 1) = '.' THEN substr(created_at, 21, length(created_at) - 21) ELSE '' END || '000000', 1, 6) || 'Z',
    updated_at = substr(updated_at, 1, 19) || '.' || substr(CASE WHEN substr(updated_at, 20, 1) = '.' THEN substr(updated_at, 21, length(updated_at) - 21) ELSE '' END || '000000', 1, 6) || 'Z';

UPDATE webhook_attempts SET
    created_at = substr(created_at, 1, 19) || '.' || substr(CASE WHEN substr(created_at, 20, 1) = '.' THEN substr(created_at, 21, length(created_at) - 21) ELSE '' END || '000000', 1, 6) || 'Z';

CREATE TABLE jobs_one_clock (
    id            INTEGER PRIMARY KEY,
    queue         TEXT    NOT NULL DEFAULT 'default',
    kind          TEXT    NOT NULL,
    args          TEXT    NOT NULL DEFAULT '{}',
    state         TEXT    NOT NULL
                  CHECK (state IN ('available', 'running', 'completed', 'discarded', 'cancelled')),
    -- 0 runs first, 9 last.
    priority      INTEGER NOT NULL DEFAULT 5 CHECK (priority BETWEEN 0 AND 9),
    attempt       INTEGER NOT NULL DEFAULT 0,
    max_attempts  INTEGER NOT NULL CHECK (max_attempts > 0),
    run_at        TEXT    NOT NULL,
    -- The worker holding a running job, and until when its lease runs.
    locked_by     TEXT,
    locked_until  TEXT,
    -- At most one job per key, ever (until pruned): a second enqueue is a no-op.
    unique_key    TEXT,
    last_error    TEXT,
    created_at    TEXT    NOT NULL,
    finished_at   TEXT,
    -- The W3C trace context (traceparent) of the request that enqueued the job.
    trace_context TEXT
) STRICT;

INSERT INTO jobs_one_clock (id, queue, kind, args, state, priority, attempt, max_attempts, run_at, locked_by, locked_until, unique_key, last_error, created_at, finished_at, trace_context)
SELECT
    id,
    queue,
    kind,
    args,
    state,
    priority,
    attempt,
    max_attempts,
    strftime('%Y-%m-%dT%H:%M:%S', run_at / 1000000, 'unixepoch') || '.' || printf('%06d', run_at % 1000000) || 'Z',
    locked_by,
    CASE WHEN locked_until IS NULL THEN NULL ELSE strftime('%Y-%m-%dT%H:%M:%S', locked_until / 1000000, 'unixepoch') || '.' || printf('%06d', locked_until % 1000000) || 'Z' END,
    unique_key,
    last_error,
    strftime('%Y-%m-%dT%H:%M:%S', created_at / 1000000, 'unixepoch') || '.' || printf('%06d', created_at % 1000000) || 'Z',
    CASE WHEN finished_at IS NULL THEN NULL ELSE strftime('%Y-%m-%dT%H:%M:%S', finished_at / 1000000, 'unixepoch') || '.' || printf('%06d', finished_at % 1000000) || 'Z' END,
    trace_context
FROM jobs;

DROP TABLE jobs;
ALTER TABLE jobs_one_clock RENAME TO jobs;
CREATE INDEX jobs_fetch ON jobs (queue, priority, run_at, id) WHERE state = 'available';
CREATE INDEX jobs_leases ON jobs (locked_until) WHERE state = 'running';
CREATE UNIQUE INDEX jobs_unique_key ON jobs (unique_key) WHERE unique_key IS NOT NULL;
CREATE INDEX jobs_finished_at ON jobs (finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE leases_one_clock (
    name       TEXT NOT NULL PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at TEXT NOT NULL
) STRICT;
INSERT INTO leases_one_clock (name, holder, expires_at)
SELECT name, holder, strftime('%Y-%m-%dT%H:%M:%S', expires_at / 1000000, 'unixepoch') || '.' || printf('%06d', expires_at % 1000000) || 'Z' FROM leases;
DROP TABLE leases;
ALTER TABLE leases_one_clock RENAME TO leases;

CREATE TABLE schedule_ticks_one_clock (
    name      TEXT NOT NULL PRIMARY KEY,
    last_tick TEXT NOT NULL
) STRICT;
INSERT INTO schedule_ticks_one_clock (name, last_tick)
SELECT name, strftime('%Y-%m-%dT%H:%M:%S', last_tick / 1000000, 'unixepoch') || '.' || printf('%06d', last_tick % 1000000) || 'Z' FROM schedule_ticks;
DROP TABLE schedule_ticks;
ALTER TABLE schedule_ticks_one_clock RENAME TO schedule_ticks;
