//! The HTTP servers a process runs on top of `serve.rs`: the API's, which drains on shutdown
//! (out of the balancers' rotation first, then its in-flight requests), and a worker-only
//! process's `/healthz` and `/metrics`; and the process's one shutdown signal.

use std::time::Duration;

use orderly_http::AppState;
use orderly_queue::Liveness;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::app::AppError;
use crate::serve::ConnectionLimits;

/// `/healthz` and `/metrics` of a worker-only process. `/healthz` is `503` once the worker's
/// heartbeat has not run for a lease: a supervisor should restart the process.
pub(crate) async fn serve_ops(
    listener: TcpListener,
    liveness: Option<Liveness>,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    use axum::http::StatusCode;
    let render = crate::metrics::install();
    let health = move || {
        let liveness = liveness.clone();
        async move {
            match liveness {
                Some(worker) if !worker.is_alive() => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "{{\"status\":\"down\",\"worker\":\"no heartbeat for {} s\"}}",
                        worker.since_last_beat().as_secs()
                    ),
                ),
                _ => (StatusCode::OK, "{\"status\":\"ok\"}".to_owned()),
            }
        }
    };
    let router = axum::Router::new()
        .route("/healthz", axum::routing::get(health))
        .route(
            "/metrics",
            axum::routing::get(move || {
                let render = render.clone();
                async move { (render.0)() }
            }),
        );
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving worker health and metrics");
    }
    crate::serve::serve(listener, router, limits, shutdown).await;
    Ok(())
}

/// How the HTTP server stops: when `shutdown` is cancelled it drains for `drain` (serving,
/// out of rotation), then stops accepting and gives in-flight requests `grace`.
pub(crate) struct Stopping {
    pub(crate) drain: Duration,
    pub(crate) grace: Duration,
    pub(crate) shutdown: CancellationToken,
}

pub(crate) async fn serve_http(
    listener: TcpListener,
    state: AppState,
    stopping: Stopping,
    limits: ConnectionLimits,
) -> Result<(), AppError> {
    let addr = listener.local_addr().map_err(AppError::Serve)?;
    tracing::info!(%addr, backend = state.store.kind().as_str(), "serving HTTP");
    let drain = state.drain.clone();
    let router = orderly_http::router(state);
    let stop_accepting = CancellationToken::new();
    let server = crate::serve::serve(listener, router, limits, stop_accepting.clone());
    let stop = async {
        stopping.shutdown.cancelled().await;
        drain.begin();
        if !stopping.drain.is_zero() {
            tracing::info!(
                drain_ms = stopping.drain.as_millis() as u64,
                "shutting down: /readyz answers 503; still serving while load balancers take \
                 this process out"
            );
            tokio::time::sleep(stopping.drain).await;
        }
        tracing::info!(
            grace_ms = stopping.grace.as_millis() as u64,
            "no longer accepting connections; finishing in-flight requests"
        );
        stop_accepting.cancel();
        tokio::time::sleep(stopping.grace).await;
    };
    tokio::select! {
        () = server => {}
        () = stop => tracing::warn!("shutdown grace passed; dropping open connections"),
    }
    Ok(())
}

/// A token cancelled by SIGTERM or Ctrl-C: the one shutdown signal of the process. The
/// handlers are installed before this returns, not when a task first runs: a SIGTERM that
/// comes early in the process's life (a test, an orchestrator) drains it instead of killing
/// it (seen once: a worker process ended by the signal itself).
pub fn shutdown_on_signals() -> CancellationToken {
    use tokio::signal::unix::{Signal, SignalKind, signal};
    // A signal that cannot be listened for keeps its default action (it ends the process
    // undrained); the other one still drains it.
    let listen = |kind: SignalKind, name: &str| {
        signal(kind)
            .inspect_err(|e| tracing::error!(error = %e, "cannot listen for {name}"))
            .ok()
    };
    async fn received(signal: Option<Signal>) {
        match signal {
            Some(mut signal) => {
                signal.recv().await;
            }
            None => std::future::pending().await,
        }
    }
    let (term, interrupt) = (
        listen(SignalKind::terminate(), "SIGTERM"),
        listen(SignalKind::interrupt(), "SIGINT"),
    );
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = received(term) => {},
            () = received(interrupt) => {},
        }
        cancel.cancel();
    });
    token
}
