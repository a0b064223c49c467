//! What can go wrong in the storage layer.

/// A storage failure. The variants a caller can act on are separate; everything else is the
/// driver's error, kept as the source so its cause chain reaches the logs.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Connect(#[from] orderly_db::ConnectError),
    #[error("a product with this sku already exists")]
    SkuTaken,
    #[error("no randomness for a new secret")]
    NoRandomness(#[source] getrandom::Error),
    #[error("a stored API key could not be read")]
    UnknownRole(#[source] orderly_domain::api_key::UnknownRole),
    #[error("the order writer has stopped")]
    WriterStopped,
    /// The order writer's queue is full: the database is not keeping up.
    #[error("the order queue is full")]
    Overloaded,
    #[error("the order batch failed")]
    BatchFailed(#[source] std::sync::Arc<StoreError>),
    /// The connection failed, or the deadline passed, while `COMMIT` ran: the orders may or
    /// may not be committed. Never to be reported as success; a retry with the same
    /// idempotency key settles it.
    #[error("the commit's outcome is unknown")]
    CommitOutcomeUnknown(#[source] sqlx::Error),
    #[error("the order transaction took longer than {0:?}; nothing was committed")]
    WriteTimedOut(std::time::Duration),
    #[error("applying database migrations failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database query failed")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Queue(#[from] orderly_queue::QueueError),
}

/// Whether `error` is the database refusing a duplicate in a unique index.
pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

impl StoreError {
    /// Whether the database could not be reached, so that the caller may answer "try again"
    /// rather than "failed" (see [`orderly_db::is_unavailable`]). A stopped order writer
    /// counts: the process is shutting down.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Database(e) => orderly_db::is_unavailable(e),
            Self::Queue(e) => e.is_unavailable(),
            Self::Connect(orderly_db::ConnectError::Database(e)) => orderly_db::is_unavailable(e),
            Self::WriterStopped | Self::CommitOutcomeUnknown(_) | Self::WriteTimedOut(_) => true,
            Self::BatchFailed(e) => e.is_unavailable(),
            _ => false,
        }
    }

    /// Whether the database refused to write for want of disk space, here or as the cause of
    /// a failed batch (see [`orderly_db::is_storage_full`]).
    pub fn is_storage_full(&self) -> bool {
        match self {
            Self::Database(e) => orderly_db::is_storage_full(e),
            Self::Queue(e) => e.is_storage_full(),
            Self::BatchFailed(e) => e.is_storage_full(),
            _ => false,
        }
    }

    /// Whether a commit's outcome is unknown ([`StoreError::CommitOutcomeUnknown`]), here or
    /// as the cause of a failed batch.
    pub fn is_commit_outcome_unknown(&self) -> bool {
        match self {
            Self::CommitOutcomeUnknown(_) => true,
            Self::BatchFailed(e) => e.is_commit_outcome_unknown(),
            _ => false,
        }
    }
}
