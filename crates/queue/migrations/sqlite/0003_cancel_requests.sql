-- Cooperative cancellation: an operator's request to stop a running job. The job stays
-- `running` until its worker stops it (then `cancelled`) or it finishes its side effect (then
-- `completed`); a run that fails, is put off, released or loses its lease with a request set
-- ends `cancelled`, never retried.
ALTER TABLE jobs ADD COLUMN cancel_requested_at TEXT;
