//! What can go wrong in the storage layer.

/// A storage failure. The variants a caller can act on are separate; everything else is the
/// driver's error, kept as the source so its cause chain reaches the logs.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL: expected sqlite://PATH or postgres://…")]
    UnsupportedUrl,
    #[error("a product with this sku already exists")]
    SkuTaken,
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
    #[error("the order writer has stopped")]
    WriterStopped,
    #[error("the order batch failed: {0}")]
    BatchFailed(String),
    #[error("applying database migrations failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database query failed")]
    Database(#[from] sqlx::Error),
}

/// Whether `error` is the database refusing a duplicate in a unique index.
pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// `error` and each of its sources, joined by `: `.
pub fn cause_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    chain
}
