//! Reading an error with all its causes, and telling an unreachable database from a failed
//! query.

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

/// Whether the database could not be reached at all (no connection to be had, or the
/// connection broke), as opposed to a query that failed: the first is worth a `503` and a
/// retry, the second is not.
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    use sqlx::Error::*;
    matches!(error, PoolTimedOut | PoolClosed | Io(_) | Tls(_))
}
