//! Opening a transaction that will write.

use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};

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
