-- no-transaction
-- Listing discarded jobs (`GET /v1/jobs?state=discarded`) reads this index instead of walking
-- millions of completed jobs. Partial, so the common path (available → running → completed)
-- never writes to it. Built CONCURRENTLY so that a rolling upgrade on a large table does not
-- hold up the writes of the processes still running; one index per migration, as
-- CONCURRENTLY runs outside any transaction.
CREATE INDEX CONCURRENTLY IF NOT EXISTS jobs_discarded_id ON jobs (id) WHERE state = 'discarded';
