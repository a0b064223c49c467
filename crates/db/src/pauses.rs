//! Things paused for every process at once: a paused name is a row (name, when, by whom) in
//! its table, so every process sees a pause as soon as it commits and a restart forgets none.
//! Queues and schedules both pause this way, each in a table of its own.

use time::OffsetDateTime;

use crate::{Db, Timestamp, with_pool};

/// A table of pauses: its three statements, written out so that no SQL is built at run time.
#[derive(Debug, Clone, Copy)]
pub struct PauseTable {
    insert: &'static str,
    delete: &'static str,
    select: &'static str,
}

/// Paused job queues (`queue_pauses`, by queue name).
pub const QUEUE_PAUSES: PauseTable = PauseTable {
    insert: "INSERT INTO queue_pauses (queue, paused_at, paused_by) VALUES ($1, $2, $3) \
             ON CONFLICT (queue) DO NOTHING",
    delete: "DELETE FROM queue_pauses WHERE queue = $1",
    select: "SELECT queue, paused_at, paused_by FROM queue_pauses ORDER BY queue",
};

/// Paused schedules (`schedule_pauses`, by schedule name).
pub const SCHEDULE_PAUSES: PauseTable = PauseTable {
    insert: "INSERT INTO schedule_pauses (name, paused_at, paused_by) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
    delete: "DELETE FROM schedule_pauses WHERE name = $1",
    select: "SELECT name, paused_at, paused_by FROM schedule_pauses ORDER BY name",
};

/// What is paused, since when, by whom (an API key id, or `cli`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pause {
    pub name: String,
    pub paused_at: OffsetDateTime,
    pub paused_by: String,
}

impl PauseTable {
    /// Pauses `name` as of `now`; `false` when it was paused already (the first pause is
    /// kept).
    pub async fn pause(
        &self,
        db: &Db,
        name: &str,
        by: &str,
        now: OffsetDateTime,
    ) -> Result<bool, sqlx::Error> {
        with_pool!(db, pool => sqlx::query(self.insert)
            .bind(name)
            .bind(Timestamp::new(now))
            .bind(by)
            .execute(pool)
            .await
            .map(|done| done.rows_affected() > 0))
    }

    /// Resumes `name`; `false` when it was not paused.
    pub async fn resume(&self, db: &Db, name: &str) -> Result<bool, sqlx::Error> {
        with_pool!(db, pool => sqlx::query(self.delete)
            .bind(name)
            .execute(pool)
            .await
            .map(|done| done.rows_affected() > 0))
    }

    /// Everything paused, by name.
    pub async fn list(&self, db: &Db) -> Result<Vec<Pause>, sqlx::Error> {
        let rows: Vec<(String, Timestamp, String)> =
            with_pool!(db, pool => sqlx::query_as(self.select).fetch_all(pool).await)?;
        Ok(rows
            .into_iter()
            .map(|(name, paused_at, paused_by)| Pause {
                name,
                paused_at: paused_at.get(),
                paused_by,
            })
            .collect())
    }
}
