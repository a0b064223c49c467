-- The job queue's tables as they stand: jobs, queue pauses and worker heartbeats. Every
-- statement is conditional: a database an earlier orderly created has these tables already
-- (from its migrations 3, 4, 7, 8, 10 and 12), and this migration adopts them unchanged.

CREATE TABLE IF NOT EXISTS jobs (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue         text        NOT NULL DEFAULT 'default',
    kind          text        NOT NULL,
    args          jsonb       NOT NULL DEFAULT '{}',
    state         text        NOT NULL
                  CHECK (state IN ('available', 'running', 'completed', 'discarded', 'cancelled')),
    -- 0 runs first, 9 last.
    priority      smallint    NOT NULL DEFAULT 5 CHECK (priority BETWEEN 0 AND 9),
    attempt       int         NOT NULL DEFAULT 0,
    max_attempts  int         NOT NULL CHECK (max_attempts > 0),
    run_at        timestamptz NOT NULL,
    -- The worker holding a running job, and until when its lease runs.
    locked_by     text,
    locked_until  timestamptz,
    -- At most one job per key, ever (until pruned): a second enqueue is a no-op.
    unique_key    text,
    last_error    text,
    created_at    timestamptz NOT NULL,
    finished_at   timestamptz,
    -- The W3C trace context (traceparent) of the request that enqueued the job.
    trace_context text
);

-- Each index is made only where it is missing, looked up in the catalogue first: on a database
-- that has them (a busy one, during a rolling upgrade) nothing takes a lock on `jobs`.
DO $$
DECLARE
    wanted text[][] := ARRAY[
        ARRAY['jobs_fetch', 'CREATE INDEX jobs_fetch ON jobs (queue, priority, run_at, id) WHERE state = ''available'''],
        ARRAY['jobs_leases', 'CREATE INDEX jobs_leases ON jobs (locked_until) WHERE state = ''running'''],
        ARRAY['jobs_unique_key', 'CREATE UNIQUE INDEX jobs_unique_key ON jobs (unique_key) WHERE unique_key IS NOT NULL'],
        ARRAY['jobs_finished_at', 'CREATE INDEX jobs_finished_at ON jobs (finished_at) WHERE finished_at IS NOT NULL'],
        -- Listing discarded or cancelled jobs without walking the completed ones.
        ARRAY['jobs_discarded_id', 'CREATE INDEX jobs_discarded_id ON jobs (id) WHERE state = ''discarded'''],
        ARRAY['jobs_cancelled_id', 'CREATE INDEX jobs_cancelled_id ON jobs (id) WHERE state = ''cancelled'''],
        -- The oldest due job is this index's first entry, however many jobs wait.
        ARRAY['jobs_due', 'CREATE INDEX jobs_due ON jobs (run_at) WHERE state = ''available''']
    ];
BEGIN
    FOR i IN 1 .. array_length(wanted, 1) LOOP
        IF to_regclass(wanted[i][1]) IS NULL THEN
            EXECUTE wanted[i][2];
        END IF;
    END LOOP;
END
$$;

-- Wakes listening workers when jobs are inserted; delivered when the inserting transaction
-- commits, once per transaction however many rows it inserted.
CREATE OR REPLACE FUNCTION orderly_jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('orderly_jobs', '');
    RETURN NULL;
END
$$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'jobs_notify'
                   AND tgrelid = 'jobs'::regclass) THEN
        CREATE TRIGGER jobs_notify AFTER INSERT ON jobs
            FOR EACH STATEMENT EXECUTE FUNCTION orderly_jobs_notify();
    END IF;
END
$$;

-- A queue listed here gives no job to any worker until it is resumed.
CREATE TABLE IF NOT EXISTS queue_pauses (
    queue     text        NOT NULL PRIMARY KEY,
    paused_at timestamptz NOT NULL,
    -- The key (id) or the tool that paused it.
    paused_by text        NOT NULL
);

-- Each worker process's heartbeat, for operators to see which are alive: written as it
-- extends its jobs' leases, deleted when it stops; a row past `expires_at` is a worker that
-- went away without stopping.
CREATE TABLE IF NOT EXISTS worker_heartbeats (
    worker     text        NOT NULL PRIMARY KEY,
    queues     text        NOT NULL,
    started_at timestamptz NOT NULL,
    beat_at    timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
