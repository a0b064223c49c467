//! The catalogue's writes: creating, changing and archiving a product, each followed, once it
//! has committed, by forgetting the product's cached reads (in this process, and through Redis
//! in every other), so that a read after the answer never shows what was there before.

use orderly_cache::Key;
use orderly_domain::{NewProduct, Product, ProductId, ProductPatch};
use orderly_storage::{ProductWrite, StoreError, UpdateOutcome};

use crate::Services;

impl Services {
    /// Creates a product (its SKU unique: a taken one is `StoreError`'s conflict), with its
    /// `product.created` event.
    pub async fn create_product(
        &self,
        new: &NewProduct,
        by: &ProductWrite,
    ) -> Result<Product, StoreError> {
        let product = self.store.create_product(new, by).await?;
        self.forget_product(&product).await;
        tracing::info!(product_id = %product.id, sku = %product.sku, "product created");
        Ok(product)
    }

    /// Changes the fields `patch` names, if the product is at `expected_version` (any, when
    /// `None`) and not archived; a change of stock is recorded as an adjustment with
    /// `reason`.
    pub async fn update_product(
        &self,
        id: ProductId,
        expected_version: Option<i64>,
        patch: &ProductPatch,
        reason: Option<&str>,
        by: &ProductWrite,
    ) -> Result<UpdateOutcome, StoreError> {
        let outcome = self
            .store
            .update_product(id, expected_version, patch, reason, by)
            .await?;
        if let UpdateOutcome::Updated(product) = &outcome {
            self.forget_product(product).await;
            tracing::info!(product_id = %product.id, version = product.version, "product updated");
        }
        Ok(outcome)
    }

    /// Archives a product, if it is at `expected_version` (any, when `None`): it can no longer
    /// be ordered or changed. Archiving an archived product changes nothing.
    pub async fn archive_product(
        &self,
        id: ProductId,
        expected_version: Option<i64>,
        by: &ProductWrite,
    ) -> Result<UpdateOutcome, StoreError> {
        let outcome = self.store.archive_product(id, expected_version, by).await?;
        if let UpdateOutcome::Updated(product) = &outcome {
            self.forget_product(product).await;
            tracing::info!(product_id = %product.id, "product archived");
        }
        Ok(outcome)
    }

    async fn forget_product(&self, product: &Product) {
        self.forget_products([(product.id, Some(product.sku.clone()))])
            .await;
    }

    /// Drops the cached reads of `products` (by id, and by SKU when it is given), after the
    /// write that changed them has committed.
    pub async fn forget_products(
        &self,
        products: impl IntoIterator<Item = (ProductId, Option<String>)>,
    ) {
        let Some(cache) = &self.cache else { return };
        let mut keys = Vec::new();
        for (id, sku) in products {
            keys.push(Key::Id(id.as_uuid()));
            if let Some(sku) = sku {
                keys.push(Key::Sku(sku));
            }
        }
        cache.invalidate(&keys).await;
    }

    /// Drops the cached SKU → id mapping of `sku`: a read found it pointing at a product
    /// whose SKU has changed since.
    pub async fn forget_sku(&self, sku: &str) {
        if let Some(cache) = &self.cache {
            cache.invalidate(&[Key::Sku(sku.to_owned())]).await;
        }
    }
}
