//! The effective configuration: the embedded defaults (`config.default.toml`), then an optional
//! TOML file, then `ORDERLY_*` environment variables. Every value is parsed into its type at
//! load (durations such as `"30s"`, enums, mailboxes, cron expressions, time zones), then
//! checked against its bounds; a bad value stops the start with a message naming the key and
//! the value. The defaults live in `config.default.toml` alone.

mod env;
mod values;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use config::{Config as Layers, File, FileFormat};
use lettre::message::Mailbox;
use orderly_domain::Currency;
use orderly_service::{CronPattern, Missed, Schedule, Zone};
use serde::{Deserialize, Serialize};

use self::values::text;
pub use self::values::{CurrencySetting, Mailboxes, RetrySchedule, SecretUrl};

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
    /// After SIGTERM, how long the process keeps serving with `/readyz` at `503`, so load
    /// balancers take it out before it stops accepting.
    #[serde(with = "humantime_serde")]
    pub drain: Duration,
    /// How long in-flight requests get to finish once the process stops accepting.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// How long a verified API key is trusted without a database lookup (0s: never).
    #[serde(with = "humantime_serde")]
    pub auth_cache: Duration,
    /// Most HTTP connections open at once; at the cap new ones wait to be accepted.
    pub max_connections: usize,
    /// Longest wait for a request's whole header, and longest idle time between requests on
    /// a kept-alive connection; then the connection is closed.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Longest a request body may take to arrive, in all.
    #[serde(with = "humantime_serde")]
    pub body_read_timeout: Duration,
    /// Longest a request may take to be answered; then `503 request_timeout`.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Most API requests answered at once; past it they are shed (`503 overloaded`).
    pub max_in_flight: usize,
    /// The percentage of `max_in_flight` that requests without a verified key or console
    /// session may hold; the rest is kept for keyed callers.
    pub anonymous_share: u8,
}

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

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OrdersConfig {
    /// How long an `Idempotency-Key` is remembered.
    #[serde(with = "humantime_serde")]
    pub idempotency_ttl: Duration,
    /// Most orders in one group-commit transaction.
    pub max_batch: usize,
    /// Most orders waiting for a writer.
    pub queue: usize,
    /// Parallel writer transactions on PostgreSQL.
    pub writers: usize,
    /// Longest an order may wait for a writer before it is shed.
    #[serde(with = "humantime_serde")]
    pub max_queue_wait: Duration,
    /// The wait above which a standing order queue sheds.
    #[serde(with = "humantime_serde")]
    pub queue_wait_target: Duration,
    /// How long every order must wait past the target for the queue to count as standing.
    #[serde(with = "humantime_serde")]
    pub queue_wait_interval: Duration,
    /// How long a pending order may wait for payment before it is expired.
    #[serde(with = "humantime_serde")]
    pub payment_timeout: Duration,
}

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
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    #[serde(with = "humantime_serde")]
    pub job_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub backoff_base: Duration,
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// Completed jobs kept for `retention` (true) or deleted as they complete (false).
    pub keep_completed: bool,
    /// Job kind → attempts before discarding, where it should differ from the kind's own.
    pub max_attempts: BTreeMap<String, i32>,
}

impl WorkerConfig {
    /// Runs allowed to a job of `kind`: the configured limit, else the kind's own.
    pub fn attempt_limits(&self) -> orderly_queue::kinds::AttemptLimits {
        orderly_queue::kinds::AttemptLimits::new(self.max_attempts.clone())
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Five fields, or six with seconds first.
    #[serde(with = "text")]
    pub cron: CronPattern,
    /// The job kind each tick enqueues.
    pub job: String,
    /// `skip` or `run_once`.
    #[serde(with = "text", default = "skip")]
    pub missed: Missed,
    /// `UTC`, a fixed offset such as `+02:00`, or an IANA name such as `Europe/Lisbon`.
    #[serde(with = "text", default = "utc")]
    pub timezone: Zone,
}

fn skip() -> Missed {
    Missed::Skip
}

fn utc() -> Zone {
    Zone::utc()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    /// SMTP server URL; empty means write `.eml` files to `outbox`. May hold a password.
    pub smtp_url: SecretUrl,
    pub outbox: PathBuf,
    /// The sender mailbox, `Name <address>`.
    #[serde(
        deserialize_with = "values::mailbox",
        serialize_with = "text::serialize"
    )]
    pub from: Mailbox,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Mailboxes that get operator mail, comma-separated.
    #[serde(with = "text")]
    pub operators: Mailboxes,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReportsConfig {
    pub top_products: u32,
    pub low_stock: i64,
}

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

/// The outbox relayed to NATS JetStream.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    /// The NATS server (`nats://host:4222`); empty relays nothing.
    pub nats_url: SecretUrl,
    /// Each event is published to `<subject_prefix>.<type>`.
    pub subject_prefix: String,
    /// The JetStream stream, created when missing with the settings below.
    pub stream: String,
    /// `limits`, `interest` or `workqueue`.
    pub retention: StreamRetention,
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
    #[serde(with = "humantime_serde")]
    pub duplicate_window: Duration,
    /// Publishes awaiting the server's acknowledgement at once.
    pub max_in_flight: usize,
    /// Readiness reports the relay `degraded` when the oldest event not yet relayed is
    /// older than this (or the relay is failing).
    #[serde(with = "humantime_serde")]
    pub lag_threshold: Duration,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    pub allow_private: bool,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Waits between attempts, such as `5s 5m 2h`.
    #[serde(with = "text")]
    pub retry_schedule: RetrySchedule,
    pub per_endpoint_concurrency: usize,
    #[serde(with = "humantime_serde")]
    pub disable_after: Duration,
    pub response_excerpt_bytes: usize,
    #[serde(with = "humantime_serde")]
    pub rotation_grace: Duration,
    #[serde(with = "humantime_serde")]
    pub event_retention: Duration,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// The store's ISO 4217 currency.
    #[serde(with = "text")]
    pub currency: CurrencySetting,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `info,orderly_storage=debug`.
    pub filter: String,
}

/// The JetStream stream's retention policy, as NATS names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamRetention {
    Limits,
    Interest,
    Workqueue,
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

/// A bounds check that failed: the key, the value as written, and what it must be.
fn invalid(key: &'static str, value: impl std::fmt::Debug, message: &str) -> ConfigError {
    ConfigError::Invalid {
        key,
        value: format!("{value:?}"),
        message: message.to_owned(),
    }
}

/// A duration as it is written in configuration (`"1h 30m"`).
fn written(duration: Duration) -> String {
    humantime_serde::re::humantime::format_duration(duration).to_string()
}

/// `Err(invalid(..))` unless `ok`.
fn check(
    ok: bool,
    key: &'static str,
    value: impl std::fmt::Debug,
    message: &str,
) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(invalid(key, value, message))
    }
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

    /// The bounds each value must keep, and the rules between values.
    fn validate(&self) -> Result<(), ConfigError> {
        let url = self.database.url.expose();
        check(
            orderly_storage::BackendKind::from_url(url).is_ok(),
            "database.url",
            self.database.url.redacted(),
            "must start with sqlite:// or postgres:// (env ORDERLY_DATABASE_URL)",
        )?;
        let d = &self.database;
        check(
            d.max_connections > 0,
            "database.max_connections",
            d.max_connections,
            "must be at least 1",
        )?;
        check(
            (Duration::from_millis(100)..=Duration::from_secs(60)).contains(&d.acquire_timeout),
            "database.acquire_timeout",
            written(d.acquire_timeout),
            "must be between 100ms and 1m",
        )?;
        check(
            (Duration::from_secs(1)..=Duration::from_secs(600)).contains(&d.write_timeout),
            "database.write_timeout",
            written(d.write_timeout),
            "must be between 1s and 10m",
        )?;
        let h = &self.http;
        check(
            (1_024..=16 * 1_024 * 1_024).contains(&h.body_limit_bytes),
            "http.body_limit_bytes",
            h.body_limit_bytes,
            "must be between 1024 and 16777216",
        )?;
        check(
            (1..=65_536).contains(&h.max_connections),
            "http.max_connections",
            h.max_connections,
            "must be between 1 and 65536",
        )?;
        check(
            (Duration::from_millis(100)..=Duration::from_secs(300))
                .contains(&h.header_read_timeout),
            "http.header_read_timeout",
            written(h.header_read_timeout),
            "must be between 100ms and 5m",
        )?;
        check(
            (Duration::from_millis(100)..=Duration::from_secs(300)).contains(&h.body_read_timeout),
            "http.body_read_timeout",
            written(h.body_read_timeout),
            "must be between 100ms and 5m",
        )?;
        check(
            (1..=65_536).contains(&h.max_in_flight),
            "http.max_in_flight",
            h.max_in_flight,
            "must be between 1 and 65536",
        )?;
        check(
            (1..=90).contains(&h.anonymous_share),
            "http.anonymous_share",
            h.anonymous_share,
            "must be a percentage between 1 and 90",
        )?;
        check(
            (Duration::from_millis(100)..=Duration::from_secs(600)).contains(&h.request_timeout),
            "http.request_timeout",
            written(h.request_timeout),
            "must be between 100ms and 10m",
        )?;
        check(
            h.auth_cache <= Duration::from_secs(300),
            "http.auth_cache",
            written(h.auth_cache),
            "must be at most 5m",
        )?;
        let o = &self.orders;
        check(
            (Duration::from_secs(60)..=Duration::from_secs(30 * 86_400))
                .contains(&o.idempotency_ttl),
            "orders.idempotency_ttl",
            written(o.idempotency_ttl),
            "must be between 1m and 30days",
        )?;
        check(
            (1..=1_000).contains(&o.max_batch),
            "orders.max_batch",
            o.max_batch,
            "must be between 1 and 1000",
        )?;
        check(
            (1..=100_000).contains(&o.queue),
            "orders.queue",
            o.queue,
            "must be between 1 and 100000",
        )?;
        check(
            (1..=64).contains(&o.writers),
            "orders.writers",
            o.writers,
            "must be between 1 and 64",
        )?;
        check(
            (Duration::from_millis(1)..=Duration::from_secs(60)).contains(&o.max_queue_wait),
            "orders.max_queue_wait",
            written(o.max_queue_wait),
            "must be between 1ms and 60s",
        )?;
        check(
            (Duration::from_millis(1)..=o.max_queue_wait).contains(&o.queue_wait_target),
            "orders.queue_wait_target",
            written(o.queue_wait_target),
            "must be between 1ms and orders.max_queue_wait",
        )?;
        check(
            (Duration::from_millis(1)..=Duration::from_secs(60)).contains(&o.queue_wait_interval),
            "orders.queue_wait_interval",
            written(o.queue_wait_interval),
            "must be between 1ms and 60s",
        )?;
        check(
            !o.payment_timeout.is_zero(),
            "orders.payment_timeout",
            written(o.payment_timeout),
            "must be above zero",
        )?;
        let c = &self.cache;
        check(
            !c.ttl.is_zero(),
            "cache.ttl",
            written(c.ttl),
            "must be above zero",
        )?;
        check(
            !c.negative_ttl.is_zero(),
            "cache.negative_ttl",
            written(c.negative_ttl),
            "must be above zero",
        )?;
        check(
            c.max_entries > 0,
            "cache.max_entries",
            c.max_entries,
            "must be above zero",
        )?;
        check(
            (Duration::from_millis(1)..=Duration::from_secs(5)).contains(&c.redis_timeout),
            "cache.redis_timeout",
            written(c.redis_timeout),
            "must be between 1ms and 5s",
        )?;
        let redis = c.redis_url.expose();
        check(
            redis.is_empty() || redis.starts_with("redis://") || redis.starts_with("rediss://"),
            "cache.redis_url",
            c.redis_url.redacted(),
            "must start with redis:// (env ORDERLY_REDIS_URL)",
        )?;
        let r = &self.rate_limits;
        for (name, quota) in [
            ("rate_limits.admin", r.admin),
            ("rate_limits.storefront", r.storefront),
            ("rate_limits.anonymous", r.anonymous),
        ] {
            check(
                (1..=1_000_000).contains(&quota.rate) && (1..=1_000_000).contains(&quota.burst),
                name,
                format!("{{ rate = {}, burst = {} }}", quota.rate, quota.burst),
                "rate and burst must be between 1 and 1000000",
            )?;
        }
        check(
            r.client_address_header.is_empty()
                || axum::http::HeaderName::from_bytes(r.client_address_header.as_bytes()).is_ok(),
            "rate_limits.client_address_header",
            &r.client_address_header,
            "must be a header name, such as x-forwarded-for",
        )?;
        check(
            (1..=10_000_000).contains(&r.max_tracked),
            "rate_limits.max_tracked",
            r.max_tracked,
            "must be between 1 and 10000000",
        )?;
        check(
            (Duration::from_secs(60)..=Duration::from_secs(7 * 24 * 3_600))
                .contains(&self.console.session_ttl),
            "console.session_ttl",
            written(self.console.session_ttl),
            "must be between 1m and 7days",
        )?;
        for (name, schedule) in &self.schedules {
            check(
                orderly_queue::kinds::KindInfo::named(&schedule.job).is_some(),
                "schedules",
                format!("{name}.job = {}", schedule.job),
                "must name a job kind",
            )?;
        }
        let w = &self.worker;
        check(
            !w.queues.is_empty() && w.queues.values().all(|c| (1..=1_000).contains(c)),
            "worker.queues",
            &w.queues,
            "must name at least one queue, each running 1 to 1000 jobs at once",
        )?;
        check(
            (1..=10_000).contains(&w.local_queue),
            "worker.local_queue",
            w.local_queue,
            "must be between 1 and 10000",
        )?;
        check(
            (Duration::from_secs(2)..=Duration::from_secs(3_600)).contains(&w.lease),
            "worker.lease",
            written(w.lease),
            "must be between 2s and 1h",
        )?;
        check(
            (Duration::from_millis(10)..=Duration::from_secs(60)).contains(&w.poll_interval),
            "worker.poll_interval",
            written(w.poll_interval),
            "must be between 10ms and 1m",
        )?;
        check(
            !w.job_timeout.is_zero(),
            "worker.job_timeout",
            written(w.job_timeout),
            "must be above zero",
        )?;
        check(
            !w.backoff_base.is_zero(),
            "worker.backoff_base",
            written(w.backoff_base),
            "must be above zero",
        )?;
        check(
            w.backoff_max >= w.backoff_base,
            "worker.backoff_max",
            written(w.backoff_max),
            "must be at least worker.backoff_base",
        )?;
        check(
            w.max_attempts.values().all(|n| (1..=100).contains(n)),
            "worker.max_attempts",
            &w.max_attempts,
            "each must be between 1 and 100",
        )?;
        let smtp = self.mail.smtp_url.expose();
        check(
            smtp.is_empty() || smtp.starts_with("smtp://") || smtp.starts_with("smtps://"),
            "mail.smtp_url",
            self.mail.smtp_url.redacted(),
            "must start with smtp:// or smtps:// (env ORDERLY_SMTP_URL)",
        )?;
        check(
            !self.mail.timeout.is_zero(),
            "mail.timeout",
            written(self.mail.timeout),
            "must be above zero",
        )?;
        let h = &self.webhooks;
        let schedule = &h.retry_schedule.0;
        check(
            (1..=20).contains(&schedule.len()),
            "webhooks.retry_schedule",
            h.retry_schedule.to_string(),
            "must hold 1 to 20 waits",
        )?;
        let total: Duration = schedule.iter().sum();
        check(
            total < h.event_retention,
            "webhooks.event_retention",
            written(h.event_retention),
            "must outlast the whole retry schedule",
        )?;
        check(
            (Duration::from_secs(1)..=Duration::from_secs(120)).contains(&h.timeout),
            "webhooks.timeout",
            written(h.timeout),
            "must be between 1s and 2m",
        )?;
        check(
            (1..=100).contains(&h.per_endpoint_concurrency),
            "webhooks.per_endpoint_concurrency",
            h.per_endpoint_concurrency,
            "must be between 1 and 100",
        )?;
        check(
            (1..=65_536).contains(&h.response_excerpt_bytes),
            "webhooks.response_excerpt_bytes",
            h.response_excerpt_bytes,
            "must be between 1 and 65536",
        )?;
        check(
            !h.disable_after.is_zero(),
            "webhooks.disable_after",
            written(h.disable_after),
            "must be above zero",
        )?;
        check(
            self.reports.top_products <= 100,
            "reports.top_products",
            self.reports.top_products,
            "must be at most 100",
        )?;
        let e = &self.events;
        let nats = e.nats_url.expose();
        check(
            nats.is_empty() || nats.starts_with("nats://") || nats.starts_with("tls://"),
            "events.nats_url",
            e.nats_url.redacted(),
            "must be empty or a nats:// or tls:// URL",
        )?;
        let token = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        check(
            e.subject_prefix.split('.').all(token),
            "events.subject_prefix",
            &e.subject_prefix,
            "must be dot-separated names of letters, digits, - and _",
        )?;
        check(
            token(&e.stream),
            "events.stream",
            &e.stream,
            "must be letters, digits, - and _",
        )?;
        check(
            !e.duplicate_window.is_zero() && e.duplicate_window <= e.max_age,
            "events.duplicate_window",
            written(e.duplicate_window),
            "must be above zero and at most events.max_age",
        )?;
        check(
            (1..=10_000).contains(&e.max_in_flight),
            "events.max_in_flight",
            e.max_in_flight,
            "must be between 1 and 10000",
        )?;
        let otlp = &self.telemetry.otlp_endpoint;
        check(
            otlp.is_empty() || otlp.starts_with("http://") || otlp.starts_with("https://"),
            "telemetry.otlp_endpoint",
            otlp,
            "must be an http:// or https:// URL (env ORDERLY_OTLP_ENDPOINT)",
        )?;
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.filter) {
            return Err(invalid("log.filter", &self.log.filter, &e.to_string()));
        }
        Ok(())
    }

    /// The store currency.
    pub fn currency(&self) -> Currency {
        self.store.currency.0
    }

    /// The schedules, as the scheduler runs them.
    pub fn schedules(&self) -> Vec<Schedule> {
        let attempts = self.worker.attempt_limits();
        self.schedules
            .iter()
            .map(|(name, s)| {
                Schedule::new(
                    name,
                    s.cron.clone(),
                    &s.job,
                    s.missed,
                    s.timezone,
                    attempts.named(&s.job),
                )
            })
            .collect()
    }

    /// `orders.idempotency_ttl` as the order writer takes it. Validated to at most 30 days, so
    /// the whole seconds always fit.
    pub fn idempotency_ttl(&self) -> time::Duration {
        time::Duration::seconds(self.orders.idempotency_ttl.as_secs() as i64)
    }

    /// Where and how events are relayed; `None` when `events.nats_url` is empty.
    pub fn relay_settings(&self) -> Option<orderly_worker::events::RelaySettings> {
        let e = &self.events;
        if e.nats_url.expose().is_empty() {
            return None;
        }
        use orderly_worker::events::RetentionPolicy;
        Some(orderly_worker::events::RelaySettings {
            url: e.nats_url.expose().to_owned(),
            subject_prefix: e.subject_prefix.clone(),
            stream: e.stream.clone(),
            retention: match e.retention {
                StreamRetention::Limits => RetentionPolicy::Limits,
                StreamRetention::Interest => RetentionPolicy::Interest,
                StreamRetention::Workqueue => RetentionPolicy::WorkQueue,
            },
            max_age: e.max_age,
            duplicate_window: e.duplicate_window,
            max_in_flight: e.max_in_flight,
        })
    }

    /// How webhook deliveries behave.
    pub fn webhook_settings(&self) -> orderly_worker::WebhookSettings {
        let h = &self.webhooks;
        orderly_worker::WebhookSettings {
            allow_private: h.allow_private,
            timeout: h.timeout,
            retry_schedule: h.retry_schedule.0.clone(),
            per_endpoint_concurrency: h.per_endpoint_concurrency,
            disable_after: h.disable_after,
            response_excerpt_bytes: h.response_excerpt_bytes,
        }
    }

    /// The configuration as TOML, with secrets masked.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot print: {e}\n"))
    }
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
