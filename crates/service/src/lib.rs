//! The service layer: each use case is one function here that owns its whole rule (the writes,
//! and what must follow them: the cache entries it invalidates, the log line it writes), so that
//! whoever triggers it (an API request, a console form, a CLI command, a scheduled chore) gets
//! the same behaviour. Adapters extract, call and render; storage stores.
//!
//! Use cases here so far: API keys (`api_keys.rs`); operators' console sessions and the audit log
//! (`console_sessions.rs`); placing orders (`orders/place.rs`); an order's dossier for
//! operators (`orders/dossier.rs`); the overview's figures (`overview.rs`); order transitions and expiring
//! unpaid orders (`orders/mod.rs`); creating,
//! changing and archiving products, and forgetting the cached reads of products a write
//! changed (`catalogue.rs`, the one place outside `crates/cache` that invalidates the product
//! cache); sending a webhook delivery again (`webhooks.rs`); pausing and resuming job queues
//! (`queues.rs`); webhook endpoints: their writes, reads and secret rotation
//! (`webhook_endpoints.rs`); the scheduler's pass and pausing, resuming and running a schedule now
//! (`schedules/`); retrying and cancelling a job (`jobs.rs`).

mod api_keys;
mod catalogue;
mod console_sessions;
mod jobs;
mod orders;
mod overview;
mod queues;
mod schedules;
mod webhook_endpoints;
mod webhooks;

pub use api_keys::{ApiKeyInfo, KeyError};
pub use console_sessions::{
    AuditEntry, Audited, ConsoleSession, OpenedSession, SignInError, random_token,
    session_token_hash,
};
pub use jobs::{JobAction, JobActionError};
pub use orderly_storage::{NewWebhook, ProductWrite};
pub use orders::{
    ChangeKey, ChangeOutcome, ChangeRequest, OrderChange, OrderDossier, OrderEvent, OrderPlacement,
    OrderRejection, OrderSearch, PlaceOrder, Placement, ReceivedOf, ReturnRefund, Tracking,
    TransitionError, UnitsOf, WebhookAttempt,
};
pub use overview::Overview;
pub use queues::{QueueControlError, QueueControlled};
pub use schedules::{CronPattern, Missed, Schedule, ScheduleState, Zone};
pub use webhook_endpoints::{EndpointHealth, RECENT_ATTEMPTS, WebhookChange, WebhookEndpoint};
pub use webhooks::{Redelivery, RedeliveryError, Replay};

pub use orderly_storage::StoreError;

use orderly_cache::ProductCache;
use orderly_queue::kinds::AttemptLimits;
use orderly_storage::Store;

/// What the use cases work with. Cheap to clone: each part is shared.
#[derive(Debug, Clone)]
pub struct Services {
    store: Store,
    /// The product read cache; `None` when caching is off.
    cache: Option<ProductCache>,
    settings: std::sync::Arc<ServiceSettings>,
}

/// The configured values the rules use.
#[derive(Debug, Clone, Default)]
pub struct ServiceSettings {
    /// Runs each kind of job gets, for the jobs the use cases enqueue.
    pub attempts: AttemptLimits,
    /// How long a webhook endpoint's old secret keeps signing after a rotation.
    pub webhook_rotation_grace: time::Duration,
    /// How long the `Idempotency-Key` of a change to an order is kept (as an order
    /// creation's: `orders.idempotency_ttl`).
    pub change_key_ttl: time::Duration,
    /// The fleet-wide limits on jobs, whose use the queues' figures show.
    pub job_limits: orderly_queue::limits::Limits,
}

impl Services {
    pub fn new(store: Store, cache: Option<ProductCache>, settings: ServiceSettings) -> Self {
        Self {
            store,
            cache,
            settings: std::sync::Arc::new(settings),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn cache(&self) -> Option<&ProductCache> {
        self.cache.as_ref()
    }
}
