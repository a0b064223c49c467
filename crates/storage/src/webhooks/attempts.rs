//! Delivery attempts and the events they carry: recorded as each attempt ends (keeping the
//! endpoint's failure record), listed per endpoint, and pruned with the events.

use time::OffsetDateTime;
use uuid::Uuid;

use orderly_db::{Timestamp, WritePool};
use orderly_domain::breaker::{Breaker, BreakerPolicy, Transition};

use super::breaker::{Opened, Probe, save_breaker};
use super::endpoints::breaker_from_row;

use crate::{Store, StoreError, with_pool};

/// An event from the outbox, as a delivery sends it.
#[derive(Debug, Clone)]
pub struct OutboxRecord {
    pub id: Uuid,
    pub kind: String,
    pub payload: serde_json::Value,
    pub created_at: OffsetDateTime,
}

/// How one delivery attempt went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// A 2xx answer.
    Succeeded,
    /// Any other answer, a timeout or a connection failure.
    Failed,
    /// Not sent: the target resolved to an address webhooks may not reach.
    Blocked,
}

impl AttemptOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Blocked => "blocked",
        }
    }
}

/// A delivery attempt, recorded as it ended.
#[derive(Debug, Clone)]
pub struct NewAttempt {
    pub endpoint_id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub outcome: AttemptOutcome,
    pub response_status: Option<i32>,
    pub latency_ms: i64,
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
    pub at: OffsetDateTime,
}

/// What recording an attempt tells the delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// This attempt's number for the event at the endpoint, 1 for the first.
    pub attempt: i32,
    /// The first failure since the last success; `None` after a success.
    pub failing_since: Option<OffsetDateTime>,
    /// The endpoint's breaker after this attempt.
    pub breaker: Breaker,
    /// The change of the breaker's state this attempt made, if any.
    pub transition: Option<Transition>,
    /// When the deliveries the breaker held were put off to (its probe time before this
    /// attempt), for bringing them forward as it closes.
    pub held_until: Option<OffsetDateTime>,
}

/// An event an endpoint missed (`Store::missed_webhook_events`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissedEvent {
    pub event_id: Uuid,
    pub created_at: OffsetDateTime,
    /// Attempts to deliver it to the endpoint so far.
    pub attempts: i64,
}

/// A recorded attempt, as listed.
#[derive(Debug, Clone)]
pub struct WebhookAttempt {
    pub id: i64,
    pub event_id: Uuid,
    pub event_type: String,
    pub attempt: i32,
    pub outcome: String,
    pub response_status: Option<i32>,
    pub latency_ms: i64,
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
    pub created_at: OffsetDateTime,
}

type AttemptRow = (
    i64,
    Uuid,
    String,
    i32,
    String,
    Option<i32>,
    i64,
    Option<String>,
    Option<String>,
    OffsetDateTime,
);

/// The columns read into an [`AttemptRow`].
macro_rules! attempt_columns {
    () => {
        "id, event_id, event_type, attempt, outcome, response_status, latency_ms, \
         response_excerpt, error, created_at"
    };
}

fn attempt_from_row(row: AttemptRow) -> WebhookAttempt {
    let (
        id,
        event_id,
        event_type,
        attempt,
        outcome,
        response_status,
        latency_ms,
        excerpt,
        error,
        created_at,
    ) = row;
    WebhookAttempt {
        id,
        event_id,
        event_type,
        attempt,
        outcome,
        response_status,
        latency_ms,
        response_excerpt: excerpt,
        error,
        created_at,
    }
}

impl Store {
    /// An event from the outbox.
    pub async fn outbox_event(&self, id: Uuid) -> Result<Option<OutboxRecord>, StoreError> {
        let row: Option<(
            Uuid,
            String,
            sqlx::types::Json<serde_json::Value>,
            OffsetDateTime,
        )> = with_pool!(self, pool => sqlx::query_as(
                "SELECT id, type, payload, created_at FROM events WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await)?;
        Ok(row.map(|(id, kind, payload, created_at)| OutboxRecord {
            id,
            kind,
            payload: payload.0,
            created_at,
        }))
    }

    /// How many attempts to deliver `event` to `endpoint` were made so far.
    pub async fn count_webhook_attempts(
        &self,
        endpoint: Uuid,
        event: Uuid,
    ) -> Result<i64, StoreError> {
        Ok(with_pool!(self, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM webhook_attempts WHERE event_id = $1 AND endpoint_id = $2")
            .bind(event)
            .bind(endpoint)
            .fetch_one(pool)
            .await)?)
    }

    /// Records an attempt, numbering it after those before it, and keeps the endpoint's
    /// failure record (a success clears it, a failure starts it if it was clear) and its
    /// breaker, by `policy`. `None` when the endpoint is gone (nothing is recorded).
    pub async fn record_webhook_attempt(
        &self,
        attempt: &NewAttempt,
        policy: &BreakerPolicy,
    ) -> Result<Option<Recorded>, StoreError> {
        let succeeded = attempt.outcome == AttemptOutcome::Succeeded;
        Ok(with_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            // Keeps the failure record, and takes the row's lock under which the breaker is
            // read and changed.
            let row: Option<(Option<OffsetDateTime>, String, i32, Opened, Probe)> = sqlx::query_as(
                "UPDATE webhook_endpoints SET failing_since = CASE WHEN $2 THEN NULL \
                 ELSE COALESCE(failing_since, $3) END WHERE id = $1 RETURNING failing_since, \
                 breaker_state, consecutive_failures, breaker_opened_at, breaker_probe_at")
                .bind(attempt.endpoint_id)
                .bind(succeeded)
                .bind(orderly_db::Timestamp::new(attempt.at))
                .fetch_optional(&mut *tx)
                .await?;
            let failing_since = row.as_ref().map(|(since, ..)| *since);
            let before = row
                .map(|(_, state, failures, opened, probe)| {
                    breaker_from_row((state, failures, opened, probe))
                })
                .unwrap_or_default();
            let (breaker, transition) = before.after_attempt(succeeded, attempt.at, policy);
            if breaker != before {
                save_breaker!(attempt.endpoint_id, breaker).execute(&mut *tx).await?;
            }
            let recorded = match failing_since {
                None => None,
                Some(failing_since) => {
                    let number: i32 = sqlx::query_scalar(
                        "INSERT INTO webhook_attempts (endpoint_id, event_id, event_type, \
                         attempt, outcome, response_status, latency_ms, response_excerpt, error, \
                         created_at) \
                         SELECT $1, $2, $3, CAST(COUNT(*) + 1 AS INTEGER), $4, $5, $6, $7, $8, $9 \
                         FROM webhook_attempts WHERE event_id = $2 AND endpoint_id = $1 \
                         RETURNING attempt")
                        .bind(attempt.endpoint_id)
                        .bind(attempt.event_id)
                        .bind(&attempt.event_type)
                        .bind(attempt.outcome.as_str())
                        .bind(attempt.response_status)
                        .bind(attempt.latency_ms)
                        .bind(attempt.response_excerpt.as_deref())
                        .bind(attempt.error.as_deref())
                        .bind(orderly_db::Timestamp::new(attempt.at))
                        .fetch_one(&mut *tx)
                        .await?;
                    Some(Recorded {
                        attempt: number,
                        failing_since,
                        breaker,
                        transition,
                        held_until: before.probe_at,
                    })
                }
            };
            tx.commit().await?;
            recorded
        }))
    }

    /// A page of the events since `since` that `endpoint` missed: each has attempts to it
    /// and none succeeded. In event order (time, id), after `after`; with the attempts each
    /// had. Attempts are made after their event, so only those since `since` are read.
    pub async fn missed_webhook_events(
        &self,
        endpoint: Uuid,
        since: OffsetDateTime,
        after: Option<(OffsetDateTime, Uuid)>,
        limit: u32,
    ) -> Result<Vec<MissedEvent>, StoreError> {
        let (after_at, after_id) = after.unwrap_or((since, Uuid::nil()));
        let rows: Vec<(Uuid, Timestamp, i64)> = with_pool!(self, pool => sqlx::query_as(
                "SELECT e.id, e.created_at, COUNT(*) FROM webhook_attempts a \
                 JOIN events e ON e.id = a.event_id \
                 WHERE a.endpoint_id = $1 AND a.created_at >= $2 AND e.created_at >= $2 \
                 AND (e.created_at > $3 OR (e.created_at = $3 AND e.id > $4)) \
                 GROUP BY e.id, e.created_at \
                 HAVING SUM(CASE WHEN a.outcome = 'succeeded' THEN 1 ELSE 0 END) = 0 \
                 ORDER BY e.created_at, e.id LIMIT $5")
            .bind(endpoint)
            .bind(Timestamp::new(since))
            .bind(Timestamp::new(after_at))
            .bind(after_id)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await)?;
        Ok(rows
            .into_iter()
            .map(|(event_id, at, attempts)| MissedEvent {
                event_id,
                created_at: at.get(),
                attempts,
            })
            .collect())
    }

    /// Of `events`, those with an attempt to `endpoint` that succeeded.
    pub async fn webhook_events_delivered(
        &self,
        endpoint: Uuid,
        events: &[Uuid],
    ) -> Result<Vec<Uuid>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        Ok(with_pool!(self, pool => {
            let mut query = sqlx::QueryBuilder::new(
                "SELECT DISTINCT event_id FROM webhook_attempts WHERE outcome = 'succeeded' \
                 AND endpoint_id = ");
            query.push_bind(endpoint).push(" AND event_id IN (");
            let mut list = query.separated(", ");
            for event in events {
                list.push_bind(*event);
            }
            query.push(")");
            query.build_query_scalar::<Uuid>().persistent(false).fetch_all(pool).await
        })?)
    }

    /// One page of an endpoint's attempts, newest first, older than `before` when given.
    pub async fn webhook_attempts(
        &self,
        endpoint: Uuid,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<WebhookAttempt>, StoreError> {
        let sql = concat!(
            "SELECT ",
            attempt_columns!(),
            " FROM webhook_attempts WHERE endpoint_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
        );
        let rows: Vec<AttemptRow> = with_pool!(self, pool => sqlx::query_as(sql)
            .bind(endpoint)
            .bind(before.unwrap_or(i64::MAX))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await)?;
        Ok(rows.into_iter().map(attempt_from_row).collect())
    }

    /// Every attempt to deliver these events (an order's), newest first, with its endpoint.
    pub async fn webhook_attempts_of_events(
        &self,
        events: &[Uuid],
    ) -> Result<Vec<(Uuid, WebhookAttempt)>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<(Uuid, AttemptRow)> = with_pool!(self, pool => {
            let mut query = sqlx::QueryBuilder::new(concat!(
                "SELECT endpoint_id, ", attempt_columns!(),
                " FROM webhook_attempts WHERE event_id IN ("));
            let mut list = query.separated(", ");
            for event in events {
                list.push_bind(*event);
            }
            query.push(") ORDER BY id DESC LIMIT 200");
            query
                .build_query_as::<(Uuid, i64, Uuid, String, i32, String, Option<i32>, i64, Option<String>, Option<String>, OffsetDateTime)>()
                .persistent(false)
                .fetch_all(pool)
                .await
                .map(|rows| {
                    rows.into_iter()
                        .map(|(endpoint, a, b, c, d, e, f, g, h, i, j)| (endpoint, (a, b, c, d, e, f, g, h, i, j)))
                        .collect()
                })
        })?;
        Ok(rows
            .into_iter()
            .map(|(endpoint, row)| (endpoint, attempt_from_row(row)))
            .collect())
    }

    /// Of an endpoint's last `window` attempts, how many succeeded, and how many there were.
    pub async fn webhook_success(
        &self,
        endpoint: Uuid,
        window: i64,
    ) -> Result<(i64, i64), StoreError> {
        Ok(with_pool!(self, pool => sqlx::query_as(
                "SELECT COUNT(*) FILTER (WHERE outcome = 'succeeded'), COUNT(*) FROM \
                 (SELECT outcome FROM webhook_attempts WHERE endpoint_id = $1 \
                  ORDER BY id DESC LIMIT $2) AS recent")
            .bind(endpoint)
            .bind(window)
            .fetch_one(pool)
            .await)?)
    }

    pub async fn webhook_attempt(
        &self,
        endpoint: Uuid,
        id: i64,
    ) -> Result<Option<WebhookAttempt>, StoreError> {
        let sql = concat!(
            "SELECT ",
            attempt_columns!(),
            " FROM webhook_attempts WHERE endpoint_id = $1 AND id = $2"
        );
        let row: Option<AttemptRow> = with_pool!(self, pool => sqlx::query_as(sql)
            .bind(endpoint)
            .bind(id)
            .fetch_optional(pool)
            .await)?;
        Ok(row.map(attempt_from_row))
    }

    /// Deletes events and delivery attempts older than `before`. The retention must outlast
    /// the retry schedule, so that no delivery still pending loses its event; with
    /// `relayed_only`, an event is kept until the NATS relay has delivered it, however old.
    /// Both in batches that leave the writers room, until `deadline`
    /// ([`orderly_db::delete_in_batches`]).
    pub async fn prune_events(
        &self,
        before: OffsetDateTime,
        relayed_only: bool,
        deadline: std::time::Instant,
    ) -> Result<orderly_db::Deleted, StoreError> {
        let attempts = "DELETE FROM webhook_attempts WHERE id IN (SELECT id FROM \
                        webhook_attempts WHERE created_at < $1 ORDER BY created_at LIMIT $2)";
        let events = if relayed_only {
            "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE created_at < $1 \
             AND position <= COALESCE((SELECT position FROM event_cursors \
             WHERE name = 'nats'), 0) ORDER BY created_at LIMIT $2)"
        } else {
            "DELETE FROM events WHERE id IN (SELECT id FROM events \
             WHERE created_at < $1 ORDER BY created_at LIMIT $2)"
        };
        let mut pruned = orderly_db::Deleted::default();
        for statement in [attempts, events] {
            let deleted = orderly_db::delete_in_batches(
                &self.db,
                statement,
                Timestamp::new(before),
                deadline,
            )
            .await?;
            pruned.rows += deleted.rows;
            pruned.cut_short |= deleted.cut_short;
        }
        Ok(pruned)
    }
}
