//! `[database]`: where the data lives, the pool, and how long a write may take.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::SecretUrl;
use super::bounds::{above_zero, check, within};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Where the data lives; its password is never printed.
    pub url: SecretUrl,
    /// Most connections in the pool.
    pub max_connections: u32,
    /// Longest a caller waits for a connection, opening one included.
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
    /// Longest an order batch's transaction may take, from taking a connection to the answer
    /// to its `COMMIT`.
    #[serde(with = "humantime_serde")]
    pub write_timeout: Duration,
    /// Whether `run` and `api` apply pending migrations at start.
    pub migrate_on_start: bool,
}

impl DatabaseConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        check(
            orderly_storage::BackendKind::from_url(self.url.expose()).is_ok(),
            "database.url",
            self.url.redacted(),
            "must start with sqlite:// or postgres:// (env ORDERLY_DATABASE_URL)",
        )?;
        above_zero("database.max_connections", self.max_connections)?;
        within(
            "database.acquire_timeout",
            self.acquire_timeout,
            Duration::from_millis(100)..=Duration::from_secs(60),
        )?;
        within(
            "database.write_timeout",
            self.write_timeout,
            Duration::from_secs(1)..=Duration::from_secs(600),
        )
    }
}
