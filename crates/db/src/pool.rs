//! [`Db`]: the connection pool, to SQLite or PostgreSQL as the URL says.

use std::str::FromStr;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

/// Runs `$body` with `$pool` bound to whichever pool `$db` (a [`Db`]) holds. The body is
/// compiled once per backend, so it may use any SQL and types that both drivers accept.
#[macro_export]
macro_rules! with_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::Db::Sqlite($pool) => $body,
            $crate::Db::Postgres($pool) => $body,
        }
    };
}

/// Connection settings that do not belong in the URL.
#[derive(Debug, Clone)]
pub struct DbOptions {
    /// Most connections the pool opens.
    pub max_connections: u32,
    /// How long a caller waits for a free connection before the call fails.
    pub acquire_timeout: Duration,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Sqlite,
    Postgres,
}

impl BackendKind {
    /// The backend a database URL names, from its scheme.
    pub fn from_url(url: &str) -> Result<Self, ConnectError> {
        let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or_default();
        match scheme {
            "sqlite" => Ok(Self::Sqlite),
            "postgres" | "postgresql" => Ok(Self::Postgres),
            _ => Err(ConnectError::UnsupportedUrl),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// Why a pool could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("unsupported database URL: expected sqlite://PATH or postgres://…")]
    UnsupportedUrl,
    #[error("cannot connect to the database")]
    Database(#[from] sqlx::Error),
}

/// The service's database connections. Cheap to clone; clones share the pool.
#[derive(Debug, Clone)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Db {
    /// Opens a pool for `url` (`sqlite://path` or `postgres://…`). SQLite files are created
    /// when missing and run in WAL mode with `synchronous = FULL`, so a committed write
    /// survives a power cut, with foreign keys on and a busy timeout for concurrent writers.
    pub async fn connect(url: &str, options: &DbOptions) -> Result<Self, ConnectError> {
        Ok(match BackendKind::from_url(url)? {
            BackendKind::Sqlite => {
                let connect = SqliteConnectOptions::from_str(url)
                    .map_err(|_| ConnectError::UnsupportedUrl)?
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
                Self::Sqlite(pool)
            }
            BackendKind::Postgres => {
                let connect =
                    PgConnectOptions::from_str(url).map_err(|_| ConnectError::UnsupportedUrl)?;
                let pool = PgPoolOptions::new()
                    .max_connections(options.max_connections)
                    .acquire_timeout(options.acquire_timeout)
                    .connect_with(connect)
                    .await?;
                Self::Postgres(pool)
            }
        })
    }

    pub fn kind(&self) -> BackendKind {
        match self {
            Self::Sqlite(_) => BackendKind::Sqlite,
            Self::Postgres(_) => BackendKind::Postgres,
        }
    }

    /// Runs a trivial query and reports how long the round trip took.
    pub async fn ping(&self) -> Result<Duration, sqlx::Error> {
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
