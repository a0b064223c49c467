-- Listing discarded or cancelled jobs reads these partial indexes instead of walking millions
-- of completed jobs (the listing names the state as a literal, which SQLite needs to use a
-- partial index); `prune` deletes delivery attempts by age in small batches.
CREATE INDEX jobs_discarded_id ON jobs (id) WHERE state = 'discarded';
CREATE INDEX jobs_cancelled_id ON jobs (id) WHERE state = 'cancelled';
CREATE INDEX webhook_attempts_created_at ON webhook_attempts (created_at);
