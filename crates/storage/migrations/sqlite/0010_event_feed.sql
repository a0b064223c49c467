-- The events' order for the readers of the outbox (see the PostgreSQL migration of the same
-- name). SQLite has one writer at a time, so the rowid is already insertion and commit order;
-- the sequencer still gives each event its `position`, so that both backends page the same
-- way and positions never restart when the table empties.
ALTER TABLE events ADD COLUMN position INTEGER;
ALTER TABLE events ADD COLUMN trace_context TEXT;

UPDATE events SET position = numbered.n
FROM (SELECT id, row_number() OVER (ORDER BY rowid) AS n FROM events) AS numbered
WHERE events.id = numbered.id;

CREATE UNIQUE INDEX events_position ON events (position);
CREATE INDEX events_unpositioned ON events (position) WHERE position IS NULL;

CREATE TABLE event_cursors (
    name          TEXT    NOT NULL PRIMARY KEY,
    position      INTEGER NOT NULL,
    failing_since TEXT,
    last_error    TEXT,
    updated_at    TEXT    NOT NULL
) STRICT;
INSERT INTO event_cursors (name, position, updated_at)
SELECT 'sequencer', COALESCE(MAX(position), 0), strftime('%Y-%m-%dT%H:%M:%S', 'now') || '.000000Z' FROM events;
