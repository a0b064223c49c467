-- The oldest due job (`/readyz`'s queue check and `jobs_oldest_due_age_seconds`) is the first
-- entry of this index, however many jobs wait. Partial, so running and finished jobs cost it
-- nothing.
CREATE INDEX jobs_due ON jobs (run_at) WHERE state = 'available';
