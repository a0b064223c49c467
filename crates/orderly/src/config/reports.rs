//! `[reports]`: what the daily sales summary lists.

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::bounds::at_most;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReportsConfig {
    pub top_products: u32,
    pub low_stock: i64,
}

impl ReportsConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        at_most("reports.top_products", self.top_products, 100)
    }
}
