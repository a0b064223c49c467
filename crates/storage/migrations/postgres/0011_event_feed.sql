-- The events' order for the readers of the outbox: the relay to NATS and `GET /v1/events`.
-- `seq` is taken as an event is inserted; ids and `seq` are not in commit order across
-- transactions, so one sequencer (the worker holding the `events` lease) gives each committed
-- event the next `position`, in `seq` order, and readers page by position: an event that
-- commits late gets a later position instead of appearing behind a reader's cursor. Events of
-- one order are written by transactions that lock the order, so they commit, and are
-- positioned, in order. `event_cursors` keeps the sequencer's last position (so positions
-- never restart, even when every event is pruned) and each relay's.
CREATE SEQUENCE events_seq;
ALTER TABLE events ADD COLUMN seq bigint;
ALTER TABLE events ADD COLUMN position bigint;
-- The `traceparent` of the request that caused the event, for its consumers.
ALTER TABLE events ADD COLUMN trace_context text;

WITH numbered AS (SELECT id, row_number() OVER (ORDER BY created_at, id) AS n FROM events)
UPDATE events SET seq = numbered.n, position = numbered.n FROM numbered
WHERE events.id = numbered.id;
SELECT setval('events_seq', COALESCE((SELECT MAX(seq) FROM events), 0) + 1, false);
ALTER TABLE events ALTER COLUMN seq SET DEFAULT nextval('events_seq');
ALTER SEQUENCE events_seq OWNED BY events.seq;

CREATE UNIQUE INDEX events_position ON events (position);
CREATE INDEX events_unpositioned ON events (seq) WHERE position IS NULL;

CREATE TABLE event_cursors (
    name          text        NOT NULL PRIMARY KEY,
    position      bigint      NOT NULL,
    -- A relay's latest failure, cleared by its next success.
    failing_since timestamptz,
    last_error    text,
    updated_at    timestamptz NOT NULL
);
INSERT INTO event_cursors (name, position, updated_at)
SELECT 'sequencer', COALESCE(MAX(position), 0), now() FROM events;
