//! Catalogue queries. The SQL is shared by both backends: ids bind as UUIDs (BLOB on SQLite,
//! `uuid` on PostgreSQL) and every timestamp is computed in Rust, so no dialect function is
//! needed.

use orderly_domain::{NewProduct, PageLimit, Product, ProductId, ProductPatch, Sku};
use sqlx::{ColumnIndex, Decode, FromRow, Row, Type};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::is_unique_violation;
use crate::{Store, StoreError, with_pool};

const INSERT: &str = "INSERT INTO products (id, sku, name, description, price, currency, stock, \
                      active, version, archived_at, created_at, updated_at) \
                      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, NULL, $9, $9)";

const BY_ID: &str = "SELECT id, sku, name, description, price, currency, stock, active, version, \
                     archived_at, created_at, updated_at FROM products WHERE id = $1";

const BY_SKU: &str = "SELECT id, sku, name, description, price, currency, stock, active, \
                      version, archived_at, created_at, updated_at FROM products WHERE sku = $1";

// The cursor is the last id seen; the first page starts after the nil UUID, so the query can
// always walk the primary key from a bound instead of filtering a full scan.
const LIST: &str = "SELECT id, sku, name, description, price, currency, stock, active, version, \
                    archived_at, created_at, updated_at FROM products \
                    WHERE id > $1 AND ($2 IS NULL OR active = $2) ORDER BY id LIMIT $3";

const UPDATE: &str = "UPDATE products SET sku = COALESCE($3, sku), name = COALESCE($4, name), \
                      description = COALESCE($5, description), price = COALESCE($6, price), \
                      stock = COALESCE($7, stock), active = COALESCE($8, active), \
                      version = version + 1, updated_at = $9 \
                      WHERE id = $1 AND archived_at IS NULL AND ($2 IS NULL OR version = $2) \
                      RETURNING id, sku, name, description, price, currency, stock, active, \
                      version, archived_at, created_at, updated_at";

const ARCHIVE: &str = "UPDATE products SET active = false, archived_at = $2, updated_at = $2, \
                       version = version + 1 \
                       WHERE id = $1 AND archived_at IS NULL AND ($3 IS NULL OR version = $3) \
                       RETURNING id, sku, name, description, price, currency, stock, active, \
                       version, archived_at, created_at, updated_at";

/// Which products a listing returns.
#[derive(Debug, Clone, Default)]
pub struct ProductFilter {
    /// Only products whose `active` flag equals this, when given.
    pub active: Option<bool>,
    /// Start after this id (the cursor of the previous page).
    pub after: Option<ProductId>,
    pub limit: PageLimit,
}

/// The result of a conditional change to a product.
#[derive(Debug, Clone)]
pub enum UpdateOutcome {
    Updated(Product),
    NotFound,
    /// The product is archived and no longer changes; here it is as it stands.
    Archived(Product),
    /// `If-Match` named another version; here is the current one.
    VersionMismatch(Product),
}

/// A product row. Generic over the row type so one mapping serves both backends.
struct ProductRow(Product);

impl<'r, R> FromRow<'r, R> for ProductRow
where
    R: Row,
    &'static str: ColumnIndex<R>,
    Uuid: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    bool: Decode<'r, R::Database> + Type<R::Database>,
    OffsetDateTime: Decode<'r, R::Database> + Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        Ok(Self(Product {
            id: ProductId::from_uuid(row.try_get("id")?),
            sku: row.try_get("sku")?,
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            price: row.try_get("price")?,
            currency: row.try_get("currency")?,
            stock: row.try_get("stock")?,
            active: row.try_get("active")?,
            version: row.try_get("version")?,
            archived_at: row.try_get("archived_at")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        }))
    }
}

impl Store {
    /// Inserts a new product. A taken `sku` is [`StoreError::SkuTaken`].
    #[tracing::instrument(name = "db", skip_all, fields(op = "create_product"))]
    pub async fn create_product(&self, new: &NewProduct) -> Result<Product, StoreError> {
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
        let result = with_pool!(self, pool => sqlx::query(INSERT)
            .bind(product.id.as_uuid())
            .bind(&product.sku)
            .bind(&product.name)
            .bind(&product.description)
            .bind(product.price)
            .bind(&product.currency)
            .bind(product.stock)
            .bind(product.active)
            .bind(orderly_db::Timestamp::new(product.created_at))
            .execute(pool)
            .await
            .map(|_| ()));
        match result {
            Ok(()) => Ok(product),
            Err(e) if is_unique_violation(&e) => Err(StoreError::SkuTaken),
            Err(e) => Err(e.into()),
        }
    }

    #[tracing::instrument(name = "db", skip_all, fields(op = "product_by_id"))]
    pub async fn product_by_id(&self, id: ProductId) -> Result<Option<Product>, StoreError> {
        let row = with_pool!(self, pool => sqlx::query_as::<_, ProductRow>(BY_ID)
            .bind(id.as_uuid())
            .fetch_optional(pool)
            .await)?;
        Ok(row.map(|r| r.0))
    }

    #[tracing::instrument(name = "db", skip_all, fields(op = "product_by_sku"))]
    pub async fn product_by_sku(&self, sku: &Sku) -> Result<Option<Product>, StoreError> {
        let row = with_pool!(self, pool => sqlx::query_as::<_, ProductRow>(BY_SKU)
            .bind(sku.as_str())
            .fetch_optional(pool)
            .await)?;
        Ok(row.map(|r| r.0))
    }

    /// One page of products in id (creation) order.
    #[tracing::instrument(name = "db", skip_all, fields(op = "list_products"))]
    pub async fn list_products(&self, filter: &ProductFilter) -> Result<Vec<Product>, StoreError> {
        let after = filter.after.map_or(Uuid::nil(), |id| id.as_uuid());
        let rows = with_pool!(self, pool => sqlx::query_as::<_, ProductRow>(LIST)
            .bind(after)
            .bind(filter.active)
            .bind(i64::from(filter.limit.get()))
            .fetch_all(pool)
            .await)?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// Applies `patch` when the product exists, is not archived and, if `expected_version` is
    /// given, is still at that version. One conditional statement: no lost updates.
    #[tracing::instrument(name = "db", skip_all, fields(op = "update_product"))]
    pub async fn update_product(
        &self,
        id: ProductId,
        expected_version: Option<i64>,
        patch: &ProductPatch,
    ) -> Result<UpdateOutcome, StoreError> {
        let result = with_pool!(self, pool => sqlx::query_as::<_, ProductRow>(UPDATE)
            .bind(id.as_uuid())
            .bind(expected_version)
            .bind(patch.sku.as_ref().map(Sku::as_str))
            .bind(patch.name.as_ref().map(|n| n.as_str()))
            .bind(patch.description.as_ref().map(|d| d.as_str()))
            .bind(patch.price.map(|p| p.minor_units()))
            .bind(patch.stock.map(|s| s.units()))
            .bind(patch.active)
            .bind(orderly_db::Timestamp::new(orderly_domain::now()))
            .fetch_optional(pool)
            .await);
        match result {
            Ok(Some(row)) => Ok(UpdateOutcome::Updated(row.0)),
            Ok(None) => self.explain_unchanged(id).await,
            Err(e) if is_unique_violation(&e) => Err(StoreError::SkuTaken),
            Err(e) => Err(e.into()),
        }
    }

    /// Archives the product: it stops being orderable and becomes read-only. Archiving an
    /// archived product changes nothing and reports it as [`UpdateOutcome::Archived`].
    #[tracing::instrument(name = "db", skip_all, fields(op = "archive_product"))]
    pub async fn archive_product(
        &self,
        id: ProductId,
        expected_version: Option<i64>,
    ) -> Result<UpdateOutcome, StoreError> {
        let row = with_pool!(self, pool => sqlx::query_as::<_, ProductRow>(ARCHIVE)
            .bind(id.as_uuid())
            .bind(orderly_db::Timestamp::new(orderly_domain::now()))
            .bind(expected_version)
            .fetch_optional(pool)
            .await)?;
        match row {
            Some(row) => Ok(UpdateOutcome::Updated(row.0)),
            None => self.explain_unchanged(id).await,
        }
    }

    /// Why a conditional update touched no row, as the product stands now.
    async fn explain_unchanged(&self, id: ProductId) -> Result<UpdateOutcome, StoreError> {
        Ok(match self.product_by_id(id).await? {
            None => UpdateOutcome::NotFound,
            Some(p) if p.archived_at.is_some() => UpdateOutcome::Archived(p),
            Some(p) => UpdateOutcome::VersionMismatch(p),
        })
    }
}
