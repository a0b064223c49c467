-- no-transaction
-- `prune` deletes delivery attempts by age in small batches; without this index each batch
-- would scan the whole table.
CREATE INDEX CONCURRENTLY IF NOT EXISTS webhook_attempts_created_at ON webhook_attempts (created_at);
