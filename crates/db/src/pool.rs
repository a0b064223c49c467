//! [`Db`]: the connection pool, to SQLite or PostgreSQL as the URL says.

use std::str::FromStr;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

/// How long a PostgreSQL connection may take to answer [`check_primary`] before it is
/// dropped as dead (a half-open connection to a lost node answers never).
const PRIMARY_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

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
    /// How long a caller waits for a connection before the call fails. It bounds opening a
    /// new connection too (TCP connect, TLS, authentication, [`check_primary`]).
    pub acquire_timeout: Duration,
    /// What PostgreSQL shows as the sessions' `application_name` (in `pg_stat_activity`),
    /// unless the URL names one.
    pub application_name: &'static str,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
            application_name: "orderly",
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
    ///
    /// On PostgreSQL the pool serves only connections to a writable primary: every new
    /// connection and every idle one handed out is checked with [`check_primary`] (in place
    /// of sqlx's own ping). A connection that fails the check is dropped and another tried
    /// until `acquire_timeout`. The check costs a round trip per checkout (measured: more
    /// than the order path's own statements under load); skipping it for connections used
    /// within the last second let a connection left broken by an outage serve a request after
    /// the database was back (tests/api/database_loss.rs, under CI's load), so it stays until
    /// it can be skipped only while no trouble has been seen. sqlx has neither multi-host URLs
    /// nor `target_session_attrs`, and sets no TCP keepalive (sqlx issue 3540): this check,
    /// the acquire deadline and the order writer's transaction deadline are what keep a caller
    /// off a dead, half-open or demoted server.
    ///
    /// Every session runs with `statement_timeout = 0`, whatever the server, database or role
    /// says: a statement timeout that fires while `COMMIT` waits for the synchronous standby
    /// makes PostgreSQL report success for a commit that is not replicated yet. (Nor is a
    /// commit cancelled from here any other way: sqlx never sends a cancel request, so a
    /// dropped future only stops waiting for the answer.)
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
                // A connection still inside a transaction is not handed out again: SQLite
                // may roll a transaction back by itself on an error (a full disk, an I/O
                // error), the ROLLBACK sqlx then sends fails, and the connection would refuse
                // every later BEGIN ("non-zero transaction depth").
                let pool = SqlitePoolOptions::new()
                    .max_connections(options.max_connections)
                    .acquire_timeout(options.acquire_timeout)
                    .before_acquire(|conn, _| {
                        Box::pin(async move { Ok(!sqlx::Connection::is_in_transaction(conn)) })
                    })
                    .connect_with(connect)
                    .await?;
                Self::Sqlite(pool)
            }
            BackendKind::Postgres => {
                let mut connect = PgConnectOptions::from_str(url)
                    .map_err(|_| ConnectError::UnsupportedUrl)?
                    .options([("statement_timeout", "0")]);
                if connect.get_application_name().is_none() {
                    connect = connect.application_name(options.application_name);
                }
                let pool = PgPoolOptions::new()
                    .max_connections(options.max_connections)
                    .acquire_timeout(options.acquire_timeout)
                    .test_before_acquire(false)
                    .after_connect(|conn, _| Box::pin(check_primary(conn)))
                    .before_acquire(|conn, _| {
                        Box::pin(async move { check_primary(conn).await.map(|()| true) })
                    })
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

    /// Whether a new connection to a writable primary opens within `timeout`, outside the
    /// pool (whose connections may all be busy, which says nothing of the server). An error
    /// the server itself sent means it is there. SQLite is always there.
    pub async fn probe(&self, timeout: Duration) -> Result<(), sqlx::Error> {
        use sqlx::Connection;
        let Self::Postgres(pool) = self else {
            return Ok(());
        };
        let options = pool.connect_options();
        tokio::time::timeout(timeout, async {
            let mut conn = PgConnection::connect_with(&options).await?;
            check_primary(&mut conn).await?;
            conn.close().await
        })
        .await
        .map_err(|_| {
            sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no connection within {timeout:?}"),
            ))
        })?
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

/// Whether `conn` leads to a writable primary that answers within [`PRIMARY_CHECK_TIMEOUT`].
/// A server in recovery is a standby, or a primary demoted by a failover: writes there fail
/// with `25006`. The error is an I/O error, so callers see "database unavailable".
async fn check_primary(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    let in_recovery = tokio::time::timeout(
        PRIMARY_CHECK_TIMEOUT,
        sqlx::query_scalar::<_, bool>("SELECT pg_is_in_recovery()").fetch_one(&mut *conn),
    )
    .await
    .map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("the database did not answer within {PRIMARY_CHECK_TIMEOUT:?}"),
        )
    })??;
    if in_recovery {
        return Err(sqlx::Error::Io(std::io::Error::other(
            "the database server is in recovery (a standby, or a demoted primary): not writable",
        )));
    }
    Ok(())
}
