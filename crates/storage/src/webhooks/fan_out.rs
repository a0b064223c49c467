//! Turning events into delivery jobs inside the transaction that writes the events: an event
//! committed is an event whose deliveries are queued, and an event rolled back queues nothing.

use std::future::Future;

use time::OffsetDateTime;
use uuid::Uuid;

use orderly_queue::kinds::{DeliverWebhook, DeliveryArgs};
use orderly_queue::{Enqueued, InsertJobs, NewJob, enqueue_in};

/// An event about to be written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutboxEvent<'a> {
    pub id: Uuid,
    pub kind: &'a str,
    /// The `traceparent` of the request that caused it, continued by its deliveries.
    pub trace: Option<&'a str>,
}

/// The statements fan-out needs, on one connection inside an open transaction.
pub(crate) trait OutboxSql: InsertJobs {
    /// Every `(endpoint, event type)` subscription of the endpoints that are enabled.
    fn subscriptions(
        &mut self,
    ) -> impl Future<Output = Result<Vec<(Uuid, String)>, sqlx::Error>> + Send;
}

const SUBSCRIPTIONS: &str = "SELECT s.endpoint_id, s.event_type FROM webhook_subscriptions s \
                             JOIN webhook_endpoints w ON w.id = s.endpoint_id \
                             WHERE w.disabled_at IS NULL";

/// Implements [`OutboxSql`] for a connection type.
macro_rules! impl_outbox_sql {
    ($connection:ty) => {
        impl OutboxSql for $connection {
            async fn subscriptions(&mut self) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
                sqlx::query_as(SUBSCRIPTIONS).fetch_all(&mut *self).await
            }
        }
    };
}

impl_outbox_sql!(sqlx::SqliteConnection);
impl_outbox_sql!(sqlx::PgConnection);

/// The job that delivers `event` to `endpoint`: one per pair, ever (a manual redelivery is a
/// job of its own, see [`redelivery_job`]).
fn delivery_job(event: Uuid, endpoint: Uuid, trace: Option<&str>) -> NewJob {
    DeliverWebhook::job(&DeliveryArgs {
        event_id: event,
        endpoint_id: endpoint,
        attempts_before: 0,
    })
    .unique(DeliverWebhook::unique_key(event, endpoint))
    .traced(trace)
}

/// A delivery sent again by hand: the same event to the same endpoint, with a fresh retry
/// schedule. `attempts_before` is how many attempts the pair had when it was asked for: the
/// schedule counts from there.
pub fn redelivery_job(event: Uuid, endpoint: Uuid, attempts_before: i64) -> NewJob {
    DeliverWebhook::job(&DeliveryArgs {
        event_id: event,
        endpoint_id: endpoint,
        attempts_before,
    })
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
