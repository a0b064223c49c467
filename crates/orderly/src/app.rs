//! The running service: [`Application::build`] connects the database, applies migrations,
//! binds the listener (port 0 picks a free one, as tests do) and prepares the worker;
//! [`Application::serve`] runs the roles asked for until the shutdown token is cancelled, then
//! drains: HTTP within its grace period, the worker within its own.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use orderly_http::AppState;
use orderly_queue::kinds;
use orderly_queue::{Registry, Worker};
use orderly_service::{OrderPlacement, Services};
use orderly_storage::{OrderWriter, Store, StoreError, WriteLoop};
use orderly_worker::{Mailer, NoopHandler, OperatorNotifier, ReceiptSender, SalesSummaryReporter};
use tokio::net::TcpListener;

use crate::serve::ConnectionLimits;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::servers::{Stopping, serve_http, serve_ops};
use crate::supervise::Supervisor;

/// Why the service could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot open the database")]
    Connect(#[source] StoreError),
    #[error("cannot migrate the database")]
    Migrate(#[source] StoreError),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the HTTP server failed")]
    Serve(#[source] std::io::Error),
    #[error("cannot set up mail")]
    Mail(#[source] orderly_worker::MailError),
    #[error("a task stopped")]
    Tasks(#[source] crate::supervise::TasksFailed),
    #[error("cannot set up the cache")]
    Cache(#[source] orderly_cache::CacheError),
    #[error("cannot set up the rate limits")]
    RateLimits(#[source] orderly_ratelimit::SetupError),
    #[error("cannot set up webhook delivery")]
    Webhooks(#[source] orderly_worker::webhook::ClientError),
}

/// Which parts of the service a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub api: bool,
    pub worker: bool,
}

impl Roles {
    pub const ALL: Roles = Roles {
        api: true,
        worker: true,
    };
    pub const API: Roles = Roles {
        api: true,
        worker: false,
    };
    pub const WORKER: Roles = Roles {
        api: false,
        worker: true,
    };
}

/// Opens the store the configuration names, for the process `name` (what PostgreSQL shows
/// as its sessions' `application_name`: `orderly api`, `orderly worker`, …).
pub async fn open_store(config: &Config, name: &'static str) -> Result<Store, AppError> {
    Store::connect(config.database.url.expose(), &config.store_options(name))
        .await
        .map_err(AppError::Connect)
}

/// The product cache the configuration asks for, if any.
pub fn product_cache(config: &Config) -> Result<Option<orderly_cache::ProductCache>, AppError> {
    config
        .cache_settings()
        .map(|settings| orderly_cache::ProductCache::new(settings).map_err(AppError::Cache))
        .transpose()
}

/// The rate limits the configuration asks for, if any.
pub fn rate_limits(config: &Config) -> Result<Option<orderly_http::RateLimits>, AppError> {
    let Some((policies, redis)) = config.rate_limit_policies() else {
        return Ok(None);
    };
    let limiter =
        orderly_ratelimit::RateLimiter::new(&policies, config.rate_limits.max_tracked, redis)
            .map_err(AppError::RateLimits)?;
    let [admin, storefront, anonymous] = policies;
    Ok(Some(orderly_http::RateLimits {
        limiter,
        admin,
        storefront,
        anonymous,
        client_address_header: config.client_address_header(),
    }))
}

/// The job handlers every worker runs.
pub fn registry(services: &Services, config: &Config) -> Result<Registry, AppError> {
    let store = services.store();
    let mailer = Mailer::new(&config.mail_settings()).map_err(AppError::Mail)?;
    let operators = config.mail.operators.0.clone();
    let webhooks = orderly_worker::WebhookDeliverer::new(store.clone(), config.webhook_settings())
        .map_err(AppError::Webhooks)?;
    Ok(Registry::new()
        .register::<kinds::SendReceipt>(ReceiptSender::new(store.clone(), mailer.clone()))
        .register::<kinds::NotifyCustomer>(orderly_worker::CustomerNotifier {
            store: store.clone(),
            mailer: mailer.clone(),
        })
        .register::<kinds::DeliverWebhook>(webhooks)
        .register::<kinds::NotifyOperators>(OperatorNotifier {
            mailer: mailer.clone(),
            operators: operators.clone(),
        })
        .register::<kinds::SalesSummary>(SalesSummaryReporter {
            store: store.clone(),
            mailer,
            operators,
            currency: config.store.currency.to_string(),
            top_products: config.reports.top_products,
            low_stock: config.reports.low_stock,
        })
        .register::<kinds::Noop>(NoopHandler)
        .register::<kinds::ExpireOrders>(orderly_worker::OrderExpirer {
            services: services.clone(),
            payment_timeout: config.orders.payment_timeout,
        })
        .register::<kinds::Prune>(orderly_worker::Pruner {
            store: store.clone(),
            job_retention: config.worker.retention,
            event_retention: config.webhooks.event_retention,
            relayed_only: config.relay_settings().is_some(),
            // Half the job timeout: room for the last statement and the outcome's write.
            max_run: config.worker.job_timeout / 2,
        }))
}

/// A service ready to run: database open, listener bound, worker prepared.
#[derive(Debug)]
pub struct Application {
    listener: Option<TcpListener>,
    /// Cron schedules, run by a worker process that holds the scheduler lease.
    schedules: Vec<orderly_service::Schedule>,
    /// Who holds the scheduler lease when this process leads.
    scheduler_id: String,
    /// A worker process positions events, and relays them when NATS is configured: `None`
    /// in an API-only process.
    events: Option<Option<orderly_worker::events::RelaySettings>>,
    /// `/healthz` and `/metrics` of a worker-only process.
    ops_listener: Option<TcpListener>,
    store: Store,
    /// The use cases, for the scheduler's passes.
    services: Services,
    state: Option<AppState>,
    /// The order writer's loops, run under supervision by `serve`.
    write_loops: Vec<WriteLoop>,
    worker: Option<Worker>,
    /// How long HTTP keeps serving, out of the balancer's rotation, after shutdown begins.
    drain: Duration,
    /// Then, how long in-flight requests get.
    grace: Duration,
    /// How long shutdown may take in all before what still runs is stopped.
    shutdown_deadline: Duration,
    /// How many HTTP connections, and how slow a client may be.
    connection_limits: ConnectionLimits,
}

/// Says so when a setting meant for development and tests only is on.
fn warn_of_development_settings(config: &Config) {
    if config.webhooks.allow_private {
        tracing::warn!(
            "webhooks.allow_private is on: webhooks may be sent over plain http and to \
             loopback, private and link-local addresses. Use this for development and tests \
             only."
        );
    }
}

/// The API's listener, its state and the order writer's loops.
async fn api(
    config: &Config,
    services: &Services,
) -> Result<(TcpListener, AppState, Vec<WriteLoop>), AppError> {
    let addr = config.http.listen;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| AppError::Bind { addr, source })?;
    let store = services.store();
    let (orders, loops) = OrderWriter::new(store.clone(), config.order_writer_settings());
    let state = AppState::new(orderly_http::Shared {
        services: services.clone(),
        store: store.clone(),
        placement: OrderPlacement::new(services.clone(), orders, config.currency()),
        keys: orderly_http::auth::KeyCache::new(config.http.auth_cache),
        cache: services.cache().cloned(),
        rate_limits: rate_limits(config)?,
        metrics: Some(crate::metrics::install()),
        settings: Arc::new(config.http_settings()),
        drain: orderly_http::Drain::default(),
    });
    Ok((listener, state, loops))
}

impl Application {
    pub async fn build(config: &Config, roles: Roles) -> Result<Self, AppError> {
        warn_of_development_settings(config);
        crate::install_crypto_provider();
        let name = match (roles.api, roles.worker) {
            (true, true) => "orderly run",
            (true, false) => "orderly api",
            _ => "orderly worker",
        };
        let store = open_store(config, name).await?;
        if config.database.migrate_on_start {
            store.migrate().await.map_err(AppError::Migrate)?;
        }
        // One product cache per process, shared by the API and the worker's chores: a write
        // either makes forgets the entries it changed, here and through Redis elsewhere.
        let services = Services::new(
            store.clone(),
            product_cache(config)?,
            config.service_settings(),
        );
        let settings = config.worker_settings();
        let worker_id = settings.id.clone();
        let worker = if roles.worker {
            Some(Worker::new(
                store.queue().clone(),
                registry(&services, config)?,
                settings,
            ))
        } else {
            None
        };
        let events = roles.worker.then(|| config.relay_settings());
        let schedules = if roles.worker && config.worker.scheduler {
            config.schedules()
        } else {
            Vec::new()
        };
        let (listener, state, write_loops) = if roles.api {
            let (listener, state, loops) = api(config, &services).await?;
            (Some(listener), Some(state), loops)
        } else {
            (None, None, Vec::new())
        };
        let ops_listener = if roles.worker && !roles.api {
            let addr = config.worker.metrics_listen;
            Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| AppError::Bind { addr, source })?,
            )
        } else {
            None
        };
        Ok(Self {
            listener,
            schedules,
            scheduler_id: worker_id,
            events,
            ops_listener,
            store,
            services,
            state,
            write_loops,
            worker,
            drain: if roles.api {
                config.http.drain
            } else {
                Duration::ZERO
            },
            grace: config.http.shutdown_grace,
            connection_limits: ConnectionLimits {
                max_connections: config.http.max_connections,
                header_read_timeout: config.http.header_read_timeout,
                body_read_timeout: config.http.body_read_timeout,
            },
            // Room for HTTP to drain, then for the worker's jobs and its flush.
            shutdown_deadline: config.http.drain
                + config.http.shutdown_grace
                + config.worker.shutdown_grace
                + orderly_queue::FLUSH_DEADLINE * 2
                + Duration::from_secs(5),
        })
    }

    /// The address the HTTP listener is bound to, if this process serves HTTP.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The HTTP port (0 when this process serves no HTTP).
    pub fn port(&self) -> u16 {
        self.local_addr().map_or(0, |a| a.port())
    }

    /// The use cases, as this process wired them.
    pub fn services(&self) -> &Services {
        &self.services
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The product cache this process serves reads from, if caching is on.
    pub fn cache(&self) -> Option<&orderly_cache::ProductCache> {
        self.state.as_ref().and_then(|s| s.cache.as_ref())
    }

    /// Runs until `shutdown` is cancelled, then drains and closes the database pool. Every
    /// part runs as a supervised task ([`crate::supervise`]): one that stops early stops the
    /// process, and the error names it.
    pub async fn serve(self, shutdown: CancellationToken) -> Result<(), AppError> {
        let mut tasks = Supervisor::new();
        if let Some(listener) = self.ops_listener {
            let liveness = self.worker.as_ref().map(Worker::liveness);
            tasks.spawn(
                "worker health server",
                serve_ops(listener, liveness, self.connection_limits, shutdown.clone()),
            );
        }
        if !self.schedules.is_empty() {
            let scheduler = orderly_worker::scheduler::run(
                self.services.clone(),
                self.schedules,
                self.scheduler_id.clone(),
                shutdown.clone(),
            );
            tasks.spawn("scheduler", async move {
                scheduler.await;
                Ok(())
            });
        }
        if let Some(relay) = self.events {
            let events = orderly_worker::events::run(
                self.store.clone(),
                relay,
                self.scheduler_id.clone(),
                shutdown.clone(),
            );
            tasks.spawn("events", async move {
                events.await;
                Ok(())
            });
        }
        if let Some(worker) = self.worker {
            let activity = orderly_worker::activity::run(self.services.clone(), shutdown.clone());
            tasks.spawn("activity sampler", async move {
                activity.await;
                Ok(())
            });
            let stop = shutdown.clone();
            tasks.spawn("worker", async move { Ok(worker.run(stop).await?) });
        }
        for (n, write_loop) in self.write_loops.into_iter().enumerate() {
            tasks.spawn(&format!("order writer {n}"), async move {
                write_loop.run().await;
                Ok(())
            });
        }
        let cache = self.state.as_ref().and_then(|s| s.cache.clone());
        if let (Some(listener), Some(state)) = (self.listener, self.state) {
            let stopping = Stopping {
                drain: self.drain,
                grace: self.grace,
                shutdown: shutdown.clone(),
            };
            let limits = self.connection_limits;
            tasks.spawn("http", async move {
                Ok(serve_http(listener, state, stopping, limits).await?)
            });
        }
        let result = tasks.run(shutdown, self.shutdown_deadline).await;
        if let Some(cache) = cache {
            cache.close(Duration::from_secs(1)).await;
        }
        self.store.close().await;
        result.map_err(AppError::Tasks)?;
        tracing::info!("stopped");
        Ok(())
    }
}
