//! Turning events into delivery jobs inside the transaction that writes the events: an event
//! committed is an event whose deliveries are queued, and an event rolled back queues nothing.

use std::future::Future;

use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::NewJob;
use crate::jobs::{Enqueued, enqueue_in};

/// The job kind that delivers one event to one endpoint.
pub const DELIVERY_JOB: &str = "deliver_webhook";
/// The queue deliveries run on, apart from receipts so that a slow endpoint cannot hold up
/// the mail.
const DELIVERY_QUEUE: &str = "webhooks";
/// The job layer's cap on runs of one delivery: above the longest retry schedule (20 waits,
/// so 21 attempts), which the delivery handler follows and ends itself; the margin covers runs
/// lost to a worker that died. Runs put off because the endpoint was busy do not count.
const DELIVERY_JOB_MAX_ATTEMPTS: i32 = 25;

/// An event about to be written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutboxEvent<'a> {
    pub id: Uuid,
    pub kind: &'a str,
    /// The `traceparent` of the request that caused it, continued by its deliveries.
    pub trace: Option<&'a str>,
}

/// The statements fan-out needs, on one connection inside an open transaction.
pub(crate) trait OutboxSql: Send {
    /// Every `(endpoint, event type)` subscription of the endpoints that are enabled.
    fn subscriptions(
        &mut self,
    ) -> impl Future<Output = Result<Vec<(Uuid, String)>, sqlx::Error>> + Send;
    fn insert_jobs(
        &mut self,
        jobs: &[NewJob],
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Vec<i64>, sqlx::Error>> + Send;
}

const SUBSCRIPTIONS: &str = "SELECT s.endpoint_id, s.event_type FROM webhook_subscriptions s \
                             JOIN webhook_endpoints w ON w.id = s.endpoint_id \
                             WHERE w.disabled_at IS NULL";

/// Implements [`OutboxSql`] for a connection type whose job inserts live in `$jobs`.
macro_rules! impl_outbox_sql {
    ($connection:ty, $jobs:path) => {
        impl OutboxSql for $connection {
            async fn subscriptions(&mut self) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
                sqlx::query_as(SUBSCRIPTIONS).fetch_all(&mut *self).await
            }

            async fn insert_jobs(
                &mut self,
                jobs: &[NewJob],
                now: OffsetDateTime,
            ) -> Result<Vec<i64>, sqlx::Error> {
                $jobs(self, jobs, now).await
            }
        }
    };
}

impl_outbox_sql!(sqlx::SqliteConnection, crate::jobs::sql::insert_jobs_sqlite);
impl_outbox_sql!(sqlx::PgConnection, crate::jobs::sql::insert_jobs_postgres);

/// The job that delivers `event` to `endpoint`: one per pair, ever (a manual redelivery is a
/// job of its own, see [`redelivery_job`]).
fn delivery_job(event: Uuid, endpoint: Uuid, trace: Option<&str>) -> NewJob {
    NewJob {
        queue: DELIVERY_QUEUE.into(),
        unique_key: Some(format!("webhook:{event}:{endpoint}")),
        trace_context: trace.map(str::to_owned),
        ..NewJob::new(
            DELIVERY_JOB,
            json!({ "event_id": event.to_string(), "endpoint_id": endpoint.to_string() }),
            DELIVERY_JOB_MAX_ATTEMPTS,
        )
    }
}

/// A delivery sent again by hand: the same event to the same endpoint, with a fresh retry
/// schedule. `attempts_before` is how many attempts the pair had when it was asked for: the
/// schedule counts from there.
pub fn redelivery_job(event: Uuid, endpoint: Uuid, attempts_before: i64) -> NewJob {
    let mut job = NewJob {
        unique_key: None,
        ..delivery_job(event, endpoint, None)
    };
    job.args["attempts_before"] = json!(attempts_before);
    job
}

/// Queues one delivery job per event per enabled endpoint subscribed to its type, inside the
/// caller's transaction.
pub(crate) async fn queue_deliveries<C: OutboxSql>(
    conn: &mut C,
    events: &[OutboxEvent<'_>],
    now: OffsetDateTime,
) -> Result<Enqueued, sqlx::Error> {
    let subscriptions = conn.subscriptions().await?;
    if subscriptions.is_empty() {
        return Ok(Enqueued::default());
    }
    let jobs: Vec<NewJob> = events
        .iter()
        .flat_map(|event| {
            subscriptions
                .iter()
                .filter(|(_, kind)| kind == event.kind)
                .map(|(endpoint, _)| delivery_job(event.id, *endpoint, event.trace))
        })
        .collect();
    enqueue_in(conn, &jobs, now).await
}
