//! Opening a transaction that will write.

use sqlx::{
    Connection, PgConnection, PgPool, Postgres, Sqlite, SqliteConnection, SqlitePool, Transaction,
};

/// A pool that can open a transaction meant to write, correctly for its backend.
pub trait WritePool {
    type Database: sqlx::Database;

    /// Begins a transaction that will write. On SQLite it is `BEGIN IMMEDIATE`, which takes
    /// the write lock up front: a deferred transaction that reads first fails at its first
    /// write ("database is locked") instead of waiting out the busy timeout.
    fn begin_write(
        &self,
    ) -> impl Future<Output = Result<Transaction<'static, Self::Database>, sqlx::Error>> + Send;
}

impl WritePool for SqlitePool {
    type Database = Sqlite;

    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl WritePool for PgPool {
    type Database = Postgres;

    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        self.begin().await
    }
}

/// The same as [`WritePool`] on a connection already taken from the pool, for a caller that
/// must decide the connection's fate itself (close it rather than return it to the pool).
pub trait WriteConnection {
    type Database: sqlx::Database;

    /// Begins a transaction that will write, as [`WritePool::begin_write`] does.
    fn begin_write(
        &mut self,
    ) -> impl Future<Output = Result<Transaction<'_, Self::Database>, sqlx::Error>> + Send;
}

impl WriteConnection for SqliteConnection {
    type Database = Sqlite;

    async fn begin_write(&mut self) -> Result<Transaction<'_, Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl WriteConnection for PgConnection {
    type Database = Postgres;

    async fn begin_write(&mut self) -> Result<Transaction<'_, Postgres>, sqlx::Error> {
        self.begin().await
    }
}
