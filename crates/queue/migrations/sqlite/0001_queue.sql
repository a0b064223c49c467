-- The job queue's tables as they stand: jobs, queue pauses and worker heartbeats. Every
-- statement is conditional: a database an earlier orderly created has these tables already
-- (from its migrations 3, 4, 7, 8, 9 and 11), and this migration adopts them unchanged. Times
-- are UTC text of one fixed width (`orderly_db::Timestamp`), so text order is time order.

CREATE TABLE IF NOT EXISTS jobs (
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

CREATE INDEX IF NOT EXISTS jobs_fetch ON jobs (queue, priority, run_at, id) WHERE state = 'available';
CREATE INDEX IF NOT EXISTS jobs_leases ON jobs (locked_until) WHERE state = 'running';
CREATE UNIQUE INDEX IF NOT EXISTS jobs_unique_key ON jobs (unique_key) WHERE unique_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_finished_at ON jobs (finished_at) WHERE finished_at IS NOT NULL;
-- Listing discarded or cancelled jobs without walking the completed ones (the listing names
-- the state as a literal, which SQLite needs to use a partial index).
CREATE INDEX IF NOT EXISTS jobs_discarded_id ON jobs (id) WHERE state = 'discarded';
CREATE INDEX IF NOT EXISTS jobs_cancelled_id ON jobs (id) WHERE state = 'cancelled';
-- The oldest due job is this index's first entry, however many jobs wait.
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (run_at) WHERE state = 'available';

-- A queue listed here gives no job to any worker until it is resumed.
CREATE TABLE IF NOT EXISTS queue_pauses (
    queue     TEXT NOT NULL PRIMARY KEY,
    paused_at TEXT NOT NULL,
    -- The key (id) or the tool that paused it.
    paused_by TEXT NOT NULL
) STRICT;

-- Each worker process's heartbeat, for operators to see which are alive.
CREATE TABLE IF NOT EXISTS worker_heartbeats (
    worker     TEXT NOT NULL PRIMARY KEY,
    queues     TEXT NOT NULL,
    started_at TEXT NOT NULL,
    beat_at    TEXT NOT NULL,
    expires_at TEXT NOT NULL
) STRICT;
