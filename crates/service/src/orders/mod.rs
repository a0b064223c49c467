//! Changing orders, whoever asks: captures, shipments, cancellations of units and refunds
//! (`change_order`), the shorthands `pay`, `fulfill` and `cancel` from the API and the console
//! (capture what is due, ship or cancel every open unit), and `expire` from the
//! `expire_orders` chore. A change that gives stock back (units cancelled, an order expired)
//! leaves its products' cached reads stale: they are forgotten here, once it has committed.

mod dossier;
mod place;

pub use dossier::{OrderDossier, OrderEvent, OrderSearch, WebhookAttempt};
pub use orderly_storage::{
    ChangeKey, ChangeOutcome, ChangeRequest, OrderChange, ReceivedOf, ReturnRefund, Tracking,
    UnitsOf,
};
pub use place::{OrderPlacement, OrderRejection, PlaceOrder, Placement};

use orderly_domain::{Actor, Order, OrderAction, OrderId, OrderStatus};
use orderly_storage::{StoreError, TransitionOutcome};
use time::OffsetDateTime;

use crate::Services;

/// Why a transition did not happen.
#[derive(Debug, thiserror::Error)]
pub enum TransitionError {
    #[error("no such order")]
    NotFound,
    #[error("cannot {action} an order that is {current}")]
    NotAllowed {
        action: OrderAction,
        current: OrderStatus,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Services {
    /// Applies a change to an order (see [`ChangeRequest`]), its records, events and jobs in
    /// one transaction; the cached reads of products whose units were cancelled are forgotten.
    pub async fn change_order(&self, request: &ChangeRequest) -> Result<ChangeOutcome, StoreError> {
        let settings = orderly_storage::ChangeSettings {
            key_ttl: self.settings.change_key_ttl,
            notice_attempts: self
                .settings
                .attempts
                .of::<orderly_queue::kinds::NotifyCustomer>(),
        };
        let outcome = self.store.change_order(request, settings).await?;
        if let ChangeOutcome::Done(order) = &outcome {
            // Cancelled units, restocked returns and edits move stock.
            if matches!(
                request.change,
                OrderChange::Cancel { .. }
                    | OrderChange::ReceiveReturn { .. }
                    | OrderChange::Edit { .. }
            ) {
                self.forget_products(order.lines.iter().map(|l| (l.product_id, None)))
                    .await;
            }
            tracing::info!(
                order_id = %order.id, status = %order.status, actor = %request.actor.id,
                change = change_name(&request.change), "order changed"
            );
        }
        Ok(outcome)
    }

    /// Moves order `id` on by `action`, for `actor`, its events and jobs written in the same
    /// transaction; `trace` is the W3C trace context its events carry. `pay` captures what is
    /// due, `fulfill` ships and `cancel` cancels every open unit.
    pub async fn transition_order(
        &self,
        id: OrderId,
        action: OrderAction,
        trace: Option<&str>,
        actor: &Actor,
    ) -> Result<Order, TransitionError> {
        let change = match action {
            OrderAction::Pay => OrderChange::PayInFull,
            OrderAction::Fulfill => OrderChange::Ship {
                lines: None,
                tracking: orderly_storage::Tracking::default(),
            },
            OrderAction::Cancel => OrderChange::Cancel { lines: None },
            OrderAction::Expire => return self.expire_order(id).await,
        };
        let request = ChangeRequest {
            order: id,
            change,
            actor: actor.clone(),
            expected_version: None,
            key: None,
            trace: trace.map(str::to_owned),
        };
        match self.change_order(&request).await? {
            ChangeOutcome::Done(order) => Ok(*order),
            ChangeOutcome::Refused { status, .. } => Err(TransitionError::NotAllowed {
                action,
                current: status,
            }),
            _ => Err(TransitionError::NotFound),
        }
    }

    /// Expires order `id` if it is still pending with nothing captured.
    async fn expire_order(&self, id: OrderId) -> Result<Order, TransitionError> {
        let action = OrderAction::Expire;
        let actor = Actor::schedule("expire_orders");
        match self
            .store
            .transition_order(id, action, &actor, None)
            .await?
        {
            (TransitionOutcome::Done, Some(order)) => {
                if order.status.releases_stock() {
                    self.forget_products(order.lines.iter().map(|l| (l.product_id, None)))
                        .await;
                }
                tracing::info!(order_id = %order.id, status = %order.status, "order {action} done");
                Ok(order)
            }
            (TransitionOutcome::NotAllowed { current }, _) => {
                Err(TransitionError::NotAllowed { action, current })
            }
            _ => Err(TransitionError::NotFound),
        }
    }

    /// Expires every order still pending that was placed before `cutoff`, one transaction each
    /// (an order paid meanwhile is no longer pending, and is left alone); returns how many.
    pub async fn expire_unpaid_orders(&self, cutoff: OffsetDateTime) -> Result<u64, StoreError> {
        let mut expired = 0;
        loop {
            let batch = self.store.pending_orders_before(cutoff, 100).await?;
            if batch.is_empty() {
                break;
            }
            for id in batch {
                match self.expire_order(id).await {
                    Ok(_) => expired += 1,
                    Err(TransitionError::Store(error)) => return Err(error),
                    Err(TransitionError::NotAllowed { .. } | TransitionError::NotFound) => {}
                }
            }
        }
        if expired > 0 {
            tracing::info!(expired, "expired unpaid orders");
        }
        Ok(expired)
    }
}

fn change_name(change: &OrderChange) -> &'static str {
    match change {
        OrderChange::Capture { .. } => "capture",
        OrderChange::PayInFull => "pay",
        OrderChange::Ship { .. } => "ship",
        OrderChange::Cancel { .. } => "cancel",
        OrderChange::Refund { .. } => "refund",
        OrderChange::RequestReturn { .. } => "request_return",
        OrderChange::ReceiveReturn { .. } => "receive_return",
        OrderChange::Edit { .. } => "edit",
    }
}
