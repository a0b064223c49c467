-- no-transaction
-- The oldest due job (`/readyz`'s queue check and `jobs_oldest_due_age_seconds`) is the first
-- entry of this index, however many jobs wait: without it, each check read every available
-- job (100 ms with 200,000 waiting, on every readiness probe). Partial, so running and
-- finished jobs cost it nothing.
CREATE INDEX CONCURRENTLY IF NOT EXISTS jobs_due ON jobs (run_at) WHERE state = 'available';
