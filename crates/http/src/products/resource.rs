//! What the catalogue API answers with.

use orderly_domain::Product;
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// A product.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductResource {
    /// A UUIDv7: time-ordered and unguessable.
    pub id: Uuid,
    pub sku: String,
    pub name: String,
    pub description: String,
    /// Unit price in minor units of `currency`.
    pub price: i64,
    pub currency: String,
    pub stock: i64,
    pub active: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub archived_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<Product> for ProductResource {
    fn from(p: Product) -> Self {
        Self {
            id: p.id.as_uuid(),
            sku: p.sku,
            name: p.name,
            description: p.description,
            price: p.price,
            currency: p.currency,
            stock: p.stock,
            active: p.active,
            archived_at: p.archived_at,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// One page of products.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductPage {
    pub data: Vec<ProductResource>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}
