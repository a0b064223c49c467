-- Each endpoint's circuit breaker (orderly_domain::breaker), shared by every worker: closed,
-- open (deliveries wait until `breaker_probe_at`) or half_open (one probe in flight, given up
-- at `breaker_probe_at`). Expand-only: columns with defaults.
ALTER TABLE webhook_endpoints ADD COLUMN breaker_state TEXT NOT NULL DEFAULT 'closed'
    CHECK (breaker_state IN ('closed', 'open', 'half_open'));
ALTER TABLE webhook_endpoints ADD COLUMN consecutive_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE webhook_endpoints ADD COLUMN breaker_opened_at TEXT;
ALTER TABLE webhook_endpoints ADD COLUMN breaker_probe_at TEXT;
