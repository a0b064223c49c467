//! Moving orders between states, whoever asks: `pay`, `fulfill` and `cancel` from the API and
//! the console, `expire` from the `expire_orders` chore. An order that gives its stock back
//! (cancelled, expired) leaves its products' cached reads stale: they are forgotten here, once
//! the transition has committed.

mod dossier;
mod place;

pub use dossier::{OrderDossier, OrderEvent, OrderSearch, WebhookAttempt};
pub use place::{OrderPlacement, OrderRejection, PlaceOrder, Placement};

use orderly_domain::{Order, OrderAction, OrderId, OrderStatus};
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
    /// Moves order `id` on by `action`, its events and jobs written in the same transaction;
    /// `trace` is the W3C trace context its event carries.
    pub async fn transition_order(
        &self,
        id: OrderId,
        action: OrderAction,
        trace: Option<&str>,
    ) -> Result<Order, TransitionError> {
        match self.store.transition_order(id, action, trace).await? {
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
                match self.transition_order(id, OrderAction::Expire, None).await {
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
