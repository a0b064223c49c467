-- The job queue.

CREATE TABLE jobs (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue        text        NOT NULL DEFAULT 'default',
    kind         text        NOT NULL,
    args         jsonb       NOT NULL DEFAULT '{}',
    state        text        NOT NULL
                 CHECK (state IN ('available', 'running', 'completed', 'discarded', 'cancelled')),
    -- 0 runs first, 9 last.
    priority     smallint    NOT NULL DEFAULT 5 CHECK (priority BETWEEN 0 AND 9),
    attempt      int         NOT NULL DEFAULT 0,
    max_attempts int         NOT NULL CHECK (max_attempts > 0),
    run_at       timestamptz NOT NULL,
    -- The worker holding a running job, and until when its lease runs.
    locked_by    text,
    locked_until timestamptz,
    -- At most one job per key, ever (until pruned): a second enqueue is a no-op.
    unique_key   text,
    last_error   text,
    created_at   timestamptz NOT NULL,
    finished_at  timestamptz
);

CREATE INDEX jobs_fetch ON jobs (queue, priority, run_at, id) WHERE state = 'available';
CREATE INDEX jobs_leases ON jobs (locked_until) WHERE state = 'running';
CREATE UNIQUE INDEX jobs_unique_key ON jobs (unique_key) WHERE unique_key IS NOT NULL;
CREATE INDEX jobs_finished_at ON jobs (finished_at) WHERE finished_at IS NOT NULL;

-- Wakes listening workers when jobs are inserted; delivered when the inserting transaction
-- commits, once per transaction however many rows it inserted.
CREATE FUNCTION orderly_jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('orderly_jobs', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_notify AFTER INSERT ON jobs
    FOR EACH STATEMENT EXECUTE FUNCTION orderly_jobs_notify();

-- When the order's receipt went out.
ALTER TABLE orders ADD COLUMN receipt_sent_at timestamptz;
