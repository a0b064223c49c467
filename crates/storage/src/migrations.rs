//! The service's schema migrations, embedded in the binary so that `orderly migrate` needs no
//! files. The job queue's tables are the queue's: its migrations are in `crates/queue/migrations`
//! and run after these (`orderly_queue::migrate`). This list's migrations 3, 4, 7–9 and 11 on
//! SQLite (3, 4, 7, 8, 10 and 12 on PostgreSQL) created those tables before the queue kept its
//! own; they stay as they were applied (every database that ran them holds their checksums),
//! and the queue's first migration adopts what they made.
//!
//! The rolling-upgrade rule: on PostgreSQL, where processes of the previous version keep
//! running while the new one's migrations apply, every migration only expands the schema (new
//! tables, nullable or defaulted columns, indexes), so the previous version's statements still
//! work against it. Removing or changing what that version uses (a "contract" step) waits for
//! the release after the one that stopped using it, and its file starts with
//! `-- contract: <why it is safe>`. A test below holds every PostgreSQL migration to this.
//! SQLite is one process, upgraded in place, so its migrations may rebuild tables.

use orderly_db::migrate::Embedded;

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
    (
        7,
        "one clock",
        include_str!("../migrations/sqlite/0007_one_clock.sql"),
    ),
    (
        8,
        "growth indexes",
        include_str!("../migrations/sqlite/0008_growth_indexes.sql"),
    ),
    (
        9,
        "due jobs index",
        include_str!("../migrations/sqlite/0009_due_jobs_index.sql"),
    ),
    (
        10,
        "event feed",
        include_str!("../migrations/sqlite/0010_event_feed.sql"),
    ),
    (
        11,
        "operator console",
        include_str!("../migrations/sqlite/0011_operator_console.sql"),
    ),
    (
        12,
        "fulfill spelling",
        include_str!("../migrations/sqlite/0012_fulfill_spelling.sql"),
    ),
    (
        13,
        "order lifecycle",
        include_str!("../migrations/sqlite/0013_order_lifecycle.sql"),
    ),
    (
        14,
        "order returns",
        include_str!("../migrations/sqlite/0014_order_returns.sql"),
    ),
    (
        15,
        "webhook breaker",
        include_str!("../migrations/sqlite/0015_webhook_breaker.sql"),
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
    (
        7,
        "discarded jobs index",
        include_str!("../migrations/postgres/0007_discarded_jobs_index.sql"),
    ),
    (
        8,
        "cancelled jobs index",
        include_str!("../migrations/postgres/0008_cancelled_jobs_index.sql"),
    ),
    (
        9,
        "webhook attempts by age",
        include_str!("../migrations/postgres/0009_webhook_attempts_created_at.sql"),
    ),
    (
        10,
        "due jobs index",
        include_str!("../migrations/postgres/0010_due_jobs_index.sql"),
    ),
    (
        11,
        "event feed",
        include_str!("../migrations/postgres/0011_event_feed.sql"),
    ),
    (
        12,
        "operator console",
        include_str!("../migrations/postgres/0012_operator_console.sql"),
    ),
    (
        13,
        "fulfill spelling",
        include_str!("../migrations/postgres/0013_fulfill_spelling.sql"),
    ),
    (
        14,
        "order lifecycle",
        include_str!("../migrations/postgres/0014_order_lifecycle.sql"),
    ),
    (
        15,
        "order returns",
        include_str!("../migrations/postgres/0015_order_returns.sql"),
    ),
    (
        16,
        "webhook breaker",
        include_str!("../migrations/postgres/0016_webhook_breaker.sql"),
    ),
];

/// The table the service's own migrations are recorded in (sqlx's default name, as every
/// database since the first release has it).
const TABLE: &str = "_sqlx_migrations";

/// Applies the service's migrations `db` has not applied yet, then the queue's (which keeps
/// its own: `orderly_queue::migrate`).
pub(crate) async fn run(db: &orderly_db::Db) -> Result<(), sqlx::migrate::MigrateError> {
    orderly_db::migrate::run(db, SQLITE, POSTGRES, TABLE).await?;
    orderly_queue::migrate(db).await
}

#[cfg(test)]
mod tests {
    use orderly_domain::OrderId;
    use time::OffsetDateTime;
    use time::macros::datetime;
    use uuid::Uuid;

    use super::*;
    use orderly_db::Db;

    use crate::{Store, StoreOptions};

    /// Every time column on SQLite after the one-clock migration.
    const TIME_COLUMNS: &[(&str, &str)] = &[
        ("products", "archived_at"),
        ("products", "created_at"),
        ("products", "updated_at"),
        ("api_keys", "created_at"),
        ("api_keys", "revoked_at"),
        ("orders", "created_at"),
        ("orders", "updated_at"),
        ("orders", "receipt_sent_at"),
        ("events", "created_at"),
        ("idempotency_keys", "created_at"),
        ("idempotency_keys", "expires_at"),
        ("webhook_endpoints", "previous_expires_at"),
        ("webhook_endpoints", "disabled_at"),
        ("webhook_endpoints", "failing_since"),
        ("webhook_endpoints", "created_at"),
        ("webhook_endpoints", "updated_at"),
        ("webhook_attempts", "created_at"),
        ("jobs", "run_at"),
        ("jobs", "locked_until"),
        ("jobs", "created_at"),
        ("jobs", "finished_at"),
        ("leases", "expires_at"),
        ("schedule_ticks", "last_tick"),
    ];

    fn micros(t: OffsetDateTime) -> i64 {
        (t.unix_timestamp_nanos() / 1_000) as i64
    }

    /// Rows as the schema before the one-clock migration had them: times as RFC 3339 text
    /// without trailing zeros, and Unix microseconds in the queue and scheduler tables.
    fn rows_of_the_previous_schema(
        order: Uuid,
        event: Uuid,
        run_at: OffsetDateTime,
        created: OffsetDateTime,
        finished: OffsetDateTime,
    ) -> String {
        format!(
            "INSERT INTO api_keys (id, name, role, prefix, secret_hash, created_at) \
         VALUES (x'{key_hex}', 'k', 'admin', 'oly_', x'02', '2026-11-28T09:00:00Z'); \
         INSERT INTO products (id, sku, name, price, currency, stock, created_at, updated_at) \
         VALUES (x'{product_hex}', 'MUG', 'Mug', 100, 'EUR', 5, '2026-11-28T09:30:00.1Z', \
         '2026-11-28T09:30:00.000001Z'); \
         INSERT INTO orders (id, status, email, name, currency, total, created_by, \
         created_at, updated_at, receipt_sent_at) \
         VALUES (x'{order_hex}', 'pending', 'ana@example.com', 'Ana', 'EUR', 100, x'{key_hex}', \
         '2026-11-28T10:00:01.123456Z', '2026-11-28T10:00:01.12345Z', '2026-11-28T10:00:04Z'); \
         INSERT INTO events (id, type, subject_id, payload, created_at) \
         VALUES (x'{event_hex}', 'order.created', x'{order_hex}', '{{}}', \
         '2026-11-28T10:00:01.12Z'); \
         INSERT INTO jobs (queue, kind, args, state, attempt, max_attempts, run_at, \
         created_at, finished_at) \
         VALUES ('default', 'send_receipt', '{{}}', 'completed', 1, 3, {run_us}, \
         {created_us}, {finished_us}); \
         INSERT INTO leases (name, holder, expires_at) VALUES ('scheduler', 'w', {lease_us}); \
         INSERT INTO schedule_ticks (name, last_tick) VALUES ('prune', {finished_us});",
            key_hex = Uuid::now_v7().simple(),
            product_hex = Uuid::now_v7().simple(),
            order_hex = order.simple(),
            event_hex = event.simple(),
            run_us = micros(run_at),
            lease_us = micros(datetime!(2100-01-01 00:00:00.000001 UTC)),
            created_us = micros(created),
            finished_us = micros(finished),
        )
    }

    /// No time column of the file holds a time in any form but the fixed one.
    async fn every_time_in_the_fixed_form(pool: &sqlx::SqlitePool) {
        for (table, column) in TIME_COLUMNS {
            let statement = format!(
                "SELECT COUNT(*) FROM {table} WHERE {column} IS NOT NULL AND {column} NOT GLOB \
             '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].\
             [0-9][0-9][0-9][0-9][0-9][0-9]Z'"
            );
            let odd: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(statement))
                .fetch_one(pool)
                .await
                .unwrap();
            assert_eq!(odd, 0, "{table}.{column}");
        }
    }

    #[tokio::test]
    async fn a_file_written_by_the_previous_schema_keeps_every_time_through_the_one_clock_migration()
     {
        let dir = std::env::temp_dir().join(format!("orderly-migrate-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("old.db").display());
        let store = Store::connect(&url, &StoreOptions::default())
            .await
            .unwrap();
        let Db::Sqlite(pool) = &store.db else {
            unreachable!("a sqlite:// URL opens SQLite")
        };
        orderly_db::migrate::migrator(&SQLITE[..6], TABLE)
            .run(pool)
            .await
            .unwrap();

        // Rows as the previous code wrote them: RFC 3339 text without trailing zeros in the
        // fraction, and Unix microseconds in the queue and scheduler tables.
        let order = Uuid::now_v7();
        let event = Uuid::now_v7();
        let (run_at, created, finished) = (
            datetime!(2026-11-28 10:00:02.5 UTC),
            datetime!(2026-11-28 10:00:01.123456 UTC),
            datetime!(2026-11-28 10:00:03 UTC),
        );
        let old_rows = rows_of_the_previous_schema(order, event, run_at, created, finished);
        sqlx::raw_sql(sqlx::AssertSqlSafe(old_rows))
            .execute(pool)
            .await
            .unwrap();

        store.migrate().await.unwrap();

        let read = store
            .order_by_id(OrderId::from_uuid(order))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(read.created_at, created);
        assert_eq!(read.updated_at, datetime!(2026-11-28 10:00:01.12345 UTC));
        let job = store.queue().job(1).await.unwrap().unwrap();
        assert_eq!(
            (job.run_at, job.created_at, job.finished_at),
            (run_at, created, Some(finished))
        );
        assert_eq!(
            store.outbox_event(event).await.unwrap().unwrap().created_at,
            datetime!(2026-11-28 10:00:01.12 UTC)
        );
        assert_eq!(store.last_tick("prune").await.unwrap(), Some(finished));
        let product = store
            .list_products(&crate::ProductFilter::default())
            .await
            .unwrap();
        assert_eq!(product[0].created_at, datetime!(2026-11-28 09:30:00.1 UTC));
        // The lease is held until it was.
        let until = datetime!(2100-01-02 0:00 UTC);
        assert!(
            !store
                .acquire_lease("scheduler", "other", until)
                .await
                .unwrap()
        );
        let expires: String = sqlx::query_scalar("SELECT expires_at FROM leases")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(expires, "2100-01-01T00:00:00.000001Z");

        // Every time, old and new, is in the one fixed form.
        every_time_in_the_fixed_form(pool).await;
        store.close().await;
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// What in one migration could break the previous version's statements, unless the file
    /// says it is a contract step.
    fn breaks_previous_version(sql: &str) -> Vec<String> {
        if sql.trim_start().starts_with("-- contract:") {
            return Vec::new();
        }
        let code: String = sql
            .lines()
            .map(|line| line.split("--").next().unwrap_or_default())
            .collect::<Vec<_>>()
            .join(" ");
        let mut found = Vec::new();
        for statement in code.split(';') {
            let words = statement.split_whitespace().collect::<Vec<_>>().join(" ");
            let upper = words.to_uppercase();
            let has = |phrase: &str| upper.contains(phrase);
            let breaking = has("DROP TABLE")
                || has("DROP COLUMN")
                || has("RENAME")
                || has("TRUNCATE")
                || (has("ALTER COLUMN") && (has(" TYPE ") || has("SET NOT NULL")))
                || (has("ADD COLUMN") && has("NOT NULL") && !has("DEFAULT"));
            if breaking {
                found.push(words);
            }
        }
        found
    }

    #[test]
    fn every_postgres_migration_leaves_the_previous_version_working() {
        for &(version, description, sql) in POSTGRES {
            let found = breaks_previous_version(sql);
            assert!(
                found.is_empty(),
                "migration {version} ({description}) would break the processes of the previous \
                 version still running during a rollout: {found:?}. Expand now and contract in a \
                 later release (see this module's documentation)."
            );
        }
    }

    #[test]
    fn the_expand_only_check_finds_what_breaks_old_code() {
        for breaking in [
            "ALTER TABLE orders DROP COLUMN email;",
            "ALTER TABLE orders RENAME COLUMN email TO mail;",
            "alter table orders alter column total type numeric;",
            "ALTER TABLE orders ALTER COLUMN note SET NOT NULL;",
            "ALTER TABLE orders ADD COLUMN note text NOT NULL;",
            "DROP TABLE events;",
        ] {
            assert_eq!(breaks_previous_version(breaking).len(), 1, "{breaking}");
        }
        for fine in [
            "ALTER TABLE orders ADD COLUMN note text; -- DROP COLUMN in a comment",
            "ALTER TABLE orders ADD COLUMN note text NOT NULL DEFAULT '';",
            "CREATE INDEX orders_email ON orders (email); DROP INDEX jobs_old;",
            "-- contract: 0.3 stopped reading note\nALTER TABLE orders DROP COLUMN note;",
        ] {
            assert!(breaks_previous_version(fine).is_empty(), "{fine}");
        }
    }
}

/// The queue keeping its own schema: a database migrated by the code before it (the
/// service's migrations alone, which made the job tables) upgrades in place, its jobs kept,
/// and ends with the same job tables as one the queue's migrations made from nothing.
#[cfg(test)]
mod queue_schema {
    use orderly_db::{Db, DbOptions};
    use orderly_queue::{Completed, Finished, JobState, Outcome, Queue};
    use orderly_testing::{Backend, TestDatabase, on_both_backends};

    use super::*;

    async fn database(backend: Backend) -> Option<(TestDatabase, Db)> {
        let (database, url) = TestDatabase::create(backend).await?;
        Some((
            database,
            Db::connect(&url, &DbOptions::default()).await.unwrap(),
        ))
    }

    /// Each job table's columns, indexes, checks and triggers, as the catalogue says them.
    async fn job_tables(db: &Db) -> Vec<String> {
        let statement = match db {
            Db::Sqlite(_) => {
                "SELECT m.name || ' ' || p.name || ' ' || p.type || ' ' || p.\"notnull\" || ' ' \
                 || COALESCE(p.dflt_value, '-') || ' ' || p.pk FROM sqlite_master m, \
                 pragma_table_info(m.name) p WHERE m.name IN ('jobs', 'queue_pauses', \
                 'worker_heartbeats') UNION ALL SELECT sql FROM sqlite_master WHERE type = 'index' \
                 AND tbl_name IN ('jobs', 'queue_pauses', 'worker_heartbeats') AND sql IS NOT NULL"
            }
            Db::Postgres(_) => {
                "SELECT table_name || ' ' || column_name || ' ' || data_type || ' ' || is_nullable \
                 || ' ' || COALESCE(column_default, '-') || ' ' || is_identity FROM \
                 information_schema.columns WHERE table_name IN ('jobs', 'queue_pauses', \
                 'worker_heartbeats') UNION ALL SELECT indexdef FROM pg_indexes WHERE tablename \
                 IN ('jobs', 'queue_pauses', 'worker_heartbeats') UNION ALL SELECT \
                 pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'jobs'::regclass \
                 UNION ALL SELECT tgname || ' ' || tgfoid::regproc::text FROM pg_trigger WHERE \
                 tgrelid = 'jobs'::regclass AND NOT tgisinternal"
            }
        };
        let mut rows: Vec<String> = orderly_db::with_pool!(db, pool => {
            sqlx::query_scalar(statement).fetch_all(pool).await
        })
        .unwrap();
        rows.sort();
        rows
    }

    on_both_backends! {
        async fn a_database_migrated_before_the_queue_kept_its_schema_upgrades_with_its_jobs(backend) {
            let Some((_old, db)) = database(backend).await else { return };
            // The code before: the service's migrations alone made the job tables.
            orderly_db::migrate::run(&db, SQLITE, POSTGRES, TABLE).await.unwrap();
            let queue = Queue::new(db.clone());
            // Two jobs as that code enqueued them, one of them running (its statements).
            let lease = orderly_domain::now() + time::Duration::minutes(1);
            let at = orderly_db::Timestamp::new(orderly_domain::now());
            let mut ids = Vec::new();
            for _ in 0..2 {
                let id: i64 = orderly_db::with_pool!(&db, pool => {
                    sqlx::query_scalar(
                        "INSERT INTO jobs (queue, kind, args, state, priority, max_attempts, \
                         run_at, created_at) VALUES ('default', 'noop', '{}', 'available', 5, 3, \
                         $1, $1) RETURNING id")
                        .bind(at)
                        .fetch_one(pool)
                        .await
                })
                .unwrap();
                ids.push(id);
            }
            orderly_db::with_pool!(&db, pool => {
                sqlx::query("UPDATE jobs SET state = 'running', attempt = 1, locked_by = 'old', \
                             locked_until = $1 WHERE id = $2")
                    .bind(orderly_db::Timestamp::new(lease))
                    .bind(ids[0])
                    .execute(pool)
                    .await
                    .map(drop)
            })
            .unwrap();

            // This code, twice: the second run finds nothing to do.
            run(&db).await.unwrap();
            run(&db).await.unwrap();
            let recorded: i64 = orderly_db::with_pool!(&db, pool => {
                sqlx::query_scalar("SELECT COUNT(*) FROM _orderly_queue_migrations")
                    .fetch_one(pool)
                    .await
            })
            .unwrap();
            assert_eq!(recorded, 3, "the queue's migrations, each once");
            // The job running across the upgrade finishes; the waiting one is fetched.
            let finished = Finished {
                id: ids[0],
                attempt: 1,
                outcome: Outcome::Completed,
            };
            queue.finish_jobs("old", &[finished], Completed::Kept).await.unwrap();
            assert_eq!(queue.job(ids[0]).await.unwrap().unwrap().state, JobState::Completed);
            let next = queue.fetch_jobs("default", "new", 5, lease).await.unwrap();
            assert_eq!(next.len(), 1);
            assert!(ids.contains(&next[0].id));

            // The same job tables as the queue's migrations make on their own.
            let Some((_fresh, fresh)) = database(backend).await else { return };
            orderly_queue::migrate(&fresh).await.unwrap();
            let (upgraded, made) = (job_tables(&db).await, job_tables(&fresh).await);
            assert!(upgraded.len() > 20, "{upgraded:?}");
            assert_eq!(upgraded, made);
        }
    }
}
