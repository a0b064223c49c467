//! What the fleet did minute by minute over the last hours, for the console's charts: a
//! bounded rollup (`activity_minutes`, one row per series per minute, rows older than
//! [`KEPT`] deleted as new ones are written) rather than a scan of the orders or the jobs at
//! every page view.
//!
//! Series are named by what they count: `orders`, `completed:<queue>`, `failed:<queue>`,
//! `waiting:<queue>`, `limit:<scope>:<name>`. Counts of runs are added by each worker from its
//! own tally ([`count_run`], kept in memory between two samples); figures the database holds
//! (orders, waiting jobs, a limit's use) are written as the larger of what the fleet's workers
//! saw that minute.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use orderly_db::{Db, Timestamp, WritePool, with_pool};
use time::OffsetDateTime;

use crate::{Queue, QueueError};

/// How long rows are kept: the charts show the last hour; the rest is slack.
pub const KEPT: time::Duration = time::Duration::hours(2);
/// Distinct series a process tallies between two samples; a run past it is not charted (the
/// series are queues' names, bounded by configuration, so this is never reached in practice).
const MOST_SERIES: usize = 256;

/// Runs finished in this process since the last sample: (series, minute) → count.
static TALLY: Mutex<BTreeMap<(String, i64), f64>> = Mutex::new(BTreeMap::new());

/// The minute `at` falls in, as Unix seconds.
fn minute_of(at: OffsetDateTime) -> i64 {
    at.unix_timestamp().div_euclid(60) * 60
}

/// Counts one run of a job of `queue` that ended now, `failed` or not.
pub fn count_run(queue: &str, failed: bool) {
    let series = if failed { "failed" } else { "completed" };
    let key = (
        format!("{series}:{queue}"),
        minute_of(orderly_domain::now()),
    );
    let mut tally = TALLY.lock().unwrap_or_else(PoisonError::into_inner);
    if tally.len() < MOST_SERIES || tally.contains_key(&key) {
        *tally.entry(key).or_default() += 1.0;
    }
}

/// One figure of a series for one minute.
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    pub series: String,
    pub minute: OffsetDateTime,
    pub value: f64,
}

const ADD_POSTGRES: &str = "INSERT INTO activity_minutes (series, minute, value) \
     VALUES ($1, $2, $3) ON CONFLICT (series, minute) \
     DO UPDATE SET value = activity_minutes.value + excluded.value";
const ADD_SQLITE: &str = ADD_POSTGRES;
const PEAK_POSTGRES: &str = "INSERT INTO activity_minutes (series, minute, value) \
     VALUES ($1, $2, $3) ON CONFLICT (series, minute) \
     DO UPDATE SET value = GREATEST(activity_minutes.value, excluded.value)";
const PEAK_SQLITE: &str = "INSERT INTO activity_minutes (series, minute, value) \
     VALUES ($1, $2, $3) ON CONFLICT (series, minute) \
     DO UPDATE SET value = MAX(activity_minutes.value, excluded.value)";

impl Queue {
    /// Adds this process's tally of runs to the rollup, records `peaks` (series → the figure
    /// now, kept as the minute's largest), and deletes rows past [`KEPT`].
    pub async fn record_activity(&self, peaks: &[(String, f64)]) -> Result<(), QueueError> {
        let now = orderly_domain::now();
        let tally = std::mem::take(&mut *TALLY.lock().unwrap_or_else(PoisonError::into_inner));
        let minute = Timestamp::new(at_minute(minute_of(now)));
        let (add, peak) = match self.db() {
            Db::Sqlite(_) => (ADD_SQLITE, PEAK_SQLITE),
            Db::Postgres(_) => (ADD_POSTGRES, PEAK_POSTGRES),
        };
        with_pool!(self.db(), pool => {
            let mut tx = pool.begin_write().await?;
            for ((series, at), n) in &tally {
                sqlx::query(add).bind(series).bind(Timestamp::new(at_minute(*at))).bind(n)
                    .execute(&mut *tx).await?;
            }
            for (series, value) in peaks {
                sqlx::query(peak).bind(series).bind(minute).bind(value).execute(&mut *tx).await?;
            }
            sqlx::query("DELETE FROM activity_minutes WHERE minute < $1")
                .bind(Timestamp::new(now - KEPT))
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        })?;
        Ok(())
    }

    /// Sets `series` for the minute starting at `minute` to `value` (a figure counted afresh
    /// from the database, such as the minute's orders).
    pub async fn set_activity(
        &self,
        series: &str,
        minute: OffsetDateTime,
        value: f64,
    ) -> Result<(), QueueError> {
        with_pool!(self.db(), pool => sqlx::query(
                "INSERT INTO activity_minutes (series, minute, value) VALUES ($1, $2, $3) \
                 ON CONFLICT (series, minute) DO UPDATE SET value = excluded.value")
            .bind(series)
            .bind(Timestamp::new(minute))
            .bind(value)
            .execute(pool)
            .await
            .map(drop))?;
        Ok(())
    }

    /// Every figure since `since`, oldest first.
    pub async fn activity_since(&self, since: OffsetDateTime) -> Result<Vec<Activity>, QueueError> {
        let rows: Vec<(String, Timestamp, f64)> = with_pool!(self.db(), pool => sqlx::query_as(
                "SELECT series, minute, value FROM activity_minutes WHERE minute >= $1 \
                 ORDER BY minute")
            .bind(Timestamp::new(since))
            .fetch_all(pool)
            .await)?;
        Ok(rows
            .into_iter()
            .map(|(series, minute, value)| Activity {
                series,
                minute: minute.get(),
                value,
            })
            .collect())
    }
}

/// The start of the minute `minute` (Unix seconds).
fn at_minute(minute: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(minute).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The start of the minute `at` falls in.
pub fn minute_start(at: OffsetDateTime) -> OffsetDateTime {
    at_minute(minute_of(at))
}

/// `rows` of `series` as one value per minute over the `minutes` minutes up to `now`'s
/// (zero where nothing was written), oldest first.
pub fn per_minute(rows: &[Activity], series: &str, now: OffsetDateTime, minutes: i64) -> Vec<f64> {
    let last = minute_of(now);
    let first = last - (minutes - 1) * 60;
    let mut values = vec![0.0; usize::try_from(minutes).unwrap_or(0)];
    for row in rows.iter().filter(|row| row.series == series) {
        let at = minute_of(row.minute);
        if (first..=last).contains(&at) {
            values[usize::try_from((at - first) / 60).unwrap_or(0)] = row.value;
        }
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_land_in_their_minute_and_gaps_are_zero() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_030).unwrap();
        let row = |series: &str, back: i64, value: f64| Activity {
            series: series.into(),
            minute: minute_start(now) - time::Duration::minutes(back),
            value,
        };
        let rows = [
            row("orders", 0, 7.0),
            row("orders", 2, 3.0),
            row("other", 1, 9.0),
            row("orders", 90, 1.0),
        ];
        assert_eq!(per_minute(&rows, "orders", now, 4), [0.0, 3.0, 0.0, 7.0]);
    }
}
