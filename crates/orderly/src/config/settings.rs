//! Every conversion from configuration into a component's settings, in one place: what the
//! store, the cache, the rate limiter, the order writer, the HTTP layer, the console, the
//! worker and its handlers, the scheduler and the relay are built with. Nothing is defaulted
//! here: each value was given (or defaulted in `config.default.toml`) and checked at load.

use std::sync::Arc;

use orderly_domain::Currency;
use orderly_queue::kinds::AttemptLimits;
use orderly_service::Schedule;

use super::{Config, StreamRetention};

impl Config {
    /// The store currency.
    pub fn currency(&self) -> Currency {
        self.store.currency.0
    }

    /// Runs each kind of job gets: `worker.max_attempts`, else the kind's own.
    pub fn attempt_limits(&self) -> AttemptLimits {
        AttemptLimits::new(self.worker.max_attempts.clone())
    }

    /// The configured values the use cases apply.
    pub fn service_settings(&self) -> orderly_service::ServiceSettings {
        orderly_service::ServiceSettings {
            attempts: self.attempt_limits(),
            webhook_rotation_grace: whole_seconds(self.webhooks.rotation_grace),
            change_key_ttl: whole_seconds(self.orders.idempotency_ttl),
            job_limits: self.job_limits(),
        }
    }

    /// How the pool is opened, for the process `name`.
    pub fn store_options(&self, name: &'static str) -> orderly_storage::StoreOptions {
        orderly_storage::StoreOptions {
            max_connections: self.database.max_connections,
            acquire_timeout: self.database.acquire_timeout,
            application_name: name,
        }
    }

    /// The product cache's settings; `None` when `cache.enabled` is false.
    pub fn cache_settings(&self) -> Option<orderly_cache::CacheSettings> {
        let c = &self.cache;
        c.enabled.then(|| orderly_cache::CacheSettings {
            ttl: c.ttl,
            negative_ttl: c.negative_ttl,
            max_entries: c.max_entries,
            redis_url: self.redis_url(),
            redis_timeout: c.redis_timeout,
            redis_namespace: c.redis_namespace.clone(),
        })
    }

    /// The shared Redis (`cache.redis_url`), if one is configured.
    fn redis_url(&self) -> Option<String> {
        let url = self.cache.redis_url.expose();
        (!url.is_empty()).then(|| url.to_owned())
    }

    /// The rate limiter's policies (admin, storefront, anonymous) and where buckets are shared;
    /// `None` when `rate_limits.enabled` is false.
    pub fn rate_limit_policies(
        &self,
    ) -> Option<(
        [orderly_ratelimit::Policy; 3],
        Option<orderly_ratelimit::RedisSettings>,
    )> {
        use orderly_ratelimit::{Policy, Quota};
        let r = &self.rate_limits;
        let policy = |name, quota: super::QuotaConfig| Policy {
            name,
            quota: Quota {
                rate: quota.rate,
                burst: quota.burst,
            },
        };
        let redis = self
            .redis_url()
            .map(|url| orderly_ratelimit::RedisSettings {
                url,
                timeout: self.cache.redis_timeout,
                namespace: self.cache.redis_namespace.clone(),
            });
        r.enabled.then(|| {
            (
                [
                    policy("admin", r.admin),
                    policy("storefront", r.storefront),
                    policy("anonymous", r.anonymous),
                ],
                redis,
            )
        })
    }

    /// The header a trusted balancer writes the client's address into; `None`: the peer's.
    pub fn client_address_header(&self) -> Option<axum::http::HeaderName> {
        let header = &self.rate_limits.client_address_header;
        // Checked at load to be a header name when not empty.
        axum::http::HeaderName::from_bytes(header.as_bytes()).ok()
    }

    /// How orders are batched.
    pub fn order_writer_settings(&self) -> orderly_storage::OrderWriterSettings {
        let o = &self.orders;
        orderly_storage::OrderWriterSettings {
            idempotency_ttl: whole_seconds(o.idempotency_ttl),
            max_batch: o.max_batch,
            queue: o.queue,
            writers: o.writers,
            write_timeout: self.database.write_timeout,
            max_queue_wait: o.max_queue_wait,
            queue_wait_target: o.queue_wait_target,
            queue_wait_interval: o.queue_wait_interval,
        }
    }

    /// What the HTTP layer needs beyond its state.
    pub fn http_settings(&self) -> orderly_http::HttpSettings {
        let h = &self.http;
        orderly_http::HttpSettings {
            currency: self.currency(),
            body_limit: h.body_limit_bytes,
            body_read_timeout: h.body_read_timeout,
            request_timeout: h.request_timeout,
            max_in_flight: h.max_in_flight,
            anonymous_in_flight: (h.max_in_flight * usize::from(h.anonymous_share) / 100).max(1),
            webhooks_allow_private: self.webhooks.allow_private,
            relay_lag_threshold: self.relay_settings().map(|_| self.events.lag_threshold),
            console: self.console_settings(),
        }
    }

    /// The console's settings; `None` when `console.enabled` is false.
    pub fn console_settings(&self) -> Option<Arc<orderly_http::console::ConsoleSettings>> {
        self.console.enabled.then(|| {
            Arc::new(orderly_http::console::ConsoleSettings {
                session_ttl: whole_seconds(self.console.session_ttl),
                secure_cookie: self.console.secure_cookie,
                schedules: self.schedules().into_iter().map(Arc::new).collect(),
                receipt_domain: self.mail.from.email.domain().to_owned(),
            })
        })
    }

    /// How the worker runs.
    pub fn worker_settings(&self) -> orderly_queue::WorkerSettings {
        let w = &self.worker;
        orderly_queue::WorkerSettings {
            id: orderly_queue::worker_id(),
            queues: w.queues.iter().map(|(q, c)| (q.clone(), *c)).collect(),
            local_queue: w.local_queue,
            lease: w.lease,
            poll_interval: w.poll_interval,
            shutdown_grace: w.shutdown_grace,
            job_timeout: w.job_timeout,
            backoff_base: w.backoff_base,
            backoff_max: w.backoff_max,
            completed: if w.keep_completed {
                orderly_queue::Completed::Kept
            } else {
                orderly_queue::Completed::Deleted
            },
            limits: self.job_limits(),
        }
    }

    /// The fleet-wide limits on jobs, the deliveries' per-endpoint limit included.
    pub fn job_limits(&self) -> orderly_queue::limits::Limits {
        self.worker
            .limits
            .limits(self.webhooks.per_endpoint_concurrency)
    }

    /// How mail is sent.
    pub fn mail_settings(&self) -> orderly_worker::MailSettings {
        let smtp_url = self.mail.smtp_url.expose();
        orderly_worker::MailSettings {
            smtp_url: (!smtp_url.is_empty()).then(|| smtp_url.to_owned()),
            outbox: self.mail.outbox.clone(),
            from: self.mail.from.clone(),
            timeout: self.mail.timeout,
        }
    }

    /// The schedules, as the scheduler runs them.
    pub fn schedules(&self) -> Vec<Schedule> {
        let attempts = self.attempt_limits();
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
            breaker: orderly_domain::breaker::BreakerPolicy {
                failures: h.breaker_failures,
                cool_down: h.breaker_cool_down,
                // A probe that has not reported after the longest attempt (and a margin for
                // recording it) is given up, and another may go.
                probe_lease: h.timeout + std::time::Duration::from_secs(5),
            },
        }
    }
}

/// `duration` to the second, as `time` counts it. The durations converted here are bounded at
/// load (to 7, 30 and 365 days), far below `i64::MAX` seconds.
fn whole_seconds(duration: std::time::Duration) -> time::Duration {
    time::Duration::seconds(i64::try_from(duration.as_secs()).unwrap_or(i64::MAX))
}
