-- Fleet-wide limits (on SQLite, one process's). A job's partition (for a webhook delivery,
-- its endpoint) is what a per-partition limit counts by; '' is no partition.
ALTER TABLE jobs ADD COLUMN partition_key TEXT NOT NULL DEFAULT '';

-- Deliveries enqueued before this migration name their endpoint only in their arguments.
UPDATE jobs SET partition_key = json_extract(args, '$.endpoint_id')
 WHERE kind = 'deliver_webhook' AND state IN ('available', 'running') AND partition_key = ''
   AND json_extract(args, '$.endpoint_id') IS NOT NULL;

-- One rate limit's bucket (a kind's, or one partition's of a kind), as GCRA keeps it: the
-- theoretical arrival time of the next job. `admitted` counts every job it let start.
CREATE TABLE IF NOT EXISTS job_rate_limits (
    key        TEXT    NOT NULL PRIMARY KEY,
    tat        TEXT    NOT NULL,
    admitted   INTEGER NOT NULL DEFAULT 0
) STRICT;

-- What the fleet did minute by minute (the console's charts): one row per series per minute,
-- rows older than two hours deleted as new ones are written.
CREATE TABLE IF NOT EXISTS activity_minutes (
    series     TEXT NOT NULL,
    minute     TEXT NOT NULL,
    value      REAL NOT NULL,
    PRIMARY KEY (series, minute)
) STRICT;
