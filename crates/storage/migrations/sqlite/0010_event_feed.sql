-- The events' order for the readers of the outbox (see the PostgreSQL migration of the same
-- name). SQLite has one writer at a time, so an event can take its position as it is
-- inserted, inside the transaction that writes it: the trigger below counts on the
-- sequencer's row in `event_cursors` (so positions never restart when the table empties).
-- No sequencer pass is then needed, and none has to wait for the write lock behind the order
-- writer (measured: that wait put the relay seconds behind under load).
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

CREATE TRIGGER events_position AFTER INSERT ON events WHEN NEW.position IS NULL
BEGIN
    UPDATE event_cursors SET position = position + 1 WHERE name = 'sequencer';
    UPDATE events SET position = (SELECT position FROM event_cursors WHERE name = 'sequencer')
    WHERE rowid = NEW.rowid;
END;
