-- Cooperative cancellation: an operator's request to stop a running job. The job stays
-- `running` until its worker stops it (then `cancelled`) or it finishes its side effect (then
-- `completed`); a run that fails, is put off, released or loses its lease with a request set
-- ends `cancelled`, never retried. A nullable column with no default: no rewrite of the table.
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS cancel_requested_at timestamptz;
