//! The effective configuration: the embedded defaults (`config.default.toml`), then an optional
//! TOML file, then `ORDERLY_*` environment variables. Every value is parsed into its type at
//! load (durations such as `"30s"`, enums, mailboxes, cron expressions, time zones), then
//! checked against its bounds; a bad value stops the start with a message naming the key and
//! the value. The defaults live in `config.default.toml` alone.
//!
//! One module per section (`http.rs` for `[http]`, …), each with its bounds, declared once
//! (`bounds.rs` derives the messages); every conversion into a component's settings is in
//! `settings.rs`.

mod bounds;
mod cache;
mod console;
mod database;
mod env;
mod events;
mod http;
mod limits;
mod log;
mod mail;
mod orders;
mod rate_limits;
mod reference;
mod reports;
mod schedules;
mod settings;
mod store;
mod telemetry;
mod values;
mod webhooks;
mod worker;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use config::{Config as Layers, File, FileFormat};
use serde::{Deserialize, Serialize};

pub use self::cache::CacheConfig;
pub use self::console::ConsoleConfig;
pub use self::database::DatabaseConfig;
pub use self::events::{EventsConfig, StreamRetention};
pub use self::http::HttpConfig;
pub use self::limits::{KindLimitsConfig, LimitsConfig, RateSetting};
pub use self::log::{LogConfig, LogFormat};
pub use self::mail::MailConfig;
pub use self::orders::OrdersConfig;
pub use self::rate_limits::{QuotaConfig, RateLimitsConfig};
pub use self::reference::reference;
pub use self::reports::ReportsConfig;
pub use self::schedules::ScheduleConfig;
pub use self::store::StoreConfig;
pub use self::telemetry::TelemetryConfig;
pub use self::values::{CurrencySetting, Mailboxes, RetrySchedule, SecretUrl};
pub use self::webhooks::WebhooksConfig;
pub use self::worker::WorkerConfig;

const DEFAULTS: &str = include_str!("../../config.default.toml");

/// The file read when `--config` is not given, if it exists.
pub const DEFAULT_FILE: &str = "orderly.toml";

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub http: HttpConfig,
    pub database: DatabaseConfig,
    pub orders: OrdersConfig,
    pub cache: CacheConfig,
    pub rate_limits: RateLimitsConfig,
    pub worker: WorkerConfig,
    /// Schedule name → its cron schedule.
    pub schedules: BTreeMap<String, ScheduleConfig>,
    pub mail: MailConfig,
    pub reports: ReportsConfig,
    pub webhooks: WebhooksConfig,
    pub events: EventsConfig,
    pub console: ConsoleConfig,
    pub store: StoreConfig,
    pub telemetry: TelemetryConfig,
    pub log: LogConfig,
}

/// The configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error(transparent)]
    Load(#[from] config::ConfigError),
    #[error("invalid setting `{key}` = {value}: {message}")]
    Invalid {
        key: &'static str,
        value: String,
        message: String,
    },
    #[error(
        "setting `{old}` was renamed: write `{new}` as a duration such as \"{example}\" \
         (environment: {new_env})"
    )]
    Renamed {
        old: &'static str,
        new: &'static str,
        example: &'static str,
        new_env: String,
    },
}

impl Config {
    /// Loads the configuration from the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, std::env::vars())
    }

    /// Loads the configuration from the given environment: defaults, then `file` (or
    /// `orderly.toml` when present), then the `ORDERLY_*` variables.
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut layers = Layers::builder().add_source(File::from_str(DEFAULTS, FileFormat::Toml));
        match file {
            Some(path) if !path.exists() => return Err(ConfigError::MissingFile(path.into())),
            Some(path) => layers = layers.add_source(File::from(path).format(FileFormat::Toml)),
            None if Path::new(DEFAULT_FILE).exists() => {
                layers = layers.add_source(File::new(DEFAULT_FILE, FileFormat::Toml))
            }
            None => {}
        }
        Self::from_layers(layers, env)
    }

    /// Loads the configuration from a file's text and the given environment, as
    /// [`Config::load_from`] does from a file (the fuzz target `config` drives this).
    pub fn from_toml(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let layers = Layers::builder()
            .add_source(File::from_str(DEFAULTS, FileFormat::Toml))
            .add_source(File::from_str(text, FileFormat::Toml));
        Self::from_layers(layers, env)
    }

    fn from_layers(
        mut layers: config::ConfigBuilder<config::builder::DefaultState>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        for (key, value) in env::overrides(env) {
            layers = layers.set_override(key, value)?;
        }
        let layers = layers.build()?;
        env::refuse_renamed(&layers)?;
        let config: Config = layers.try_deserialize()?;
        config.validate()?;
        Ok(config)
    }

    /// The bounds each value must keep, and the rules between values: each section checks
    /// its own.
    fn validate(&self) -> Result<(), ConfigError> {
        self.database.validate()?;
        self.http.validate()?;
        self.orders.validate()?;
        self.cache.validate()?;
        self.rate_limits.validate()?;
        self.console.validate()?;
        schedules::validate(&self.schedules)?;
        self.worker.validate()?;
        self.mail.validate()?;
        self.webhooks.validate()?;
        self.reports.validate()?;
        self.events.validate()?;
        self.telemetry.validate()?;
        self.log.validate()
    }

    /// The configuration as TOML, with secrets masked.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot print: {e}\n"))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    pub(super) fn load(env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::load_from(
            None,
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn typed_values_load_and_bad_ones_name_the_key_and_the_value() {
        let config = load(&[
            (
                "ORDERLY_MAIL_OPERATORS",
                "ops@shop.example, Ana <ana@shop.example>",
            ),
            ("ORDERLY_WEBHOOKS_ALLOW_PRIVATE", "true"),
            ("ORDERLY_WORKER__LEASE", "2s"),
            ("ORDERLY_CACHE__REDIS_TIMEOUT", "250ms"),
            ("ORDERLY_SCHEDULES__PRUNE__TIMEZONE", "Europe/Lisbon"),
        ])
        .unwrap();
        assert_eq!(config.mail.operators.0.len(), 2);
        assert!(config.webhooks.allow_private);
        assert_eq!(config.worker.lease, Duration::from_secs(2));
        assert_eq!(config.cache.redis_timeout, Duration::from_millis(250));
        assert_eq!(
            config.schedules["prune"].timezone.to_string(),
            "Europe/Lisbon"
        );
        for (variable, value, key) in [
            ("ORDERLY_WORKER__LEASE", "30 parsecs", "worker.lease"),
            (
                "ORDERLY_HTTP__SHUTDOWN_GRACE",
                "soon",
                "http.shutdown_grace",
            ),
            (
                "ORDERLY_WEBHOOKS__RETRY_SCHEDULE",
                "5x",
                "webhooks.retry_schedule",
            ),
            (
                "ORDERLY_SCHEDULES__PRUNE__TIMEZONE",
                "Mars/Olympus",
                "schedules.prune.timezone",
            ),
            (
                "ORDERLY_SCHEDULES__PRUNE__CRON",
                "every day",
                "schedules.prune.cron",
            ),
            (
                "ORDERLY_SCHEDULES__PRUNE__MISSED",
                "sometimes",
                "schedules.prune.missed",
            ),
            ("ORDERLY_MAIL_OPERATORS", "not a mailbox", "mail.operators"),
            ("ORDERLY_MAIL__FROM", "nobody", "mail.from"),
            ("ORDERLY_WORKER__LEASE", "1s", "worker.lease"),
            ("ORDERLY_CACHE__MAX_ENTRIES", "0", "cache.max_entries"),
            (
                "ORDERLY_WEBHOOKS__EVENT_RETENTION",
                "1h",
                "webhooks.event_retention",
            ),
        ] {
            let message = load(&[(variable, value)]).unwrap_err().to_string();
            assert!(
                message.contains(key) && message.contains(value),
                "{variable}={value}: {message}"
            );
        }
    }

    #[test]
    fn a_renamed_key_stops_the_start_naming_the_new_one() {
        let message = load(&[("ORDERLY_WORKER__LEASE_SECS", "30")])
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("worker.lease_secs")
                && message.contains("`worker.lease`")
                && message.contains("ORDERLY_WORKER__LEASE"),
            "{message}"
        );
    }

    #[test]
    fn defaults_load_without_any_file_or_variable() {
        let config = load(&[]).unwrap();
        assert_eq!(config.database.url.expose(), "sqlite://orderly.db");
        assert_eq!(config.http.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.http.body_limit_bytes, 65_536);
    }

    #[test]
    fn short_and_nested_environment_names_both_override() {
        let config = load(&[
            ("ORDERLY_DATABASE_URL", "postgres://app:pw@db:5432/shop"),
            ("ORDERLY_LISTEN", "0.0.0.0:9000"),
            ("ORDERLY_HTTP__BODY_LIMIT_BYTES", "131072"),
            ("ORDERLY_DATABASE__MIGRATE_ON_START", "false"),
        ])
        .unwrap();
        assert_eq!(
            config.database.url.expose(),
            "postgres://app:pw@db:5432/shop"
        );
        assert_eq!(config.http.listen.port(), 9000);
        assert_eq!(config.http.body_limit_bytes, 131_072);
        assert!(!config.database.migrate_on_start);
    }

    #[test]
    fn a_bad_value_fails_with_a_message_naming_its_key() {
        let message = load(&[("ORDERLY_LISTEN", "not-an-address")])
            .unwrap_err()
            .to_string();
        assert!(message.contains("http.listen"), "{message}");
        let message = load(&[("ORDERLY_CURRENCY", "euro")])
            .unwrap_err()
            .to_string();
        assert!(message.contains("store.currency"), "{message}");
        let message = load(&[("ORDERLY_DATABASE_URL", "mysql://x")])
            .unwrap_err()
            .to_string();
        assert!(message.contains("database.url"), "{message}");
        let message = load(&[("ORDERLY_HTTP__NO_SUCH_KEY", "1")])
            .unwrap_err()
            .to_string();
        assert!(message.contains("no_such_key"), "{message}");
    }

    #[test]
    fn printed_configuration_masks_the_database_password() {
        let config = load(&[("ORDERLY_DATABASE_URL", "postgres://app:s3cret@db/shop")]).unwrap();
        let printed = config.to_redacted_toml();
        assert!(!printed.contains("s3cret"), "{printed}");
        assert!(printed.contains("postgres://app:***@db/shop"), "{printed}");
        assert!(!format!("{config:?}").contains("s3cret"));
    }
}
