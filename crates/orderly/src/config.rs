//! The effective configuration: the embedded defaults (`config.default.toml`), then an optional
//! TOML file, then `ORDERLY_*` environment variables. Validated once at load; a bad value stops
//! the start with a message naming the key.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use config::{Config as Layers, File, FileFormat};
use orderly_domain::Currency;
use serde::{Deserialize, Serialize, Serializer};

const DEFAULTS: &str = include_str!("../config.default.toml");

/// The file read when `--config` is not given, if it exists.
pub const DEFAULT_FILE: &str = "orderly.toml";

/// Short environment names that operators and scripts rely on, and the keys they set.
/// Every other key is reachable as `ORDERLY_<SECTION>__<KEY>`.
const SHORT_ENV_NAMES: &[(&str, &str)] = &[
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

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub http: HttpConfig,
    pub database: DatabaseConfig,
    pub orders: OrdersConfig,
    pub cache: CacheConfig,
    pub worker: WorkerConfig,
    /// Schedule name → its cron schedule.
    pub schedules: BTreeMap<String, ScheduleConfig>,
    pub mail: MailConfig,
    pub reports: ReportsConfig,
    pub webhooks: WebhooksConfig,
    pub store: StoreConfig,
    pub telemetry: TelemetryConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// OTLP/HTTP traces endpoint; empty exports nothing.
    pub otlp_endpoint: String,
    pub service_name: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address the API listens on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// Seconds in-flight requests get to finish after shutdown begins.
    pub shutdown_grace_secs: u64,
    /// Seconds a verified API key is trusted without a database lookup (0: never).
    pub auth_cache_secs: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Where the data lives; its password is never printed.
    pub url: SecretUrl,
    /// Most connections in the pool.
    pub max_connections: u32,
    /// Whether `run` and `api` apply pending migrations at start.
    pub migrate_on_start: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OrdersConfig {
    /// Seconds an `Idempotency-Key` is remembered.
    pub idempotency_ttl_secs: u64,
    /// Most orders in one group-commit transaction.
    pub max_batch: usize,
    /// Most orders waiting for a writer.
    pub queue: usize,
    /// Parallel writer transactions on PostgreSQL.
    pub writers: usize,
    /// Seconds a pending order may wait for payment before it is expired.
    pub payment_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    pub enabled: bool,
    pub ttl_secs: u64,
    pub negative_ttl_secs: u64,
    pub max_entries: u64,
    /// Redis URL for the shared tier; empty for in-process only. May hold a password.
    pub redis_url: SecretUrl,
    pub redis_timeout_ms: u64,
    pub redis_namespace: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// Whether the workers here may lead the scheduler.
    pub scheduler: bool,
    /// Where `orderly worker` serves `/healthz` and `/metrics`.
    pub metrics_listen: SocketAddr,
    /// Queue name → jobs of that queue run at once.
    pub queues: BTreeMap<String, usize>,
    /// Jobs held per queue, running or fetched ahead.
    pub local_queue: usize,
    pub lease_secs: u64,
    pub poll_interval_ms: u64,
    pub shutdown_grace_secs: u64,
    pub job_timeout_secs: u64,
    pub backoff_base_ms: u64,
    pub backoff_max_secs: u64,
    pub retention_hours: u64,
    /// Job kind → attempts before discarding.
    pub max_attempts: BTreeMap<String, i32>,
}

impl WorkerConfig {
    /// Attempts a job of `kind` gets (5 unless configured).
    /// Runs allowed to a job of `kind`: the configured limit, else the kind's own.
    pub fn max_attempts_for(&self, kind: &str) -> i32 {
        self.max_attempts.get(kind).copied().unwrap_or_else(|| {
            orderly_queue::kinds::KindInfo::named(kind).map_or(5, |k| k.max_attempts)
        })
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    pub cron: String,
    /// The job kind each tick enqueues.
    pub job: String,
    /// `skip` or `run_once`.
    #[serde(default = "default_missed")]
    pub missed: String,
    /// `UTC` or a fixed offset such as `+02:00`.
    #[serde(default = "default_timezone")]
    pub timezone: String,
}

fn default_missed() -> String {
    "skip".into()
}

fn default_timezone() -> String {
    "UTC".into()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    /// SMTP server URL; empty means write `.eml` files to `outbox`. May hold a password.
    pub smtp_url: SecretUrl,
    pub outbox: std::path::PathBuf,
    /// The sender mailbox, `Name <address>`.
    pub from: String,
    pub timeout_secs: u64,
    /// Comma-separated mailboxes that get operator mail.
    pub operators: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReportsConfig {
    pub top_products: u32,
    pub low_stock: i64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    pub allow_private: bool,
    pub timeout_secs: u64,
    /// Space-separated durations such as `5s 5m 2h`.
    pub retry_schedule: String,
    pub per_endpoint_concurrency: usize,
    pub disable_after_hours: u64,
    pub response_excerpt_bytes: usize,
    pub rotation_grace_hours: u64,
    pub event_retention_days: u64,
}

/// Parses `5s 5m 30m 2h 1d` into durations.
fn parse_durations(text: &str) -> Result<Vec<std::time::Duration>, String> {
    text.split_whitespace()
        .map(|part| {
            let split = part.len() - part.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            let (number, unit) = part.split_at(split);
            let number: u64 = number
                .parse()
                .map_err(|_| format!("{part:?} is not a number with a unit"))?;
            let unit_secs = match unit {
                "s" => 1,
                "m" => 60,
                "h" => 3_600,
                "d" => 86_400,
                _ => return Err(format!("{part:?}: the unit must be s, m, h or d")),
            };
            Ok(std::time::Duration::from_secs(
                number.saturating_mul(unit_secs),
            ))
        })
        .collect()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// The store's ISO 4217 currency.
    pub currency: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `info,orderly_storage=debug`.
    pub filter: String,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// JSON when stdout is not a terminal, text when it is.
    Auto,
    Json,
    Text,
}

/// A URL that may hold a password (database, SMTP), so it prints with the password masked.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct SecretUrl(String);

impl SecretUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL with its password, for connecting. Never log this.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced by `***`.
    pub fn redacted(&self) -> String {
        let url = &self.0;
        let Some((scheme, rest)) = url.split_once("://") else {
            return url.clone();
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        match authority.rsplit_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _password)) => format!("{scheme}://{user}:***@{host}{path}"),
                None => url.clone(),
            },
            None => url.clone(),
        }
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Serialize for SecretUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.redacted())
    }
}

/// The configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error(transparent)]
    Load(#[from] config::ConfigError),
    #[error("invalid setting `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
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
        for (key, value) in env_overrides(env) {
            layers = layers.set_override(key, value)?;
        }
        let config: Config = layers.build()?.try_deserialize()?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| {
            Err(ConfigError::Invalid {
                key,
                message: message.to_owned(),
            })
        };
        if let Err(e) = Currency::parse("store.currency", &self.store.currency) {
            return invalid("store.currency", &e.message);
        }
        if orderly_storage::BackendKind::from_url(self.database.url.expose()).is_err() {
            return invalid(
                "database.url",
                "must start with sqlite:// or postgres:// (env ORDERLY_DATABASE_URL)",
            );
        }
        if self.database.max_connections == 0 {
            return invalid("database.max_connections", "must be at least 1");
        }
        if !(1_024..=16 * 1_024 * 1_024).contains(&self.http.body_limit_bytes) {
            return invalid("http.body_limit_bytes", "must be between 1024 and 16777216");
        }
        if self.http.auth_cache_secs > 300 {
            return invalid("http.auth_cache_secs", "must be at most 300");
        }
        if !(60..=30 * 86_400).contains(&self.orders.idempotency_ttl_secs) {
            return invalid(
                "orders.idempotency_ttl_secs",
                "must be between 60 and 2592000 (30 days)",
            );
        }
        if !(1..=1_000).contains(&self.orders.max_batch) {
            return invalid("orders.max_batch", "must be between 1 and 1000");
        }
        if !(1..=100_000).contains(&self.orders.queue) {
            return invalid("orders.queue", "must be between 1 and 100000");
        }
        if !(1..=64).contains(&self.orders.writers) {
            return invalid("orders.writers", "must be between 1 and 64");
        }
        let c = &self.cache;
        if c.ttl_secs == 0 || c.negative_ttl_secs == 0 || c.max_entries == 0 {
            return invalid(
                "cache.ttl_secs",
                "cache TTLs and max_entries must be above zero",
            );
        }
        if !(1..=5_000).contains(&c.redis_timeout_ms) {
            return invalid("cache.redis_timeout_ms", "must be between 1 and 5000");
        }
        let redis = c.redis_url.expose();
        if !(redis.is_empty() || redis.starts_with("redis://") || redis.starts_with("rediss://")) {
            return invalid(
                "cache.redis_url",
                "must start with redis:// (env ORDERLY_REDIS_URL)",
            );
        }
        if let Err((name, e)) = self.schedules() {
            return Err(ConfigError::Invalid {
                key: "schedules",
                message: format!("{name}: {e}"),
            });
        }
        let w = &self.worker;
        if w.queues.is_empty() || w.queues.values().any(|&c| !(1..=1_000).contains(&c)) {
            return invalid(
                "worker.queues",
                "must name at least one queue, each running 1 to 1000 jobs at once",
            );
        }
        if !(1..=10_000).contains(&w.local_queue) {
            return invalid("worker.local_queue", "must be between 1 and 10000");
        }
        if !(2..=3_600).contains(&w.lease_secs) {
            return invalid("worker.lease_secs", "must be between 2 and 3600");
        }
        if !(10..=60_000).contains(&w.poll_interval_ms) {
            return invalid("worker.poll_interval_ms", "must be between 10 and 60000");
        }
        if w.backoff_base_ms == 0 || w.backoff_max_secs == 0 || w.job_timeout_secs == 0 {
            return invalid(
                "worker.backoff_base_ms",
                "backoff and job timeout settings must be above zero",
            );
        }
        if w.max_attempts.values().any(|&n| !(1..=100).contains(&n)) {
            return invalid("worker.max_attempts", "each must be between 1 and 100");
        }
        if self.mail.from.parse::<lettre::message::Mailbox>().is_err() {
            return invalid(
                "mail.from",
                "must be a mailbox such as `Shop <orders@shop.example>`",
            );
        }
        if !self.mail.smtp_url.expose().is_empty() {
            let url = self.mail.smtp_url.expose();
            if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
                return invalid(
                    "mail.smtp_url",
                    "must start with smtp:// or smtps:// (env ORDERLY_SMTP_URL)",
                );
            }
        }
        if let Err(e) = self.mail_operators() {
            return invalid(
                "mail.operators",
                &format!("must be a comma-separated list of mailboxes: {e}"),
            );
        }
        let h = &self.webhooks;
        match parse_durations(&h.retry_schedule) {
            Ok(schedule) if (1..=20).contains(&schedule.len()) => {
                let total: std::time::Duration = schedule.iter().sum();
                if total.as_secs() >= h.event_retention_days.saturating_mul(86_400) {
                    return invalid(
                        "webhooks.event_retention_days",
                        "must outlast the whole retry schedule",
                    );
                }
            }
            Ok(_) => return invalid("webhooks.retry_schedule", "must hold 1 to 20 waits"),
            Err(e) => return invalid("webhooks.retry_schedule", &e),
        }
        if !(1..=120).contains(&h.timeout_secs) {
            return invalid("webhooks.timeout_secs", "must be between 1 and 120");
        }
        if !(1..=100).contains(&h.per_endpoint_concurrency) {
            return invalid(
                "webhooks.per_endpoint_concurrency",
                "must be between 1 and 100",
            );
        }
        if !(1..=65_536).contains(&h.response_excerpt_bytes) {
            return invalid(
                "webhooks.response_excerpt_bytes",
                "must be between 1 and 65536",
            );
        }
        if h.disable_after_hours == 0 || h.event_retention_days == 0 {
            return invalid(
                "webhooks.disable_after_hours",
                "disable_after_hours and event_retention_days must be above zero",
            );
        }
        if self.reports.top_products > 100 {
            return invalid("reports.top_products", "must be at most 100");
        }
        let otlp = &self.telemetry.otlp_endpoint;
        if !(otlp.is_empty() || otlp.starts_with("http://") || otlp.starts_with("https://")) {
            return invalid(
                "telemetry.otlp_endpoint",
                "must be an http:// or https:// URL (env ORDERLY_OTLP_ENDPOINT)",
            );
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.filter) {
            return invalid("log.filter", &e.to_string());
        }
        Ok(())
    }

    /// The store currency, checked at load.
    pub fn currency(&self) -> Currency {
        Currency::parse("store.currency", &self.store.currency)
            .unwrap_or_else(|_| unreachable!("validated at load"))
    }

    /// The schedules, parsed.
    pub fn schedules(&self) -> Result<Vec<orderly_worker::scheduler::Schedule>, (String, String)> {
        self.schedules
            .iter()
            .map(|(name, s)| {
                orderly_worker::scheduler::Schedule::parse(
                    name,
                    &s.cron,
                    &s.job,
                    &s.missed,
                    &s.timezone,
                    self.worker.max_attempts_for(&s.job),
                )
                .map_err(|e| (name.clone(), e))
            })
            .collect()
    }

    /// The sender of mail, checked at load.
    pub fn mail_from(&self) -> lettre::message::Mailbox {
        self.mail
            .from
            .parse()
            .unwrap_or_else(|_| unreachable!("validated at load"))
    }

    /// The operator mailboxes.
    pub fn mail_operators(&self) -> Result<Vec<lettre::message::Mailbox>, String> {
        let list = self.mail.operators.trim();
        if list.is_empty() {
            return Ok(Vec::new());
        }
        list.parse::<lettre::message::Mailboxes>()
            .map(|m| m.into_iter().collect())
            .map_err(|e| e.to_string())
    }

    /// How webhook deliveries behave, checked at load.
    pub fn webhook_settings(&self) -> orderly_worker::WebhookSettings {
        let h = &self.webhooks;
        orderly_worker::WebhookSettings {
            allow_private: h.allow_private,
            timeout: std::time::Duration::from_secs(h.timeout_secs),
            retry_schedule: parse_durations(&h.retry_schedule).unwrap_or_default(),
            per_endpoint_concurrency: h.per_endpoint_concurrency,
            disable_after: std::time::Duration::from_secs(h.disable_after_hours * 3_600),
            response_excerpt_bytes: h.response_excerpt_bytes,
        }
    }

    /// The configuration as TOML, with secrets masked.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot print: {e}\n"))
    }
}

/// The `key → value` overrides that the `ORDERLY_*` variables ask for: the short names in
/// [`SHORT_ENV_NAMES`], and `ORDERLY_SECTION__KEY` for any key.
fn env_overrides(env: impl IntoIterator<Item = (String, String)>) -> BTreeMap<String, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn load(env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::load_from(
            None,
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn retry_schedules_parse_with_units_and_bad_ones_name_the_key() {
        assert_eq!(
            parse_durations("5s 5m 2h 1d").unwrap(),
            [5, 300, 7_200, 86_400].map(std::time::Duration::from_secs)
        );
        assert!(parse_durations("5 minutes").is_err());
        let error = load(&[("ORDERLY_WEBHOOKS__RETRY_SCHEDULE", "5x")]).unwrap_err();
        assert!(
            error.to_string().contains("webhooks.retry_schedule"),
            "{error}"
        );
        let error = load(&[("ORDERLY_MAIL_OPERATORS", "not a mailbox")]).unwrap_err();
        assert!(error.to_string().contains("mail.operators"), "{error}");
        let config = load(&[
            (
                "ORDERLY_MAIL_OPERATORS",
                "ops@shop.example, Ana <ana@shop.example>",
            ),
            ("ORDERLY_WEBHOOKS_ALLOW_PRIVATE", "true"),
        ])
        .unwrap();
        assert_eq!(config.mail_operators().unwrap().len(), 2);
        assert!(config.webhooks.allow_private);
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
