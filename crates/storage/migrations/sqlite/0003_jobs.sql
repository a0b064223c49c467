-- The job queue. Times here are Unix microseconds (INTEGER) rather than text, because the
-- queue compares and sorts them on every fetch.

CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY,
    queue        TEXT    NOT NULL DEFAULT 'default',
    kind         TEXT    NOT NULL,
    args         TEXT    NOT NULL DEFAULT '{}',
    state        TEXT    NOT NULL
                 CHECK (state IN ('available', 'running', 'completed', 'discarded', 'cancelled')),
    -- 0 runs first, 9 last.
    priority     INTEGER NOT NULL DEFAULT 5 CHECK (priority BETWEEN 0 AND 9),
    attempt      INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL CHECK (max_attempts > 0),
    run_at       INTEGER NOT NULL,
    -- The worker holding a running job, and until when its lease runs.
    locked_by    TEXT,
    locked_until INTEGER,
    -- At most one job per key, ever (until pruned): a second enqueue is a no-op.
    unique_key   TEXT,
    last_error   TEXT,
    created_at   INTEGER NOT NULL,
    finished_at  INTEGER
) STRICT;

CREATE INDEX jobs_fetch ON jobs (queue, priority, run_at, id) WHERE state = 'available';
CREATE INDEX jobs_leases ON jobs (locked_until) WHERE state = 'running';
CREATE UNIQUE INDEX jobs_unique_key ON jobs (unique_key) WHERE unique_key IS NOT NULL;
CREATE INDEX jobs_finished_at ON jobs (finished_at) WHERE finished_at IS NOT NULL;

-- When the order's receipt went out.
ALTER TABLE orders ADD COLUMN receipt_sent_at TEXT;
