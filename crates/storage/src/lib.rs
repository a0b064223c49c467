//! orderly's storage: one [`Store`] over SQLite (the embedded default) and PostgreSQL (for
//! scale-out), chosen by the database URL's scheme. Both run the same SQL where the dialects
//! agree; each backend keeps its own migrations so PostgreSQL keeps its native types.

mod api_keys;
mod console;
mod error;
mod events;
mod migrations;
mod order_writer;
mod orders;
mod products;
mod reachability;
mod reports;
mod scheduler;
mod webhooks;

use std::time::Duration;

pub use orderly_db::BackendKind;
use orderly_db::{Db, DbOptions};
use orderly_queue::Queue;

pub use api_keys::{ApiKeyInfo, Caller, NewApiKey, key_digest};
pub use console::{
    AuditEntry, ConsoleSession, HISTORY_LIMIT, NewAuditEntry, NewSession, OrderEvent, OrderSearch,
};
pub use error::StoreError;
pub use events::{EventFilter, EventRecord, NATS_RELAY, RelayState};
pub use order_writer::{AdmittedOrder, OrderWriter, OrderWriterSettings, WriteLoop};
pub use orderly_db::cause_chain;
pub use orders::{
    ChangeKey, ChangeOutcome, ChangeRequest, ChangeSettings, CreateOrder, CreateOutcome,
    LineProblem, OrderChange, OrderFilter, OrderRejection, OrderSettings, ReceivedOf, ReturnRefund,
    ShortLine, Tracking, TransitionOutcome, UnitsOf,
};
pub use products::{ProductFilter, ProductWrite, UpdateOutcome};
pub use reachability::is_unreachable;
pub use reports::{LowStock, ProductSales, SalesSummary};
pub use webhooks::{
    AttemptOutcome, MissedEvent, NewAttempt, NewWebhook, OutboxRecord, Recorded, SECRET_PREFIX,
    WebhookAttempt, WebhookChange, WebhookEndpoint, redelivery_job,
};

/// Runs `$body` with `$pool` bound to whichever pool the store holds (see
/// [`orderly_db::with_pool`]).
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        orderly_db::with_pool!(&$store.db, $pool => $body)
    };
}
pub(crate) use with_pool;

/// Connection settings that do not belong in the URL.
pub type StoreOptions = DbOptions;

/// The service's database: a connection pool and every query the service makes.
/// Cheap to clone; clones share the pool.
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
    queue: Queue,
    reachability: std::sync::Arc<reachability::Reachability>,
}

impl Store {
    /// Opens a pool for `url` (`sqlite://path` or `postgres://…`). SQLite files are created
    /// when missing and run in WAL mode with `synchronous = FULL`, so a committed write
    /// survives a power cut, with foreign keys on and a busy timeout for concurrent writers.
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let db = Db::connect(url, options).await?;
        Ok(Self {
            queue: Queue::new(db.clone()),
            db,
            reachability: Default::default(),
        })
    }

    /// The job queue, in the same database.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    pub fn kind(&self) -> BackendKind {
        self.db.kind()
    }

    /// Applies every embedded migration not yet applied. Safe to run from several processes
    /// at once: PostgreSQL serialises them with an advisory lock.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrations::run(&self.db).await?;
        Ok(())
    }

    /// Runs a trivial query and reports how long the round trip took.
    pub async fn ping(&self) -> Result<Duration, StoreError> {
        let took = self.db.ping().await?;
        self.database_answered();
        Ok(took)
    }

    /// Connections open in the pool, and how many of them are idle.
    pub fn pool_usage(&self) -> (u32, usize) {
        self.db.pool_usage()
    }

    /// Waits for checked-out connections to return, then closes the pool.
    pub async fn close(&self) {
        self.db.close().await
    }
}
