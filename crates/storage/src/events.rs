//! The outbox as its readers see it: the sequencer that gives committed events their
//! `position` (commit order), the pages of `GET /v1/events`, and each relay's durable cursor
//! (the last position it delivered), with its latest failure for readiness and metrics.

use time::OffsetDateTime;
use uuid::Uuid;

use orderly_db::{Db, Timestamp, WritePool};

use crate::{Store, StoreError, with_pool};

/// An event with its place in the outbox's order. Serialises as consumers receive it, from
/// `GET /v1/events` and from NATS alike.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EventRecord {
    pub id: Uuid,
    /// Its place in commit order: the feed pages by it, the relay publishes by it.
    pub position: i64,
    #[serde(rename = "type")]
    pub kind: String,
    /// The order (or other resource) it is about.
    pub subject_id: Uuid,
    #[serde(rename = "data")]
    pub payload: serde_json::Value,
    #[serde(rename = "occurred_at", with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The `traceparent` of the request that caused the event (a NATS header, not the body).
    #[serde(skip)]
    pub trace_context: Option<String>,
}

type EventRow = (
    Uuid,
    i64,
    String,
    Uuid,
    sqlx::types::Json<serde_json::Value>,
    OffsetDateTime,
    Option<String>,
);

fn record(
    (id, position, kind, subject_id, payload, created_at, trace_context): EventRow,
) -> EventRecord {
    EventRecord {
        id,
        position,
        kind,
        subject_id,
        payload: payload.0,
        created_at,
        trace_context,
    }
}

/// The columns read into an [`EventRow`].
macro_rules! event_columns {
    () => {
        "id, position, type, subject_id, payload, created_at, trace_context"
    };
}

/// Which events a feed page holds.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only events after this position.
    pub after: i64,
    /// Only events of this type.
    pub kind: Option<String>,
    pub limit: i64,
}

/// A relay's place in the outbox, and how it is doing.
#[derive(Debug, Clone, PartialEq)]
pub struct RelayState {
    /// The last position relayed.
    pub position: i64,
    /// Events committed and not yet relayed (positioned or not).
    pub waiting: i64,
    /// When the oldest event not yet relayed was written.
    pub oldest_waiting: Option<OffsetDateTime>,
    /// The relay's latest failure, while it lasts.
    pub failing_since: Option<OffsetDateTime>,
    pub last_error: Option<String>,
}

/// The NATS relay's row in `event_cursors` (named in the pruning statement too).
pub const NATS_RELAY: &str = "nats";

/// A relay's cursor and backlog, each part one index probe; the argument is the column that
/// orders unpositioned events. A relay that has not started yet stands at 0: everything
/// waits for it.
macro_rules! relay_state {
    ($unpositioned_order:literal) => {
        concat!(
            "SELECT COALESCE(c.position, 0), \
             (SELECT s.position FROM event_cursors s WHERE s.name = 'sequencer') \
               - COALESCE(c.position, 0), \
             (SELECT COUNT(*) FROM events WHERE position IS NULL), \
             (SELECT created_at FROM events WHERE position > COALESCE(c.position, 0) \
              ORDER BY position LIMIT 1), \
             (SELECT created_at FROM events WHERE position IS NULL ORDER BY ",
            $unpositioned_order,
            " LIMIT 1), c.failing_since, c.last_error \
             FROM (SELECT 1 AS one) AS here LEFT JOIN event_cursors c ON c.name = $1"
        )
    };
}

/// The sequencer's row in `event_cursors` (named in [`relay_state!`] too).
const SEQUENCER: &str = "sequencer";

/// Gives the next `$2` unpositioned events positions after `$1`, in insertion order (`seq`,
/// taken at insert). PostgreSQL only: on SQLite a trigger positions each event as it is
/// inserted (migration 0010), with one writer at a time.
const SEQUENCE: &str = "UPDATE events SET position = $1 + numbered.n \
     FROM (SELECT id, row_number() OVER (ORDER BY seq) AS n FROM \
           (SELECT id, seq FROM events WHERE position IS NULL ORDER BY seq LIMIT $2) AS next) \
          AS numbered \
     WHERE events.id = numbered.id";

impl Store {
    /// Positions up to `limit` committed events not yet positioned, in one transaction that
    /// holds the sequencer's row (so two sequencers take turns); returns how many. Run by the
    /// worker holding the `events` lease.
    pub async fn sequence_events(&self, limit: i64) -> Result<u64, StoreError> {
        let Db::Postgres(pool) = &self.db else {
            // SQLite events are positioned by a trigger as they are inserted.
            return Ok(0);
        };
        // Looked for first without the lock: most passes find nothing.
        let waiting: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM events WHERE position IS NULL LIMIT 1")
                .fetch_optional(pool)
                .await?;
        if waiting.is_none() {
            return Ok(0);
        }
        let mut tx = pool.begin_write().await?;
        let last: i64 =
            sqlx::query_scalar("SELECT position FROM event_cursors WHERE name = $1 FOR UPDATE")
                .bind(SEQUENCER)
                .fetch_one(&mut *tx)
                .await?;
        let positioned = sqlx::query(SEQUENCE)
            .bind(last)
            .bind(limit)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if positioned > 0 {
            sqlx::query(
                "UPDATE event_cursors SET position = position + $2, updated_at = $3 \
                 WHERE name = $1",
            )
            .bind(SEQUENCER)
            .bind(positioned as i64)
            .bind(Timestamp::new(orderly_domain::now()))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(positioned)
    }

    /// A page of positioned events, in position order.
    pub async fn list_events(&self, filter: &EventFilter) -> Result<Vec<EventRecord>, StoreError> {
        let rows: Vec<EventRow> = match &filter.kind {
            Some(kind) => with_pool!(self, pool => sqlx::query_as(concat!(
                    "SELECT ", event_columns!(), " FROM events WHERE position > $1 AND type = $2 \
                     ORDER BY position LIMIT $3"))
                .bind(filter.after)
                .bind(kind)
                .bind(filter.limit)
                .fetch_all(pool)
                .await)?,
            None => with_pool!(self, pool => sqlx::query_as(concat!(
                    "SELECT ", event_columns!(), " FROM events WHERE position > $1 \
                     ORDER BY position LIMIT $2"))
                .bind(filter.after)
                .bind(filter.limit)
                .fetch_all(pool)
                .await)?,
        };
        Ok(rows.into_iter().map(record).collect())
    }

    /// One event; `None` when there is none by that id, or it is not positioned yet (it
    /// will be within a moment: readers see events in position order only).
    pub async fn event(&self, id: Uuid) -> Result<Option<EventRecord>, StoreError> {
        let row: Option<EventRow> = with_pool!(self, pool => sqlx::query_as(concat!(
                "SELECT ", event_columns!(), " FROM events WHERE id = $1 AND position IS NOT NULL"))
            .bind(id)
            .fetch_optional(pool)
            .await)?;
        Ok(row.map(record))
    }

    /// Where relay `name` stands, and the backlog behind it. Each part is one index probe,
    /// whatever the backlog: the next event to relay is the first past its position, the
    /// oldest unpositioned one the first of the partial index.
    pub async fn relay_state(&self, name: &str) -> Result<RelayState, StoreError> {
        let statement = match self.db {
            Db::Sqlite(_) => relay_state!("rowid"),
            Db::Postgres(_) => relay_state!("seq"),
        };
        type Row = (
            i64,
            i64,
            i64,
            Option<Timestamp>,
            Option<Timestamp>,
            Option<Timestamp>,
            Option<String>,
        );
        let (position, behind, unpositioned, next, unsequenced, failing_since, last_error): Row = with_pool!(self, pool => sqlx::query_as(statement)
                .bind(name)
                .fetch_one(pool)
                .await)?;
        let oldest = [next, unsequenced]
            .into_iter()
            .flatten()
            .map(Timestamp::get)
            .min();
        Ok(RelayState {
            position,
            waiting: behind.max(0) + unpositioned,
            oldest_waiting: oldest,
            failing_since: failing_since.map(Timestamp::get),
            last_error,
        })
    }

    /// Makes relay `name`'s cursor if it has none: it starts from the oldest event kept.
    pub async fn start_relay(&self, name: &str) -> Result<i64, StoreError> {
        let now = Timestamp::new(orderly_domain::now());
        with_pool!(self, pool => sqlx::query(
                "INSERT INTO event_cursors (name, position, updated_at) VALUES ($1, 0, $2) \
                 ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(with_pool!(self, pool => sqlx::query_scalar(
                "SELECT position FROM event_cursors WHERE name = $1")
            .bind(name)
            .fetch_one(pool)
            .await)?)
    }

    /// Records that relay `name` delivered every event up to `position`. Never moves the
    /// cursor back (a relay that lost its lease and finishes late cannot undo a newer one's
    /// progress), and clears the relay's failure.
    pub async fn relay_delivered(&self, name: &str, position: i64) -> Result<(), StoreError> {
        let now = Timestamp::new(orderly_domain::now());
        with_pool!(self, pool => sqlx::query(
                "UPDATE event_cursors SET position = CASE WHEN position < $2 THEN $2 \
                 ELSE position END, failing_since = NULL, last_error = NULL, updated_at = $3 \
                 WHERE name = $1")
            .bind(name)
            .bind(position)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Records relay `name`'s failure; `failing_since` keeps the first of a run of them.
    pub async fn relay_failed(&self, name: &str, error: &str) -> Result<(), StoreError> {
        let now = Timestamp::new(orderly_domain::now());
        with_pool!(self, pool => sqlx::query(
                "UPDATE event_cursors SET failing_since = COALESCE(failing_since, $3), \
                 last_error = $2, updated_at = $3 WHERE name = $1")
            .bind(name)
            .bind(error)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }
}
