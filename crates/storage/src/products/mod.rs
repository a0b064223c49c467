//! The catalogue in the store: reading products here, writing them with their events in
//! `write.rs`. The SQL is shared by both backends: ids bind as UUIDs (BLOB on SQLite, `uuid` on
//! PostgreSQL) and every timestamp is computed in Rust, so no dialect function is needed.

mod write;

use orderly_domain::{PageLimit, Product, ProductId, Sku};
use sqlx::{ColumnIndex, Decode, FromRow, Row, Type};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Store, StoreError, with_pool};

pub use write::ProductWrite;

/// Every column of a product, in the order [`ProductRow`] reads them.
macro_rules! product_columns {
    () => {
        "id, sku, name, description, price, currency, stock, active, version, archived_at, \
         created_at, updated_at"
    };
}
pub(crate) use product_columns;

const BY_ID: &str = "SELECT id, sku, name, description, price, currency, stock, active, version, \
                     archived_at, created_at, updated_at FROM products WHERE id = $1";

const BY_SKU: &str = "SELECT id, sku, name, description, price, currency, stock, active, \
                      version, archived_at, created_at, updated_at FROM products WHERE sku = $1";

// The cursor is the last id seen; the first page starts after the nil UUID, so the query can
// always walk the primary key from a bound instead of filtering a full scan.
const LIST: &str = "SELECT id, sku, name, description, price, currency, stock, active, version, \
                    archived_at, created_at, updated_at FROM products \
                    WHERE id > $1 AND ($2 IS NULL OR active = $2) ORDER BY id LIMIT $3";

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
}
