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

/// Whether the database could not be reached at all (no connection to be had, the connection
/// broke, or the server cannot serve it now), as opposed to a query that failed: the first is
/// worth a `503` and a retry, the second is not.
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    use sqlx::Error::*;
    match error {
        PoolTimedOut | PoolClosed | Io(_) | Tls(_) => true,
        Database(e) => e.code().is_some_and(|code| is_unavailable_state(&code)),
        _ => false,
    }
}

/// Whether the database refused a write for want of disk space: SQLite's `SQLITE_FULL` (13),
/// PostgreSQL's `53100 disk_full`. Nothing was written; it is the operator's to fix, and a
/// retry succeeds once space is freed.
pub fn is_storage_full(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(e) => e
            .code()
            .is_some_and(|code| matches!(&*code, "13" | "53100")),
        _ => false,
    }
}

/// PostgreSQL's SQLSTATEs for "this server cannot serve you now": a connection exception
/// (class 08), the server shutting down or crashed (57P01 admin shutdown, which is also what
/// a backend reports when its postmaster dies; 57P02 crash shutdown; 57P03 cannot connect
/// now: starting or in recovery), and a write refused by a read-only server (25006: the
/// primary was demoted in a failover). SQLite's codes are plain numbers and match none.
fn is_unavailable_state(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "25006")
}

#[cfg(test)]
mod tests {
    use super::is_unavailable_state;

    #[test]
    fn failover_states_are_unavailable_and_query_errors_are_not() {
        for code in [
            "08006", "08003", "08001", "57P01", "57P02", "57P03", "25006",
        ] {
            assert!(is_unavailable_state(code), "{code}");
        }
        // unique violation, serialization failure, syntax error, SQLite's busy and locked
        for code in ["23505", "40001", "42601", "5", "517"] {
            assert!(!is_unavailable_state(code), "{code}");
        }
    }
}
