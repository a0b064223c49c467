//! What operators look at about orders, read in one place: a search, and one order's dossier:
//! the order, its history (its events), the jobs that follow it (its receipt, each webhook
//! delivery, found by the unique keys the kinds give them) and its deliveries' attempts.

use orderly_domain::{Order, OrderId};
use orderly_queue::Job;
use orderly_queue::kinds::{DeliverWebhook, SendReceipt};
use orderly_storage::StoreError;
pub use orderly_storage::{OrderEvent, OrderSearch, WebhookAttempt};
use uuid::Uuid;

use crate::Services;

/// Endpoints whose deliveries of the order's events are looked for.
const ENDPOINTS: u32 = 100;

/// One order and what followed it.
#[derive(Debug, Clone)]
pub struct OrderDossier {
    pub order: Order,
    /// Oldest first, at most [`orderly_storage::HISTORY_LIMIT`].
    pub events: Vec<OrderEvent>,
    /// The receipt's job and each delivery's.
    pub jobs: Vec<Job>,
    /// Each attempt to deliver one of its events, newest first, with its endpoint's id.
    pub deliveries: Vec<(Uuid, WebhookAttempt)>,
}

impl Services {
    /// A page of orders matching `search`, newest first: the operators' search.
    pub async fn search_orders(&self, search: &OrderSearch) -> Result<Vec<Order>, StoreError> {
        self.store.search_orders(search).await
    }

    /// The history of order `id`: its events, oldest first, each with its actor; `None` when
    /// there is no such order.
    pub async fn order_history(
        &self,
        id: OrderId,
    ) -> Result<Option<(Order, Vec<OrderEvent>)>, StoreError> {
        let Some(order) = self.store.order_by_id(id).await? else {
            return Ok(None);
        };
        Ok(Some((order, self.store.order_events(id).await?)))
    }

    /// The dossier of order `id`; `None` when there is no such order.
    pub async fn order_dossier(&self, id: OrderId) -> Result<Option<OrderDossier>, StoreError> {
        let Some(order) = self.store.order_by_id(id).await? else {
            return Ok(None);
        };
        let events = self.store.order_events(id).await?;
        let event_ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
        let deliveries = self.store.webhook_attempts_of_events(&event_ids).await?;
        let endpoints = self.store.list_webhooks(None, ENDPOINTS).await?;
        let mut keys = vec![SendReceipt::unique_key(id)];
        for event in &events {
            for endpoint in &endpoints {
                keys.push(DeliverWebhook::unique_key(event.id, endpoint.id));
            }
        }
        let jobs = self.store.queue().jobs_by_unique_keys(&keys).await?;
        Ok(Some(OrderDossier {
            order,
            events,
            jobs,
            deliveries,
        }))
    }
}
