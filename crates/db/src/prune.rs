//! Deleting what is past its retention without holding up the writers: a thousand rows per
//! statement, and between statements a pause as long as the statement took. One `DELETE` of
//! millions of rows would hold SQLite's only write lock for its whole run (every order
//! waiting behind it) and, on PostgreSQL, make one transaction of it all. A run stops at its
//! deadline and leaves the rest for the next: under a steady stream of orders SQLite's writer
//! takes the lock first most of the time, and a backlog of a million rows then takes longer
//! than a job may run (`bench/growth.sh`).

use std::time::{Duration, Instant};

use crate::{Db, Timestamp, with_pool};

/// Rows one statement deletes at most.
const PRUNE_BATCH: i64 = 1_000;

/// What a run of [`delete_in_batches`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deleted {
    pub rows: u64,
    /// The deadline came first: rows past the cut-off may remain.
    pub cut_short: bool,
}

/// Runs `statement` (`$1` the cut-off, `$2` the most rows to delete, which it must honour with
/// `LIMIT`) until it deletes fewer than a batch, or `deadline` passes.
pub async fn delete_in_batches(
    db: &Db,
    statement: &'static str,
    before: Timestamp,
    deadline: Instant,
) -> Result<Deleted, sqlx::Error> {
    let mut deleted = Deleted::default();
    loop {
        if Instant::now() >= deadline {
            deleted.cut_short = true;
            return Ok(deleted);
        }
        let started = Instant::now();
        let done = with_pool!(db, pool => sqlx::query(statement)
            .bind(before)
            .bind(PRUNE_BATCH)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        deleted.rows += done;
        if done < PRUNE_BATCH.unsigned_abs() {
            return Ok(deleted);
        }
        tokio::time::sleep(started.elapsed().min(Duration::from_secs(1))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::sqlite::SqlitePoolOptions;
    use time::macros::datetime;

    /// A database of one connection (`:memory:` is a database per connection) with `rows`
    /// rows dated 2020 and one dated 2030.
    async fn old_rows(rows: i64) -> Db {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        sqlx::raw_sql(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, at TEXT NOT NULL); \
             INSERT INTO t (at) VALUES ('2030-01-01T00:00:00.000000Z');",
        )
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
             INSERT INTO t (at) SELECT '2020-01-01T00:00:00.000000Z' FROM n",
        )
        .bind(rows)
        .execute(&pool)
        .await
        .unwrap();
        Db::Sqlite(pool)
    }

    const OLD: &str = "DELETE FROM t WHERE id IN (SELECT id FROM t WHERE at < $1 LIMIT $2)";

    #[tokio::test]
    async fn deletes_batch_after_batch_until_nothing_is_past_the_cut_off() {
        let db = old_rows(PRUNE_BATCH * 2 + 10).await;
        let cut_off = Timestamp::new(datetime!(2025-01-01 0:00 UTC));
        let far = Instant::now() + Duration::from_secs(60);
        let deleted = delete_in_batches(&db, OLD, cut_off, far).await.unwrap();
        assert_eq!(
            deleted,
            Deleted {
                rows: (PRUNE_BATCH * 2 + 10).unsigned_abs(),
                cut_short: false
            }
        );
        let Db::Sqlite(pool) = &db else {
            unreachable!()
        };
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(left, 1, "the row inside the retention stays");
    }

    #[tokio::test]
    async fn stops_at_the_deadline_and_says_so() {
        let db = old_rows(PRUNE_BATCH * 3).await;
        let cut_off = Timestamp::new(datetime!(2025-01-01 0:00 UTC));
        let deleted = delete_in_batches(&db, OLD, cut_off, Instant::now())
            .await
            .unwrap();
        assert_eq!(
            deleted,
            Deleted {
                rows: 0,
                cut_short: true
            }
        );
    }
}
