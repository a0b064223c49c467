//! The catalogue's rules that follow a write: a product whose stock or fields a committed
//! write changed leaves the read cache, in this process and (through Redis) in every other.

use orderly_cache::Key;
use orderly_domain::ProductId;

use crate::Services;

impl Services {
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
}
