//! Whether the database is answering, as requests find out. A request that could not reach
//! the database reports it ([`Store::report_unreachable`]); once a probe confirms it, the
//! database is *away* and the HTTP layer refuses requests at once (`503 unavailable`) instead
//! of letting each wait `database.acquire_timeout` for a connection that will not come: a
//! client gets its answer in microseconds, and a restart's worth of requests does not pile up
//! holding connections. The probe (one per store) opens a connection of its own, outside the
//! pool, every [`PROBE_INTERVAL`] until one opens; then requests go through again. Any
//! successful [`Store::ping`] (`/readyz` runs one) says the same sooner.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::{BackendKind, Store};

/// How often the probe asks while the database is away: requests are refused for at most
/// about this long after it is back.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(250);

/// How long one probe waits for its connection.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
pub(crate) struct Reachability {
    away: AtomicBool,
    probing: AtomicBool,
    /// Successful round trips ([`Store::ping`]): a probe whose attempt failed while one
    /// succeeded does not mark the database away again (its attempt began before the
    /// database came back).
    answered: AtomicU64,
}

impl Store {
    /// Whether the database is known to be away: requests that need it are answered
    /// `503` at once until the probe sees it back.
    pub fn database_away(&self) -> bool {
        self.reachability.away.load(Ordering::Relaxed)
    }

    /// Records that a request could not reach the database, and starts the probe (unless it
    /// runs already), which marks the database away if it cannot open a connection either
    /// and keeps trying until one opens. The probe decides, not the request: a pool timeout
    /// may only mean every connection was busy, and a connection may break (a backend
    /// terminated) while the server is there. SQLite is a file: it is never away.
    pub fn report_unreachable(&self) {
        if self.kind() == BackendKind::Sqlite {
            return;
        }
        if self.reachability.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let store = self.clone();
        tokio::spawn(async move {
            let since = Instant::now();
            loop {
                let answered = store.reachability.answered.load(Ordering::Acquire);
                match store.db.probe(PROBE_TIMEOUT).await {
                    Err(error)
                        if orderly_db::is_unavailable(&error)
                            && store.reachability.answered.load(Ordering::Acquire) == answered =>
                    {
                        store.set_away(true);
                        tokio::time::sleep(PROBE_INTERVAL).await;
                    }
                    _ => break,
                }
            }
            store.reachability.probing.store(false, Ordering::Release);
            if store.set_away(false) {
                tracing::info!(
                    away_ms = since.elapsed().as_millis() as u64,
                    "the database answers again"
                );
            }
        });
    }

    /// Records a successful round trip: the database is not away.
    pub(crate) fn database_answered(&self) {
        self.reachability.answered.fetch_add(1, Ordering::AcqRel);
        if self.set_away(false) {
            tracing::info!("the database answers again");
        }
    }

    /// Sets whether the database is away; whether that changed anything.
    pub(crate) fn set_away(&self, away: bool) -> bool {
        if self.reachability.away.swap(away, Ordering::Relaxed) == away {
            return false;
        }
        metrics::gauge!("orderly_database_away").set(if away { 1.0 } else { 0.0 });
        if away {
            tracing::warn!(
                "the database cannot be reached: answering 503 at once until a connection \
                 opens (trying every {PROBE_INTERVAL:?})"
            );
        }
        true
    }
}

/// Whether `error` (or one of its causes) says the database could not be reached.
pub fn is_unreachable(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(e) = e.downcast_ref::<sqlx::Error>() {
            return orderly_db::is_unavailable(e);
        }
        current = e.source();
    }
    false
}
