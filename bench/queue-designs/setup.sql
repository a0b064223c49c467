-- The jobs table as orderly's PostgreSQL migrations leave it, a narrow jobs_completed table
-- for the "move" design, and :n available jobs (bench/queue-designs/run.sh).
DROP TABLE IF EXISTS jobs, jobs_completed;
CREATE TABLE jobs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue text NOT NULL DEFAULT 'default', kind text NOT NULL, args jsonb NOT NULL DEFAULT '{}',
    state text NOT NULL CHECK (state IN ('available', 'running', 'completed', 'discarded', 'cancelled')),
    priority smallint NOT NULL DEFAULT 5, attempt int NOT NULL DEFAULT 0, max_attempts int NOT NULL,
    run_at timestamptz NOT NULL, locked_by text, locked_until timestamptz, unique_key text,
    last_error text, created_at timestamptz NOT NULL, finished_at timestamptz, trace_context text);
CREATE INDEX jobs_fetch ON jobs (queue, priority, run_at, id) WHERE state = 'available';
CREATE INDEX jobs_leases ON jobs (locked_until) WHERE state = 'running';
CREATE UNIQUE INDEX jobs_unique_key ON jobs (unique_key) WHERE unique_key IS NOT NULL;
CREATE INDEX jobs_finished_at ON jobs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX jobs_discarded_id ON jobs (id) WHERE state = 'discarded';
CREATE INDEX jobs_cancelled_id ON jobs (id) WHERE state = 'cancelled';
CREATE INDEX jobs_due ON jobs (run_at) WHERE state = 'available';
CREATE TABLE jobs_completed (
    id bigint PRIMARY KEY, queue text NOT NULL, kind text NOT NULL, args jsonb NOT NULL,
    priority smallint NOT NULL, attempt int NOT NULL, max_attempts int NOT NULL,
    run_at timestamptz NOT NULL, unique_key text, created_at timestamptz NOT NULL,
    finished_at timestamptz NOT NULL, trace_context text);
CREATE INDEX jobs_completed_finished_at ON jobs_completed USING brin (finished_at);
INSERT INTO jobs (queue, kind, args, state, priority, max_attempts, run_at, created_at)
  SELECT 'q', 'noop', '{}', 'available', 5, 25, now(), now() FROM generate_series(1, :n);
