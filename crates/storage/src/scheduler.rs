//! What the scheduler keeps in the database: a leader lease, each schedule's last enqueued
//! tick, and the queries of the built-in chores (orders to expire, idempotency records to
//! prune).

use orderly_domain::OrderId;
use time::OffsetDateTime;
use uuid::Uuid;

use orderly_db::Timestamp;

use crate::{Store, StoreError, with_pool};

/// Takes a free or expired lease, or renews one's own; returns the holder when it did.
const TAKE_LEASE: &str = "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
                          ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
                          expires_at = excluded.expires_at \
                          WHERE leases.expires_at < $4 OR leases.holder = excluded.holder \
                          RETURNING holder";

impl Store {
    /// Takes or renews the lease `name` for `holder` until `until`; `true` when `holder`
    /// holds it (it was free, expired, or already `holder`'s).
    pub async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let now = Timestamp::new(orderly_domain::now());
        let held: Option<String> = with_pool!(self, pool => sqlx::query_scalar(TAKE_LEASE)
            .bind(name)
            .bind(holder)
            .bind(Timestamp::new(until))
            .bind(now)
            .fetch_optional(pool)
            .await)?;
        Ok(held.as_deref() == Some(holder))
    }

    /// The last tick enqueued for schedule `name`.
    pub async fn last_tick(&self, name: &str) -> Result<Option<OffsetDateTime>, StoreError> {
        let tick: Option<Timestamp> = with_pool!(self, pool => sqlx::query_scalar(
            "SELECT last_tick FROM schedule_ticks WHERE name = $1")
            .bind(name)
            .fetch_optional(pool)
            .await)?;
        Ok(tick.map(Timestamp::get))
    }

    pub async fn set_last_tick(&self, name: &str, tick: OffsetDateTime) -> Result<(), StoreError> {
        with_pool!(self, pool => sqlx::query(
            "INSERT INTO schedule_ticks (name, last_tick) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET last_tick = excluded.last_tick")
            .bind(name)
            .bind(Timestamp::new(tick))
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Pending orders placed before `cutoff` with nothing captured (an order partly paid is
    /// never expired), oldest first, at most `limit`.
    pub async fn pending_orders_before(
        &self,
        cutoff: OffsetDateTime,
        limit: i64,
    ) -> Result<Vec<OrderId>, StoreError> {
        let ids: Vec<Uuid> = with_pool!(self, pool => sqlx::query_scalar(
            "SELECT id FROM orders WHERE status = 'pending' AND created_at < $1 \
             AND captured = 0 ORDER BY id LIMIT $2")
            .bind(Timestamp::new(cutoff))
            .bind(limit)
            .fetch_all(pool)
            .await)?;
        Ok(ids.into_iter().map(OrderId::from_uuid).collect())
    }

    /// Deletes idempotency records that have expired, in batches that leave the writers room
    /// until `deadline` ([`orderly_db::delete_in_batches`]).
    pub async fn prune_idempotency_keys(
        &self,
        deadline: std::time::Instant,
    ) -> Result<orderly_db::Deleted, StoreError> {
        let now = Timestamp::new(orderly_domain::now());
        let mut pruned = orderly_db::Deleted::default();
        // Order creations' keys, then the keys of changes to orders.
        for expired in [
            "DELETE FROM idempotency_keys WHERE (api_key_id, key) IN \
             (SELECT api_key_id, key FROM idempotency_keys WHERE expires_at < $1 \
             ORDER BY expires_at LIMIT $2)",
            "DELETE FROM order_change_keys WHERE (api_key_id, key) IN \
             (SELECT api_key_id, key FROM order_change_keys WHERE expires_at < $1 \
             ORDER BY expires_at LIMIT $2)",
        ] {
            let deleted = orderly_db::delete_in_batches(&self.db, expired, now, deadline).await?;
            pruned.rows += deleted.rows;
            pruned.cut_short |= deleted.cut_short;
        }
        Ok(pruned)
    }
}
