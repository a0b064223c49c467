//! Reading products through the cache: by id, and by sku through a cached sku → id mapping.
//! Writes forget what they changed (`orderly_service::Services::forget_products`).

use std::sync::Arc;

use bytes::Bytes;
use orderly_cache::{CachedProduct, Entry, Key};
use orderly_domain::{Product, ProductId, Sku};

use super::resource::ProductResource;
use crate::AppState;
use crate::error::ApiError;

/// A product rendered once, as it is cached and served.
pub fn rendered(product: Product) -> CachedProduct {
    CachedProduct {
        id: product.id.as_uuid(),
        sku: product.sku.clone(),
        etag: product.etag(),
        body: Bytes::from(serde_json::to_vec(&ProductResource::from(product)).unwrap_or_default()),
    }
}

/// The product with `id`, from the cache when it has it.
pub async fn by_id(
    state: &AppState,
    id: ProductId,
) -> Result<Option<Arc<CachedProduct>>, ApiError> {
    let load = || async {
        Ok::<_, orderly_storage::StoreError>(match state.store.product_by_id(id).await? {
            Some(product) => Entry::Product(Arc::new(rendered(product))),
            None => Entry::Missing,
        })
    };
    let entry = match &state.cache {
        Some(cache) => cache.get_or_load(Key::Id(id.as_uuid()), load).await?,
        None => load().await?,
    };
    Ok(match entry {
        Entry::Product(product) => Some(product),
        Entry::IdOf(_) | Entry::Missing => None,
    })
}

/// The product with `sku`. A cached mapping that no longer matches (the product changed its
/// sku) is dropped and looked up again.
pub async fn by_sku(state: &AppState, sku: &Sku) -> Result<Option<Arc<CachedProduct>>, ApiError> {
    let Some(cache) = &state.cache else {
        return Ok(state
            .store
            .product_by_sku(sku)
            .await?
            .map(|p| Arc::new(rendered(p))));
    };
    let key = Key::Sku(sku.as_str().to_owned());
    for _ in 0..2 {
        let load = || async {
            Ok::<_, orderly_storage::StoreError>(match state.store.product_by_sku(sku).await? {
                Some(product) => Entry::IdOf(product.id.as_uuid()),
                None => Entry::Missing,
            })
        };
        let id = match cache.get_or_load(key.clone(), load).await? {
            Entry::IdOf(id) => ProductId::from_uuid(id),
            Entry::Product(_) | Entry::Missing => return Ok(None),
        };
        match by_id(state, id).await? {
            Some(product) if product.sku == sku.as_str() => return Ok(Some(product)),
            _ => state.services.forget_sku(sku.as_str()).await,
        }
    }
    Ok(None)
}
