-- The scheduler: the lease that makes one worker the leader, and each schedule's last
-- enqueued tick. Times are Unix microseconds.
CREATE TABLE leases (
    name       TEXT    NOT NULL PRIMARY KEY,
    holder     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE TABLE schedule_ticks (
    name      TEXT    NOT NULL PRIMARY KEY,
    last_tick INTEGER NOT NULL
) STRICT;
