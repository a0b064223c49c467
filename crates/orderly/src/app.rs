//! The running service: [`Application::build`] connects the database, applies migrations and
//! binds the listener (port 0 picks a free one, as tests do); [`Application::serve`] answers
//! requests until the shutdown token is cancelled, then drains within the grace period.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use orderly_http::{AppState, HttpSettings};
use orderly_storage::{OrderWriter, OrderWriterSettings, Store, StoreError, StoreOptions};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;

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
}

/// Opens the store the configuration names.
pub async fn open_store(config: &Config) -> Result<Store, AppError> {
    let options = StoreOptions {
        max_connections: config.database.max_connections,
        ..StoreOptions::default()
    };
    Store::connect(config.database.url.expose(), &options)
        .await
        .map_err(AppError::Connect)
}

/// A service ready to serve: database open, listener bound.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    store: Store,
    state: AppState,
    grace: Duration,
}

impl Application {
    pub async fn build(config: &Config) -> Result<Self, AppError> {
        let store = open_store(config).await?;
        if config.database.migrate_on_start {
            store.migrate().await.map_err(AppError::Migrate)?;
        }
        let addr = config.http.listen;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| AppError::Bind { addr, source })?;
        let orders = OrderWriter::start(
            store.clone(),
            OrderWriterSettings {
                idempotency_ttl: time::Duration::seconds(config.orders.idempotency_ttl_secs as i64),
                max_batch: config.orders.max_batch,
                queue: config.orders.queue,
                writers: config.orders.writers,
            },
            Arc::new(orderly_http::render_order),
        );
        let state = AppState {
            store: store.clone(),
            orders,
            keys: orderly_http::auth::KeyCache::new(Duration::from_secs(
                config.http.auth_cache_secs,
            )),
            settings: Arc::new(HttpSettings {
                currency: config.currency(),
                body_limit: config.http.body_limit_bytes,
            }),
        };
        Ok(Self {
            listener,
            store,
            state,
            grace: Duration::from_secs(config.http.shutdown_grace_secs),
        })
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Serves until `shutdown` is cancelled; then stops accepting, lets in-flight requests
    /// finish for up to the grace period, and closes the database pool.
    pub async fn serve(self, shutdown: CancellationToken) -> Result<(), AppError> {
        let addr = self.local_addr();
        tracing::info!(%addr, backend = self.store.kind().as_str(), "serving HTTP");
        let router = orderly_http::router(self.state);
        let server = axum::serve(self.listener, router)
            .with_graceful_shutdown(shutdown.clone().cancelled_owned());
        let grace = self.grace;
        let deadline = async {
            shutdown.cancelled().await;
            tracing::info!(
                grace_secs = grace.as_secs(),
                "shutting down: draining requests"
            );
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            result = server => result.map_err(AppError::Serve)?,
            () = deadline => tracing::warn!("drain deadline passed; dropping open connections"),
        }
        self.store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// A token cancelled by SIGTERM or Ctrl-C: the one shutdown signal of the process.
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(term) => term,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot listen for SIGTERM");
                        let _ = ctrl_c.await;
                        cancel.cancel();
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {},
                _ = term.recv() => {},
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        cancel.cancel();
    });
    token
}
