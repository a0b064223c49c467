-- The W3C trace context (traceparent) of the request that enqueued a job, so the job's span
-- continues that trace.
ALTER TABLE jobs ADD COLUMN trace_context text;
