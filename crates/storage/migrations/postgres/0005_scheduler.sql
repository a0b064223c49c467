-- The scheduler: the lease that makes one worker the leader, and each schedule's last
-- enqueued tick.
CREATE TABLE leases (
    name       text        NOT NULL PRIMARY KEY,
    holder     text        NOT NULL,
    expires_at timestamptz NOT NULL
);

CREATE TABLE schedule_ticks (
    name      text        NOT NULL PRIMARY KEY,
    last_tick timestamptz NOT NULL
);
