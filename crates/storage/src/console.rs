//! What the operator's console keeps and reads beyond the API's own queries: its sessions
//! (only a digest of each cookie's token is stored), the audit log of every action taken in
//! it, schedule pauses, and the few figures of its overview and order pages.

use orderly_db::{SCHEDULE_PAUSES, Timestamp, WritePool};
use orderly_domain::{Order, OrderId, OrderStatus, PageLimit, Role};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::api_keys::parse_role;
use crate::{Store, StoreError, with_pool};

/// A session about to begin.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// SHA-256 of the cookie's token.
    pub token_hash: [u8; 32],
    pub key_id: Uuid,
    pub csrf_token: String,
    pub address: Option<String>,
    pub expires_at: OffsetDateTime,
}

/// A live session: its key is not revoked and it has not expired.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    pub key_id: Uuid,
    pub key_name: String,
    pub role: Role,
    pub csrf_token: String,
    pub expires_at: OffsetDateTime,
}

/// An action to record in the audit log.
#[derive(Debug, Clone)]
pub struct NewAuditEntry<'a> {
    pub key_id: Option<Uuid>,
    pub address: Option<&'a str>,
    /// What was done: `order.cancel`, `job.retry`, `queue.pause`, `session.sign_in`, …
    pub action: &'a str,
    /// What it was done to: `order:<id>`, `job:<id>`, `queue:<name>`, …
    pub target: &'a str,
    pub detail: Option<&'a str>,
}

/// An entry of the audit log.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub id: i64,
    pub at: OffsetDateTime,
    pub key_id: Option<Uuid>,
    pub address: Option<String>,
    pub action: String,
    pub target: String,
    pub detail: Option<String>,
}

/// The console's order search: newest first.
#[derive(Debug, Clone, Default)]
pub struct OrderSearch {
    pub status: Option<OrderStatus>,
    pub email: Option<String>,
    /// Created at or after this instant.
    pub from: Option<OffsetDateTime>,
    /// Created before this instant.
    pub until: Option<OffsetDateTime>,
    /// Orders older than this one (the previous page's last).
    pub before: Option<OrderId>,
    pub limit: PageLimit,
}

/// An event of one order, as its history shows it.
#[derive(Debug, Clone)]
pub struct OrderEvent {
    pub id: Uuid,
    pub kind: String,
    /// What the event says (its `actor` among it).
    pub payload: serde_json::Value,
    pub created_at: OffsetDateTime,
}

/// The events an order's history shows at most: far more than an order's life makes.
pub const HISTORY_LIMIT: i64 = 500;

/// The smallest UUIDv7 of the millisecond `at`: order ids are UUIDv7, taken when the order
/// is created, so a range of creation times is a range of ids (the primary key's).
fn first_id_at(at: OffsetDateTime) -> Uuid {
    let ms = (at.unix_timestamp_nanos() / 1_000_000).max(0) as u64;
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    bytes[6] = 0x70;
    bytes[8] = 0x80;
    Uuid::from_bytes(bytes)
}

impl Store {
    /// Begins a session, and deletes the expired ones.
    pub async fn create_console_session(&self, new: &NewSession) -> Result<(), StoreError> {
        let now = Timestamp::new(orderly_domain::now());
        with_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query("DELETE FROM console_sessions WHERE expires_at < $1")
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO console_sessions (token_hash, key_id, csrf_token, address, \
                 created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(new.token_hash.as_slice())
                .bind(new.key_id)
                .bind(&new.csrf_token)
                .bind(new.address.as_deref())
                .bind(now)
                .bind(Timestamp::new(new.expires_at))
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        })?;
        Ok(())
    }

    /// The live session whose token has this digest.
    pub async fn console_session(
        &self,
        token_hash: &[u8; 32],
    ) -> Result<Option<ConsoleSession>, StoreError> {
        let now = Timestamp::new(orderly_domain::now());
        let row: Option<(Uuid, String, String, String, Timestamp)> = with_pool!(self, pool => sqlx::query_as(
                "SELECT s.key_id, k.name, k.role, s.csrf_token, s.expires_at \
                 FROM console_sessions s JOIN api_keys k ON k.id = s.key_id \
                 WHERE s.token_hash = $1 AND s.expires_at > $2 AND k.revoked_at IS NULL")
            .bind(token_hash.as_slice())
            .bind(now)
            .fetch_optional(pool)
            .await)?;
        row.map(|(key_id, key_name, role, csrf_token, expires_at)| {
            Ok(ConsoleSession {
                key_id,
                key_name,
                role: parse_role(&role)?,
                csrf_token,
                expires_at: expires_at.get(),
            })
        })
        .transpose()
    }

    /// Ends the session whose token has this digest.
    pub async fn end_console_session(&self, token_hash: &[u8; 32]) -> Result<(), StoreError> {
        with_pool!(self, pool => sqlx::query("DELETE FROM console_sessions WHERE token_hash = $1")
            .bind(token_hash.as_slice())
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Appends an entry to the audit log.
    pub async fn record_audit(&self, entry: &NewAuditEntry<'_>) -> Result<(), StoreError> {
        let now = Timestamp::new(orderly_domain::now());
        with_pool!(self, pool => sqlx::query(
                "INSERT INTO audit_log (at, key_id, address, action, target, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(now)
            .bind(entry.key_id)
            .bind(entry.address)
            .bind(entry.action)
            .bind(entry.target)
            .bind(entry.detail)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// A page of the audit log, newest first, older than entry `before` when given.
    pub async fn audit_log(
        &self,
        before: Option<i64>,
        limit: PageLimit,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        type Row = (
            i64,
            Timestamp,
            Option<Uuid>,
            Option<String>,
            String,
            String,
            Option<String>,
        );
        let rows: Vec<Row> = with_pool!(self, pool => sqlx::query_as(
                "SELECT id, at, key_id, address, action, target, detail FROM audit_log \
                 WHERE id < $1 ORDER BY id DESC LIMIT $2")
            .bind(before.unwrap_or(i64::MAX))
            .bind(i64::from(limit.get()))
            .fetch_all(pool)
            .await)?;
        Ok(rows
            .into_iter()
            .map(
                |(id, at, key_id, address, action, target, detail)| AuditEntry {
                    id,
                    at: at.get(),
                    key_id,
                    address,
                    action,
                    target,
                    detail,
                },
            )
            .collect())
    }

    /// A page of the console's order search, newest first, with the orders' lines.
    pub async fn search_orders(&self, search: &OrderSearch) -> Result<Vec<Order>, StoreError> {
        let before = search
            .before
            .map(|id| id.as_uuid())
            .or(search.until.map(first_id_at))
            .unwrap_or(Uuid::max());
        let ids: Vec<Uuid> = with_pool!(self, pool => {
            let mut query = sqlx::QueryBuilder::new("SELECT id FROM orders WHERE id < ");
            query.push_bind(before);
            if let Some(from) = search.from {
                query.push(" AND id >= ").push_bind(first_id_at(from));
            }
            if let Some(status) = search.status {
                query.push(" AND status = ").push_bind(status.as_str());
            }
            if let Some(email) = search.email.as_deref() {
                query.push(" AND email = ").push_bind(email);
            }
            query.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(search.limit.get()));
            query.build_query_scalar::<Uuid>().fetch_all(pool).await
        })?;
        let ids: Vec<OrderId> = ids.into_iter().map(OrderId::from_uuid).collect();
        Ok(self
            .orders_by_ids(&ids)
            .await?
            .into_iter()
            .flatten()
            .collect())
    }

    /// The events of one order, oldest first.
    pub async fn order_events(&self, order: OrderId) -> Result<Vec<OrderEvent>, StoreError> {
        type Row = (
            Uuid,
            String,
            sqlx::types::Json<serde_json::Value>,
            Timestamp,
        );
        let rows: Vec<Row> = with_pool!(self, pool => sqlx::query_as(
                "SELECT id, type, payload, created_at FROM events WHERE subject_id = $1 \
                 ORDER BY created_at, id LIMIT $2")
            .bind(order.as_uuid())
            .bind(HISTORY_LIMIT)
            .fetch_all(pool)
            .await)?;
        Ok(rows
            .into_iter()
            .map(|(id, kind, payload, created_at)| OrderEvent {
                id,
                kind,
                payload: payload.0,
                created_at: created_at.get(),
            })
            .collect())
    }

    /// Orders created since `since` (a range of the primary key: ids are UUIDv7).
    pub async fn count_orders_since(&self, since: OffsetDateTime) -> Result<i64, StoreError> {
        Ok(with_pool!(self, pool => sqlx::query_scalar(
                "SELECT COUNT(*) FROM orders WHERE id >= $1")
            .bind(first_id_at(since))
            .fetch_one(pool)
            .await)?)
    }

    /// Orders created from `from` to before `to` (a range of the primary key).
    pub async fn count_orders_between(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<i64, StoreError> {
        Ok(with_pool!(self, pool => sqlx::query_scalar(
                "SELECT COUNT(*) FROM orders WHERE id >= $1 AND id < $2")
            .bind(first_id_at(from))
            .bind(first_id_at(to))
            .fetch_one(pool)
            .await)?)
    }

    /// Jobs discarded since `since` (on the partial index of discarded jobs).
    pub async fn count_discarded_since(&self, since: OffsetDateTime) -> Result<i64, StoreError> {
        Ok(with_pool!(self, pool => sqlx::query_scalar(
                "SELECT COUNT(*) FROM jobs WHERE state = 'discarded' AND finished_at >= $1")
            .bind(Timestamp::new(since))
            .fetch_one(pool)
            .await)?)
    }

    /// Webhook endpoints that are disabled, and all of them.
    pub async fn count_disabled_webhooks(&self) -> Result<(i64, i64), StoreError> {
        Ok(with_pool!(self, pool => sqlx::query_as(
                "SELECT COUNT(*) FILTER (WHERE disabled_at IS NOT NULL), COUNT(*) \
                 FROM webhook_endpoints")
            .fetch_one(pool)
            .await)?)
    }

    /// Pauses schedule `name` (its ticks are skipped); `false` when it was paused already.
    pub async fn pause_schedule(&self, name: &str, by: &str) -> Result<bool, StoreError> {
        Ok(SCHEDULE_PAUSES
            .pause(&self.db, name, by, orderly_domain::now())
            .await?)
    }

    /// Resumes schedule `name`; `false` when it was not paused.
    pub async fn resume_schedule(&self, name: &str) -> Result<bool, StoreError> {
        Ok(SCHEDULE_PAUSES.resume(&self.db, name).await?)
    }

    /// The paused schedules, by name.
    pub async fn paused_schedules(&self) -> Result<Vec<orderly_db::Pause>, StoreError> {
        Ok(SCHEDULE_PAUSES.list(&self.db).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_id_of_a_millisecond_sorts_before_every_id_made_in_it() {
        let at = time::macros::datetime!(2026-12-03 12:00:00.123 UTC);
        let first = first_id_at(at);
        assert_eq!(first.get_version_num(), 7);
        let ts = first.get_timestamp().unwrap().to_unix();
        assert_eq!((ts.0, ts.1 / 1_000_000), (at.unix_timestamp() as u64, 123));
        let later = first_id_at(at + time::Duration::milliseconds(1));
        assert!(first < later);
    }
}
