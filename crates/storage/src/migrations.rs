//! The schema migrations, embedded in the binary so that `orderly migrate` needs no files.

use std::borrow::Cow;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

/// One migration: its version, a short description and its SQL.
type Embedded = (i64, &'static str, &'static str);

const SQLITE: &[Embedded] = &[
    (
        1,
        "catalogue",
        include_str!("../migrations/sqlite/0001_catalogue.sql"),
    ),
    (
        2,
        "orders",
        include_str!("../migrations/sqlite/0002_orders.sql"),
    ),
    (
        3,
        "jobs",
        include_str!("../migrations/sqlite/0003_jobs.sql"),
    ),
    (
        4,
        "job trace context",
        include_str!("../migrations/sqlite/0004_job_trace_context.sql"),
    ),
    (
        5,
        "scheduler",
        include_str!("../migrations/sqlite/0005_scheduler.sql"),
    ),
    (
        6,
        "webhooks",
        include_str!("../migrations/sqlite/0006_webhooks.sql"),
    ),
];

const POSTGRES: &[Embedded] = &[
    (
        1,
        "catalogue",
        include_str!("../migrations/postgres/0001_catalogue.sql"),
    ),
    (
        2,
        "orders",
        include_str!("../migrations/postgres/0002_orders.sql"),
    ),
    (
        3,
        "jobs",
        include_str!("../migrations/postgres/0003_jobs.sql"),
    ),
    (
        4,
        "job trace context",
        include_str!("../migrations/postgres/0004_job_trace_context.sql"),
    ),
    (
        5,
        "scheduler",
        include_str!("../migrations/postgres/0005_scheduler.sql"),
    ),
    (
        6,
        "webhooks",
        include_str!("../migrations/postgres/0006_webhooks.sql"),
    ),
];

fn migrator(embedded: &[Embedded]) -> Migrator {
    Migrator::with_migrations(
        embedded
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

pub(crate) fn sqlite() -> Migrator {
    migrator(SQLITE)
}

pub(crate) fn postgres() -> Migrator {
    migrator(POSTGRES)
}
