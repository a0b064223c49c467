//! Deleting what is past its retention without holding up the writers: a thousand rows per
//! statement, and between statements a pause three times as long as the statement took, so
//! that pruning millions of rows takes at most about a quarter of the database's write time
//! (with a pause as long as the statement, orders on SQLite fell to 40% of their rate while
//! a backlog of a million rows was pruned: `bench/growth.sh`). One
//! `DELETE` of millions of rows would hold SQLite's only write lock for its whole run (every
//! order waiting behind it) and, on PostgreSQL, make one transaction of it all.

use std::time::{Duration, Instant};

use crate::{Db, Timestamp, with_pool};

/// Rows one statement deletes at most.
const PRUNE_BATCH: i64 = 1_000;

/// Runs `statement` (`$1` the cut-off, `$2` the most rows to delete, which it must honour with
/// `LIMIT`) until it deletes fewer than a batch; the rows deleted in all.
pub async fn delete_in_batches(
    db: &Db,
    statement: &'static str,
    before: Timestamp,
) -> Result<u64, sqlx::Error> {
    let mut deleted = 0;
    loop {
        let started = Instant::now();
        let done = with_pool!(db, pool => sqlx::query(statement)
            .bind(before)
            .bind(PRUNE_BATCH)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        deleted += done;
        if done < PRUNE_BATCH.unsigned_abs() {
            return Ok(deleted);
        }
        tokio::time::sleep((started.elapsed() * 3).min(Duration::from_secs(1))).await;
    }
}
