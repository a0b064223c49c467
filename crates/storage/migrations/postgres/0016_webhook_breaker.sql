-- Each endpoint's circuit breaker (orderly_domain::breaker), shared by every worker: closed,
-- open (deliveries wait until `breaker_probe_at`) or half_open (one probe in flight, given up
-- at `breaker_probe_at`). Expand-only: columns with constant defaults, no rewrite.
ALTER TABLE webhook_endpoints
    ADD COLUMN IF NOT EXISTS breaker_state text NOT NULL DEFAULT 'closed'
        CHECK (breaker_state IN ('closed', 'open', 'half_open')),
    ADD COLUMN IF NOT EXISTS consecutive_failures int NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS breaker_opened_at timestamptz,
    ADD COLUMN IF NOT EXISTS breaker_probe_at timestamptz;
