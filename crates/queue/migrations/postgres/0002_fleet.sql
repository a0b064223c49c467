-- Fleet-wide limits. A job's partition (for a webhook delivery, its endpoint) is what a
-- per-partition limit counts by; '' is no partition. Adding a column with a constant default
-- rewrites nothing, so this takes its lock on `jobs` only for a moment.
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS partition_key text NOT NULL DEFAULT '';

-- Deliveries enqueued before this migration name their endpoint only in their arguments.
UPDATE jobs SET partition_key = args->>'endpoint_id'
 WHERE kind = 'deliver_webhook' AND state IN ('available', 'running') AND partition_key = ''
   AND args ? 'endpoint_id';

-- ... and so do the deliveries that processes of that release enqueue while a rolling deploy
-- replaces them: the row takes its endpoint from its arguments as it is inserted.
CREATE OR REPLACE FUNCTION orderly_jobs_delivery_partition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.partition_key := COALESCE(NEW.args->>'endpoint_id', '');
    RETURN NEW;
END
$$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'jobs_delivery_partition'
                   AND tgrelid = 'jobs'::regclass) THEN
        CREATE TRIGGER jobs_delivery_partition BEFORE INSERT ON jobs FOR EACH ROW
            WHEN (NEW.kind = 'deliver_webhook' AND NEW.partition_key = '')
            EXECUTE FUNCTION orderly_jobs_delivery_partition();
    END IF;
END
$$;

-- One rate limit's bucket (a kind's, or one partition's of a kind), as GCRA keeps it: the
-- theoretical arrival time of the next job. `admitted` counts every job it let start, so the
-- fleet's rate can be read from the database by whoever samples it twice.
CREATE TABLE IF NOT EXISTS job_rate_limits (
    key        text        NOT NULL PRIMARY KEY,
    tat        timestamptz NOT NULL,
    admitted   bigint      NOT NULL DEFAULT 0
);

-- What the fleet did minute by minute (the console's charts): one row per series per minute,
-- rows older than two hours deleted as new ones are written.
CREATE TABLE IF NOT EXISTS activity_minutes (
    series     text NOT NULL,
    minute     timestamptz NOT NULL,
    value      double precision NOT NULL,
    PRIMARY KEY (series, minute)
);
