//! What can go wrong in the queue.

use crate::UnknownJobState;

/// A queue failure: the driver's error, kept as the source so its cause chain reaches the
/// logs, or a row the queue cannot read.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the job queue's database query failed")]
    Database(#[from] sqlx::Error),
    #[error("a stored job could not be read")]
    UnknownState(#[from] UnknownJobState),
}

impl QueueError {
    /// Whether the database could not be reached (see [`orderly_db::is_unavailable`]).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Database(e) if orderly_db::is_unavailable(e))
    }

    /// Whether the database's disk is full (see [`orderly_db::is_storage_full`]).
    pub fn is_storage_full(&self) -> bool {
        matches!(self, Self::Database(e) if orderly_db::is_storage_full(e))
    }
}
