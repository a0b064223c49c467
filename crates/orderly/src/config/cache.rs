//! `[cache]`: the product read cache, in process and in Redis.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::SecretUrl;
use super::bounds::{above_zero, check, within};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    pub enabled: bool,
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    #[serde(with = "humantime_serde")]
    pub negative_ttl: Duration,
    pub max_entries: u64,
    /// Redis URL for the shared tier; empty for in-process only. May hold a password.
    pub redis_url: SecretUrl,
    #[serde(with = "humantime_serde")]
    pub redis_timeout: Duration,
    pub redis_namespace: String,
}

impl CacheConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        above_zero("cache.ttl", self.ttl)?;
        above_zero("cache.negative_ttl", self.negative_ttl)?;
        above_zero("cache.max_entries", self.max_entries)?;
        within(
            "cache.redis_timeout",
            self.redis_timeout,
            Duration::from_millis(1)..=Duration::from_secs(5),
        )?;
        let redis = self.redis_url.expose();
        check(
            redis.is_empty() || redis.starts_with("redis://") || redis.starts_with("rediss://"),
            "cache.redis_url",
            self.redis_url.redacted(),
            "must start with redis:// (env ORDERLY_REDIS_URL)",
        )
    }
}
