//! Settings from the environment: the short `ORDERLY_*` names operators and scripts rely on,
//! `ORDERLY_<SECTION>__<KEY>` for any key, and the keys that were renamed when durations
//! became typed (`worker.lease_secs = 30` is now `worker.lease = "30s"`): a start that still
//! sets one stops with a message naming the new key, rather than silently ignoring it.

use std::collections::BTreeMap;

use super::ConfigError;

/// Short environment names, and the keys they set.
pub(super) const SHORT_ENV_NAMES: &[(&str, &str)] = &[
    ("ORDERLY_DATABASE_URL", "database.url"),
    ("ORDERLY_SMTP_URL", "mail.smtp_url"),
    ("ORDERLY_REDIS_URL", "cache.redis_url"),
    ("ORDERLY_OTLP_ENDPOINT", "telemetry.otlp_endpoint"),
    ("ORDERLY_MAIL_OUTBOX", "mail.outbox"),
    ("ORDERLY_LISTEN", "http.listen"),
    ("ORDERLY_CURRENCY", "store.currency"),
    ("ORDERLY_LOG_FORMAT", "log.format"),
    ("ORDERLY_WEBHOOKS_ALLOW_PRIVATE", "webhooks.allow_private"),
    ("ORDERLY_MAIL_OPERATORS", "mail.operators"),
];

/// Keys renamed when they became durations: old, new, an example of the new value.
const RENAMED: &[(&str, &str, &str)] = &[
    ("http.shutdown_grace_secs", "http.shutdown_grace", "10s"),
    ("http.auth_cache_secs", "http.auth_cache", "5s"),
    (
        "orders.idempotency_ttl_secs",
        "orders.idempotency_ttl",
        "1day",
    ),
    (
        "orders.payment_timeout_secs",
        "orders.payment_timeout",
        "30m",
    ),
    ("cache.ttl_secs", "cache.ttl", "5m"),
    ("cache.negative_ttl_secs", "cache.negative_ttl", "5s"),
    ("cache.redis_timeout_ms", "cache.redis_timeout", "250ms"),
    ("worker.lease_secs", "worker.lease", "30s"),
    ("worker.poll_interval_ms", "worker.poll_interval", "1s"),
    ("worker.shutdown_grace_secs", "worker.shutdown_grace", "10s"),
    ("worker.job_timeout_secs", "worker.job_timeout", "5m"),
    ("worker.backoff_base_ms", "worker.backoff_base", "5s"),
    ("worker.backoff_max_secs", "worker.backoff_max", "1h"),
    ("worker.retention_hours", "worker.retention", "7days"),
    ("mail.timeout_secs", "mail.timeout", "10s"),
    ("webhooks.timeout_secs", "webhooks.timeout", "10s"),
    (
        "webhooks.disable_after_hours",
        "webhooks.disable_after",
        "5days",
    ),
    (
        "webhooks.rotation_grace_hours",
        "webhooks.rotation_grace",
        "1day",
    ),
    (
        "webhooks.event_retention_days",
        "webhooks.event_retention",
        "30days",
    ),
];

/// The `key → value` overrides that the `ORDERLY_*` variables ask for.
pub(super) fn overrides(
    env: impl IntoIterator<Item = (String, String)>,
) -> BTreeMap<String, String> {
    let mut overrides = BTreeMap::new();
    for (name, value) in env {
        if let Some(&(_, key)) = SHORT_ENV_NAMES.iter().find(|(short, _)| *short == name) {
            overrides.insert(key.to_owned(), value);
        } else if let Some(path) = name.strip_prefix("ORDERLY_")
            && path.contains("__")
        {
            overrides.insert(path.to_ascii_lowercase().replace("__", "."), value);
        }
    }
    overrides
}

/// Stops at the first renamed key that is still set, naming its new key.
pub(super) fn refuse_renamed(layers: &config::Config) -> Result<(), ConfigError> {
    for &(old, new, example) in RENAMED {
        if layers.get::<config::Value>(old).is_ok() {
            return Err(ConfigError::Renamed {
                old,
                new,
                example,
                new_env: format!("ORDERLY_{}", new.to_ascii_uppercase().replace('.', "__")),
            });
        }
    }
    Ok(())
}
