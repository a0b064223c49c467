//! orderly's storage: one [`Store`] over SQLite (the embedded default) and PostgreSQL (for
//! scale-out), chosen by the database URL's scheme. Both run the same SQL where the dialects
//! agree; each backend keeps its own migrations so PostgreSQL keeps its native types.

mod api_keys;
mod error;
mod jobs;
mod migrations;
mod order_writer;
mod orders;
mod products;
mod reports;
mod scheduler;
mod webhooks;

use std::str::FromStr;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

pub use api_keys::{ApiKeyInfo, Caller, NewApiKey, key_digest};
pub use error::{StoreError, cause_chain};
pub use jobs::{Finished, Job, JobChange, JobFilter, JobListener, NewJob, Outcome};
pub use order_writer::{OrderWriter, OrderWriterSettings};
pub use orders::{
    CreateOrder, CreateOutcome, LineProblem, OrderFilter, OrderRejection, OrderSettings,
    RECEIPT_JOB, RenderOrder, ShortLine, StoredResponse, TransitionOutcome,
};
pub use products::{ProductFilter, UpdateOutcome};
pub use reports::{LowStock, ProductSales, SalesSummary};
pub use sqlx::Error as SqlxError;
pub use webhooks::{
    AttemptOutcome, DELIVERY_JOB, NewAttempt, NewWebhook, OutboxRecord, Recorded, SECRET_PREFIX,
    WebhookAttempt, WebhookChange, WebhookEndpoint, redelivery_job,
};

/// Runs `$body` with `$pool` bound to whichever pool the store holds. The body is compiled once
/// per backend, so it may use any SQL and types that both drivers accept.
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.backend {
            $crate::Backend::Sqlite($pool) => $body,
            $crate::Backend::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// Connection settings that do not belong in the URL.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Most connections the pool opens.
    pub max_connections: u32,
    /// How long a caller waits for a free connection before the call fails.
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Sqlite,
    Postgres,
}

impl BackendKind {
    /// The backend a database URL names, from its scheme.
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or_default();
        match scheme {
            "sqlite" => Ok(Self::Sqlite),
            "postgres" | "postgresql" => Ok(Self::Postgres),
            _ => Err(StoreError::UnsupportedUrl),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

#[derive(Debug, Clone)]
enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The service's database: a connection pool and every query the service makes.
/// Cheap to clone; clones share the pool.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
    jobs_signal: jobs::JobsSignal,
}

impl Store {
    /// Opens a pool for `url` (`sqlite://path` or `postgres://…`). SQLite files are created
    /// when missing and run in WAL mode with `synchronous = FULL`, so a committed write
    /// survives a power cut, with foreign keys on and a busy timeout for concurrent writers.
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let backend = match BackendKind::from_url(url)? {
            BackendKind::Sqlite => {
                let connect = SqliteConnectOptions::from_str(url)
                    .map_err(|_| StoreError::UnsupportedUrl)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(5));
                let pool = SqlitePoolOptions::new()
                    .max_connections(options.max_connections)
                    .acquire_timeout(options.acquire_timeout)
                    .connect_with(connect)
                    .await?;
                Backend::Sqlite(pool)
            }
            BackendKind::Postgres => {
                let connect =
                    PgConnectOptions::from_str(url).map_err(|_| StoreError::UnsupportedUrl)?;
                let pool = PgPoolOptions::new()
                    .max_connections(options.max_connections)
                    .acquire_timeout(options.acquire_timeout)
                    .connect_with(connect)
                    .await?;
                Backend::Postgres(pool)
            }
        };
        Ok(Self {
            backend,
            jobs_signal: jobs::JobsSignal::default(),
        })
    }

    pub fn kind(&self) -> BackendKind {
        match self.backend {
            Backend::Sqlite(_) => BackendKind::Sqlite,
            Backend::Postgres(_) => BackendKind::Postgres,
        }
    }

    /// Applies every embedded migration not yet applied. Safe to run from several processes
    /// at once: PostgreSQL serialises them with an advisory lock.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(pool) => migrations::sqlite().run(pool).await?,
            Backend::Postgres(pool) => migrations::postgres().run(pool).await?,
        }
        Ok(())
    }

    /// Runs a trivial query and reports how long the round trip took.
    pub async fn ping(&self) -> Result<Duration, StoreError> {
        let started = Instant::now();
        with_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))?;
        Ok(started.elapsed())
    }

    /// Connections open in the pool, and how many of them are idle.
    pub fn pool_usage(&self) -> (u32, usize) {
        with_pool!(self, pool => (pool.size(), pool.num_idle()))
    }

    /// Waits for checked-out connections to return, then closes the pool.
    pub async fn close(&self) {
        with_pool!(self, pool => pool.close().await)
    }
}
