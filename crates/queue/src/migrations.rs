//! The queue's schema, its migrations beside its SQL (`crates/queue/migrations`), recorded in
//! a table of their own (`_orderly_queue_migrations`) so that they are versioned apart from the
//! service's. Its first migration is the queue's tables as they stand, every statement
//! conditional, so that it adopts the tables an earlier orderly made with its own migrations.

use orderly_db::Db;
use orderly_db::migrate::Embedded;

/// Where the queue's migrations are recorded.
const TABLE: &str = "_orderly_queue_migrations";

const SQLITE: &[Embedded] = &[
    (
        1,
        "queue",
        include_str!("../migrations/sqlite/0001_queue.sql"),
    ),
    (
        2,
        "fleet",
        include_str!("../migrations/sqlite/0002_fleet.sql"),
    ),
    (
        3,
        "cancel requests",
        include_str!("../migrations/sqlite/0003_cancel_requests.sql"),
    ),
];

const POSTGRES: &[Embedded] = &[
    (
        1,
        "queue",
        include_str!("../migrations/postgres/0001_queue.sql"),
    ),
    (
        2,
        "fleet",
        include_str!("../migrations/postgres/0002_fleet.sql"),
    ),
    (
        3,
        "cancel requests",
        include_str!("../migrations/postgres/0003_cancel_requests.sql"),
    ),
];

/// Applies the queue's migrations `db` has not applied yet.
pub async fn migrate(db: &Db) -> Result<(), sqlx::migrate::MigrateError> {
    orderly_db::migrate::run(db, SQLITE, POSTGRES, TABLE).await
}
