//! `[store]`: the shop itself: its currency.

use serde::{Deserialize, Serialize};

use super::CurrencySetting;
use super::values::text;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// The store's ISO 4217 currency.
    #[serde(with = "text")]
    pub currency: CurrencySetting,
}
