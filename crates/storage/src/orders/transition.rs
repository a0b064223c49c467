//! Moving an order between states: the status change, the stock it gives back when cancelled
//! or expired, and its event, in one transaction.

use orderly_domain::{Actor, OrderAction, OrderId, OrderStatus, ProductId};
use serde_json::json;
use time::OffsetDateTime;

use uuid::Uuid;

use super::TransitionOutcome;
use super::sql::TransitionSql;
use crate::webhooks::{OutboxEvent, queue_deliveries};
use orderly_queue::Enqueued;

/// Applies `action` inside an open transaction. On anything but `Done` nothing was written.
/// `trace` is the `traceparent` of the request asking, continued by the event's deliveries.
pub(crate) async fn transition<C: TransitionSql>(
    conn: &mut C,
    id: OrderId,
    action: OrderAction,
    actor: &Actor,
    trace: Option<&str>,
    now: OffsetDateTime,
) -> Result<(TransitionOutcome, Enqueued), sqlx::Error> {
    let sources = OrderStatus::sources(action);
    let Some(target) = sources.first().and_then(|s| s.apply(action).ok()) else {
        return Ok((TransitionOutcome::NotFound, Enqueued::default()));
    };
    // At most two statuses lead anywhere by one action; pad to two for the fixed statement.
    let from = [sources[0], *sources.get(1).unwrap_or(&sources[0])];
    if !conn
        .set_order_status(id.as_uuid(), target, from, now)
        .await?
    {
        let outcome = match conn.order_status(id.as_uuid()).await? {
            None => TransitionOutcome::NotFound,
            Some(current) => TransitionOutcome::NotAllowed {
                current: current
                    .parse()
                    .map_err(|e: String| sqlx::Error::Decode(e.into()))?,
            },
        };
        return Ok((outcome, Enqueued::default()));
    }
    if target.releases_stock() {
        // Lines come back in product order: the same lock order as reservations.
        for (product, quantity) in conn.order_quantities(id.as_uuid()).await? {
            conn.release_stock(ProductId::from_uuid(product), quantity, now)
                .await?;
        }
    }
    let payload = json!({
        "order_id": id.to_string(),
        "status": target.as_str(),
        "actor": super::change_record::actor_json(actor),
    });
    let event = OutboxEvent {
        id: Uuid::now_v7(),
        kind: &format!("order.{target}"),
        trace,
    };
    conn.insert_event(event.id, event.kind, id.as_uuid(), &payload, now, trace)
        .await?;
    let deliveries = queue_deliveries(conn, &[event], now).await?;
    Ok((TransitionOutcome::Done, deliveries))
}
