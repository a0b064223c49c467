//! The service layer: each use case is one function here that owns its whole rule (the writes,
//! and what must follow them: the cache entries it invalidates, the log line it writes), so that
//! whoever triggers it (an API request, a console form, a CLI command, a scheduled chore) gets
//! the same behaviour. Adapters extract, call and render; storage stores.
//!
//! Use cases here so far: placing orders (`orders/place.rs`); an order's dossier for
//! operators (`orders/dossier.rs`); order transitions and expiring
//! unpaid orders (`orders/mod.rs`); creating,
//! changing and archiving products, and forgetting the cached reads of products a write
//! changed (`catalogue.rs`, the one place outside `crates/cache` that invalidates the product
//! cache); sending a webhook delivery again (`webhooks.rs`); pausing and resuming job queues
//! (`queues.rs`); the scheduler's pass and pausing, resuming and running a schedule now
//! (`schedules/`); retrying and cancelling a job (`jobs.rs`).

mod catalogue;
mod jobs;
mod orders;
mod queues;
mod schedules;
mod webhooks;

pub use jobs::{JobAction, JobActionError};
pub use orders::{
    OrderDossier, OrderPlacement, OrderRejection, PlaceOrder, Placement, TransitionError,
};
pub use queues::{QueueControlError, QueueControlled};
pub use schedules::{CronPattern, Missed, Schedule, ScheduleState, Zone};
pub use webhooks::{Redelivery, RedeliveryError};

use orderly_cache::ProductCache;
use orderly_queue::kinds::AttemptLimits;
use orderly_storage::Store;

/// What the use cases work with. Cheap to clone: each part is shared.
#[derive(Debug, Clone)]
pub struct Services {
    store: Store,
    /// The product read cache; `None` when caching is off.
    cache: Option<ProductCache>,
    /// Runs each kind of job gets, for the jobs the use cases enqueue.
    attempts: std::sync::Arc<AttemptLimits>,
}

impl Services {
    pub fn new(store: Store, cache: Option<ProductCache>, attempts: AttemptLimits) -> Self {
        Self {
            store,
            cache,
            attempts: std::sync::Arc::new(attempts),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn cache(&self) -> Option<&ProductCache> {
        self.cache.as_ref()
    }
}
