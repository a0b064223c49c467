//! `[console]`: the operator's console at `/console`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::bounds::within;

/// The operator's console at `/console`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    pub enabled: bool,
    /// How long a session lasts from sign-in.
    #[serde(with = "humantime_serde")]
    pub session_ttl: Duration,
    /// Mark the session cookie `Secure` whatever the request said.
    pub secure_cookie: bool,
}

impl ConsoleConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        within(
            "console.session_ttl",
            self.session_ttl,
            Duration::from_secs(60)..=Duration::from_secs(7 * 24 * 3_600),
        )
    }
}
