//! Migrations embedded in the binary, as the storage and the queue each keep theirs: a list of
//! (version, description, SQL) made into a sqlx [`Migrator`], recorded in a table of its own
//! so that each list is versioned apart.

use std::borrow::Cow;

use sqlx::SqlSafeStr;
use sqlx::migrate::{MigrateError, Migration, MigrationType, Migrator};

use crate::Db;

/// One migration: its version, a short description and its SQL.
pub type Embedded = (i64, &'static str, &'static str);

/// The migrator of `embedded`, recorded in the table `table`. A migration whose SQL starts
/// with `-- no-transaction` runs outside a transaction, as sqlx's own files say it
/// (`CREATE INDEX CONCURRENTLY` must).
pub fn migrator(embedded: &[Embedded], table: &'static str) -> Migrator {
    let mut migrator = Migrator::with_migrations(
        embedded
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    sql.starts_with("-- no-transaction"),
                )
            })
            .collect(),
    );
    migrator.dangerous_set_table_name(table);
    migrator
}

/// Applies the migrations of the backend `db` is on that it has not applied yet.
pub async fn run(
    db: &Db,
    sqlite: &[Embedded],
    postgres: &[Embedded],
    table: &'static str,
) -> Result<(), MigrateError> {
    match db {
        Db::Sqlite(pool) => migrator(sqlite, table).run(pool).await,
        Db::Postgres(pool) => migrator(postgres, table).run(pool).await,
    }
}
