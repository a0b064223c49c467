-- no-transaction
-- As 0007, for `GET /v1/jobs?state=cancelled`.
CREATE INDEX CONCURRENTLY IF NOT EXISTS jobs_cancelled_id ON jobs (id) WHERE state = 'cancelled';
