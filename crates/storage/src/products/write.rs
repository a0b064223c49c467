//! The catalogue's writes, each in one transaction with its events: `product.created`,
//! `product.updated` (the product as it now stands and the previous value of each field that
//! changed) and `product.stock_adjusted` (the stock before and after, the difference and the
//! reason given), each naming its actor and queued for the webhooks subscribed to it. The
//! product's row is locked before it is read (PostgreSQL's `FOR UPDATE`; SQLite's write
//! transaction holds the whole database), so the difference an adjustment records is exact
//! even while orders reserve the same stock: per product, stock = starting stock − units
//! ordered + units released + Σ adjustments.

use std::future::Future;

use orderly_domain::{Actor, NewProduct, Product, ProductId, ProductPatch, Sku};
use orderly_queue::Enqueued;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::{ProductRow, UpdateOutcome, product_columns};
use crate::error::is_unique_violation;
use crate::orders::actor_json;
use crate::orders::sql::TransitionSql;
use crate::webhooks::{OutboxEvent, queue_deliveries};
use crate::{Store, StoreError, with_pool};
use orderly_db::WritePool;

/// Who changes the catalogue, and the request's `traceparent` its events carry on.
#[derive(Debug, Clone)]
pub struct ProductWrite {
    pub actor: Actor,
    pub trace: Option<String>,
}

/// Statements on one connection inside an open write transaction.
trait CatalogueSql: TransitionSql {
    /// The product, its row locked until the transaction ends.
    fn lock_product(
        &mut self,
        id: Uuid,
    ) -> impl Future<Output = Result<Option<Product>, sqlx::Error>> + Send;
    fn insert_product(
        &mut self,
        product: &Product,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    /// Sets the fields `patch` names (archiving when `archive_at` is given) and moves the
    /// version on.
    fn update_product(
        &mut self,
        id: Uuid,
        patch: &ProductPatch,
        archive_at: Option<OffsetDateTime>,
        at: OffsetDateTime,
    ) -> impl Future<Output = Result<Product, sqlx::Error>> + Send;
}

macro_rules! impl_catalogue_sql {
    ($connection:ty, $lock:literal) => {
        impl CatalogueSql for $connection {
            async fn lock_product(&mut self, id: Uuid) -> Result<Option<Product>, sqlx::Error> {
                let row = sqlx::query_as::<_, ProductRow>(concat!(
                    "SELECT ",
                    product_columns!(),
                    " FROM products WHERE id = $1",
                    $lock
                ))
                .bind(id)
                .fetch_optional(&mut *self)
                .await?;
                Ok(row.map(|r| r.0))
            }

            async fn insert_product(&mut self, p: &Product) -> Result<(), sqlx::Error> {
                sqlx::query(
                    "INSERT INTO products (id, sku, name, description, price, currency, stock, \
                     active, version, archived_at, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, NULL, $9, $9)",
                )
                .bind(p.id.as_uuid())
                .bind(&p.sku)
                .bind(&p.name)
                .bind(&p.description)
                .bind(p.price)
                .bind(&p.currency)
                .bind(p.stock)
                .bind(p.active)
                .bind(orderly_db::Timestamp::new(p.created_at))
                .execute(&mut *self)
                .await
                .map(|_| ())
            }

            async fn update_product(
                &mut self,
                id: Uuid,
                patch: &ProductPatch,
                archive_at: Option<OffsetDateTime>,
                at: OffsetDateTime,
            ) -> Result<Product, sqlx::Error> {
                let row = sqlx::query_as::<_, ProductRow>(concat!(
                    "UPDATE products SET sku = COALESCE($2, sku), name = COALESCE($3, name), \
                     description = COALESCE($4, description), price = COALESCE($5, price), \
                     stock = COALESCE($6, stock), active = COALESCE($7, active), \
                     archived_at = COALESCE($8, archived_at), version = version + 1, \
                     updated_at = $9 WHERE id = $1 RETURNING ",
                    product_columns!()
                ))
                .bind(id)
                .bind(patch.sku.as_ref().map(Sku::as_str))
                .bind(patch.name.as_ref().map(|n| n.as_str()))
                .bind(patch.description.as_ref().map(|d| d.as_str()))
                .bind(patch.price.map(|p| p.minor_units()))
                .bind(patch.stock.map(|s| s.units()))
                .bind(patch.active)
                .bind(archive_at.map(orderly_db::Timestamp::new))
                .bind(orderly_db::Timestamp::new(at))
                .fetch_one(&mut *self)
                .await?;
                Ok(row.0)
            }
        }
    };
}

impl_catalogue_sql!(sqlx::SqliteConnection, "");
impl_catalogue_sql!(sqlx::PgConnection, " FOR UPDATE");

/// What a change to a product asks for.
enum Change<'a> {
    Patch {
        patch: &'a ProductPatch,
        reason: Option<&'a str>,
    },
    Archive,
}

impl Store {
    /// Inserts a new product and its `product.created` event. A taken `sku` is
    /// [`StoreError::SkuTaken`].
    #[tracing::instrument(name = "db", skip_all, fields(op = "create_product"))]
    pub async fn create_product(
        &self,
        new: &NewProduct,
        by: &ProductWrite,
    ) -> Result<Product, StoreError> {
        let now = orderly_domain::now();
        let product = Product {
            id: ProductId::generate(),
            sku: new.sku.as_str().to_owned(),
            name: new.name.as_str().to_owned(),
            description: new.description.as_str().to_owned(),
            price: new.price.minor_units(),
            currency: new.currency.as_str().to_owned(),
            stock: new.stock.units(),
            active: new.active,
            version: 1,
            archived_at: None,
            created_at: now,
            updated_at: now,
        };
        let result = with_pool!(self, pool => async {
            let mut tx = pool.begin_write().await?;
            tx.insert_product(&product).await?;
            let payload = json!({"product": product_json(&product)});
            let enqueued =
                record(&mut *tx, &product, vec![("product.created", payload)], by, now).await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(enqueued)
        }.await);
        match result {
            Ok(enqueued) => {
                self.queue.after_commit(enqueued);
                Ok(product)
            }
            Err(e) if is_unique_violation(&e) => Err(StoreError::SkuTaken),
            Err(e) => Err(e.into()),
        }
    }

    /// Applies `patch` when the product exists, is not archived and, if `expected_version` is
    /// given, is still at that version, with `product.updated` when a field other than the
    /// stock changed and `product.stock_adjusted` (with `reason`) when the stock did.
    #[tracing::instrument(name = "db", skip_all, fields(op = "update_product"))]
    pub async fn update_product(
        &self,
        id: ProductId,
        expected_version: Option<i64>,
        patch: &ProductPatch,
        reason: Option<&str>,
        by: &ProductWrite,
    ) -> Result<UpdateOutcome, StoreError> {
        self.change_product(id, expected_version, Change::Patch { patch, reason }, by)
            .await
    }

    /// Archives the product: it stops being orderable and becomes read-only
    /// (`product.updated`). Archiving an archived product changes nothing and reports it as
    /// [`UpdateOutcome::Archived`].
    #[tracing::instrument(name = "db", skip_all, fields(op = "archive_product"))]
    pub async fn archive_product(
        &self,
        id: ProductId,
        expected_version: Option<i64>,
        by: &ProductWrite,
    ) -> Result<UpdateOutcome, StoreError> {
        self.change_product(id, expected_version, Change::Archive, by)
            .await
    }

    async fn change_product(
        &self,
        id: ProductId,
        expected_version: Option<i64>,
        change: Change<'_>,
        by: &ProductWrite,
    ) -> Result<UpdateOutcome, StoreError> {
        let now = orderly_domain::now();
        let result = with_pool!(self, pool => async {
            let mut tx = pool.begin_write().await?;
            let done = change_locked(&mut *tx, id, expected_version, &change, by, now).await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(done)
        }.await);
        match result {
            Ok((outcome, enqueued)) => {
                self.queue.after_commit(enqueued);
                Ok(outcome)
            }
            Err(e) if is_unique_violation(&e) => Err(StoreError::SkuTaken),
            Err(e) => Err(e.into()),
        }
    }
}

/// The change, decided and written with the product's row locked.
async fn change_locked<C: CatalogueSql>(
    conn: &mut C,
    id: ProductId,
    expected_version: Option<i64>,
    change: &Change<'_>,
    by: &ProductWrite,
    now: OffsetDateTime,
) -> Result<(UpdateOutcome, Enqueued), sqlx::Error> {
    let Some(before) = conn.lock_product(id.as_uuid()).await? else {
        return Ok((UpdateOutcome::NotFound, Enqueued::default()));
    };
    if before.archived_at.is_some() {
        return Ok((UpdateOutcome::Archived(before), Enqueued::default()));
    }
    if expected_version.is_some_and(|v| v != before.version) {
        return Ok((UpdateOutcome::VersionMismatch(before), Enqueued::default()));
    }
    // Archiving sets no field of its own but `active`.
    let archive = ProductPatch {
        active: Some(false),
        ..ProductPatch::default()
    };
    let (patch, reason, archive_at) = match change {
        Change::Patch { patch, reason } => (*patch, *reason, None),
        Change::Archive => (&archive, None, Some(now)),
    };
    let after = conn
        .update_product(id.as_uuid(), patch, archive_at, now)
        .await?;
    let previous = previous_values(&before, &after);
    let mut events = Vec::new();
    if !previous.is_empty() {
        let payload = json!({"product": product_json(&after), "previous": previous});
        events.push(("product.updated", payload));
    }
    if after.stock != before.stock {
        let payload = json!({
            "stock_before": before.stock,
            "stock": after.stock,
            "delta": after.stock - before.stock,
            "reason": reason,
            "version": after.version,
        });
        events.push(("product.stock_adjusted", payload));
    }
    let enqueued = record(conn, &after, events, by, now).await?;
    Ok((UpdateOutcome::Updated(after), enqueued))
}

/// Writes `events` about `product` to the outbox, each with the product's id and SKU and the
/// actor, and queues their deliveries.
async fn record<C: TransitionSql>(
    conn: &mut C,
    product: &Product,
    events: Vec<(&'static str, Value)>,
    by: &ProductWrite,
    now: OffsetDateTime,
) -> Result<Enqueued, sqlx::Error> {
    let actor = actor_json(&by.actor);
    let mut outbox = Vec::with_capacity(events.len());
    for (kind, mut payload) in events {
        payload["product_id"] = json!(product.id.as_uuid());
        payload["sku"] = json!(product.sku);
        payload["actor"] = actor.clone();
        let event = OutboxEvent {
            id: Uuid::now_v7(),
            kind,
            trace: by.trace.as_deref(),
        };
        conn.insert_event(
            event.id,
            kind,
            product.id.as_uuid(),
            &payload,
            now,
            by.trace.as_deref(),
        )
        .await?;
        outbox.push(event);
    }
    queue_deliveries(conn, &outbox, now).await
}

/// The product as events carry it.
fn product_json(p: &Product) -> Value {
    json!({
        "id": p.id.as_uuid(),
        "sku": p.sku,
        "name": p.name,
        "description": p.description,
        "price": p.price,
        "currency": p.currency,
        "stock": p.stock,
        "active": p.active,
        "version": p.version,
        "archived_at": p.archived_at.and_then(|t| t.format(&Rfc3339).ok()),
        "updated_at": p.updated_at.format(&Rfc3339).ok(),
    })
}

/// The previous value of every field but the stock that differs between `before` and `after`.
fn previous_values(before: &Product, after: &Product) -> Map<String, Value> {
    let mut previous = Map::new();
    let mut differ = |field: &str, was: Value, is: Value| {
        if was != is {
            previous.insert(field.to_owned(), was);
        }
    };
    differ("sku", json!(before.sku), json!(after.sku));
    differ("name", json!(before.name), json!(after.name));
    differ(
        "description",
        json!(before.description),
        json!(after.description),
    );
    differ("price", json!(before.price), json!(after.price));
    differ("active", json!(before.active), json!(after.active));
    differ(
        "archived",
        json!(before.archived_at.is_some()),
        json!(after.archived_at.is_some()),
    );
    previous
}
