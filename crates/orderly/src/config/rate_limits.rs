//! `[rate_limits]`: the token buckets per admin key, storefront key and client address.

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::bounds::{check, within};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitsConfig {
    pub enabled: bool,
    /// Per admin key.
    pub admin: QuotaConfig,
    /// Per storefront key.
    pub storefront: QuotaConfig,
    /// Per client address, for requests without a valid key.
    pub anonymous: QuotaConfig,
    /// The header a trusted balancer writes the client's address into (its last entry is
    /// used); empty: the connection's peer address.
    pub client_address_header: String,
    /// Most client addresses tracked per process before the rest share one bucket.
    pub max_tracked: usize,
}

/// A token bucket: `rate` requests a second on average, `burst` at once.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaConfig {
    pub rate: u32,
    pub burst: u32,
}

/// The range of a quota's rate and burst.
const QUOTA: std::ops::RangeInclusive<u32> = 1..=1_000_000;

impl RateLimitsConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (name, quota) in [
            ("rate_limits.admin", self.admin),
            ("rate_limits.storefront", self.storefront),
            ("rate_limits.anonymous", self.anonymous),
        ] {
            check(
                QUOTA.contains(&quota.rate) && QUOTA.contains(&quota.burst),
                name,
                format!("{{ rate = {}, burst = {} }}", quota.rate, quota.burst),
                &format!(
                    "rate and burst must be between {} and {}",
                    QUOTA.start(),
                    QUOTA.end()
                ),
            )?;
        }
        let header = &self.client_address_header;
        check(
            header.is_empty() || axum::http::HeaderName::from_bytes(header.as_bytes()).is_ok(),
            "rate_limits.client_address_header",
            header,
            "must be a header name, such as x-forwarded-for",
        )?;
        within("rate_limits.max_tracked", self.max_tracked, 1..=10_000_000)
    }
}
