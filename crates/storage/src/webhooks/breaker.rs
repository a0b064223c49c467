//! Each endpoint's circuit breaker in its row: the rules (`orderly_domain::breaker`) applied
//! under the row's lock, so that every worker sees one state — who may probe, and what an
//! attempt's result makes of it (`attempts.rs` applies that in the transaction recording the
//! attempt).

use orderly_db::WritePool;
use orderly_domain::breaker::{Admission, Breaker, BreakerPolicy};
use time::OffsetDateTime;
use uuid::Uuid;

use super::endpoints::{BreakerRow, breaker_from_row};
use crate::{Store, StoreError, with_pool};

/// Locks the endpoint's row (a write that changes nothing takes the lock on PostgreSQL; SQLite's
/// writer holds its lock already) and reads its breaker: for admitting a delivery
/// (recording an attempt takes the lock with the failure record's update).
const LOCK_BREAKER: &str = "UPDATE webhook_endpoints \
     SET consecutive_failures = consecutive_failures WHERE id = $1 \
     RETURNING breaker_state, consecutive_failures, breaker_opened_at, breaker_probe_at";

/// Writes a breaker: `$1` the endpoint, then its state, failures, opened and probe times.
pub(crate) const SAVE_BREAKER: &str = "UPDATE webhook_endpoints SET breaker_state = $2, \
     consecutive_failures = $3, breaker_opened_at = $4, breaker_probe_at = $5 WHERE id = $1";

/// Binds a breaker to [`SAVE_BREAKER`].
macro_rules! save_breaker {
    ($id:expr, $breaker:expr) => {
        sqlx::query($crate::webhooks::breaker::SAVE_BREAKER)
            .bind($id)
            .bind($breaker.state.as_str())
            .bind(i32::try_from($breaker.consecutive_failures).unwrap_or(i32::MAX))
            .bind($breaker.opened_at.map(orderly_db::Timestamp::new))
            .bind($breaker.probe_at.map(orderly_db::Timestamp::new))
    };
}
pub(crate) use save_breaker;

/// An endpoint's breaker times as read: when it opened, when it may be probed.
pub(crate) type Opened = Option<OffsetDateTime>;
pub(crate) type Probe = Option<OffsetDateTime>;

impl Store {
    /// Whether a delivery to `endpoint` may go at `now` by its breaker; when it may go as the
    /// probe, the breaker records that (half-open), so no other worker probes meanwhile.
    /// `None` when the endpoint is gone.
    pub async fn admit_webhook_delivery(
        &self,
        endpoint: Uuid,
        now: OffsetDateTime,
        policy: &BreakerPolicy,
    ) -> Result<Option<Admission>, StoreError> {
        Ok(with_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let row: Option<BreakerRow> = sqlx::query_as(LOCK_BREAKER)
                .bind(endpoint)
                .fetch_optional(&mut *tx)
                .await?;
            let admission = row.map(|row| breaker_from_row(row).admit(now, policy));
            if let Some(Admission::Probe { breaker }) = &admission {
                save_breaker!(endpoint, breaker).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            admission
        }))
    }

    /// Every endpoint's breaker, for the metrics: id, breaker.
    pub async fn webhook_breakers(&self) -> Result<Vec<(Uuid, Breaker)>, StoreError> {
        let rows: Vec<(Uuid, String, i32, Opened, Probe)> = with_pool!(self, pool => sqlx::query_as(
                "SELECT id, breaker_state, consecutive_failures, breaker_opened_at, \
                 breaker_probe_at FROM webhook_endpoints ORDER BY id LIMIT 10000")
                .fetch_all(pool)
                .await)?;
        Ok(rows
            .into_iter()
            .map(|(id, state, failures, opened, probe)| {
                (id, breaker_from_row((state, failures, opened, probe)))
            })
            .collect())
    }
}
