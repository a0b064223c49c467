//! Enqueueing inside a caller's transaction: [`enqueue_in`] inserts, and the [`Enqueued`] it
//! returns says what must follow the commit ([`Queue::after_commit`](crate::Queue::after_commit)).

use sqlx::{PgConnection, SqliteConnection};
use time::OffsetDateTime;

use crate::NewJob;
use crate::sql;

/// Jobs a transaction inserted, and so what must happen once it commits: this process's
/// workers woken, the jobs counted. Hand it to [`Queue::after_commit`](crate::Queue::after_commit); dropping it instead
/// leaves local workers waiting for their next poll.
#[derive(Debug, Default)]
#[must_use = "pass it to Queue::after_commit once the transaction has committed"]
pub struct Enqueued {
    pub(crate) inserted: usize,
    /// Jobs asked for, by kind (a job whose unique key existed is counted too).
    pub(crate) kinds: Vec<(String, u64)>,
}

impl Enqueued {
    /// `jobs` were asked for and `inserted` of them were new.
    pub(crate) fn new(jobs: &[NewJob], inserted: usize) -> Self {
        let mut kinds: Vec<(String, u64)> = Vec::new();
        for job in jobs {
            match kinds.iter_mut().find(|(kind, _)| *kind == job.kind) {
                Some((_, n)) => *n += 1,
                None => kinds.push((job.kind.clone(), 1)),
            }
        }
        Self { inserted, kinds }
    }

    /// Both sets of jobs, as one.
    pub fn and(mut self, other: Enqueued) -> Self {
        self.inserted += other.inserted;
        for (kind, n) in other.kinds {
            match self.kinds.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, m)) => *m += n,
                None => self.kinds.push((kind, n)),
            }
        }
        self
    }
}

/// A connection that can insert jobs: SQLite's or PostgreSQL's, inside an open transaction.
pub trait InsertJobs: Send {
    /// Inserts `jobs`; returns the ids of those inserted (one whose unique key exists is
    /// skipped).
    fn insert_jobs(
        &mut self,
        jobs: &[NewJob],
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<Vec<i64>, sqlx::Error>> + Send;
}

impl InsertJobs for SqliteConnection {
    async fn insert_jobs(
        &mut self,
        jobs: &[NewJob],
        now: OffsetDateTime,
    ) -> Result<Vec<i64>, sqlx::Error> {
        sql::insert_jobs_sqlite(self, jobs, now).await
    }
}

impl InsertJobs for PgConnection {
    async fn insert_jobs(
        &mut self,
        jobs: &[NewJob],
        now: OffsetDateTime,
    ) -> Result<Vec<i64>, sqlx::Error> {
        sql::insert_jobs_postgres(self, jobs, now).await
    }
}

/// Inserts `jobs` inside the caller's open transaction; once it commits, hand what this
/// returns to [`Queue::after_commit`](crate::Queue::after_commit).
pub async fn enqueue_in<C: InsertJobs>(
    conn: &mut C,
    jobs: &[NewJob],
    now: OffsetDateTime,
) -> Result<Enqueued, sqlx::Error> {
    if jobs.is_empty() {
        return Ok(Enqueued::default());
    }
    let ids = conn.insert_jobs(jobs, now).await?;
    Ok(Enqueued::new(jobs, ids.len()))
}
