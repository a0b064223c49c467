//! The HTTP server under orderly's routers. It accepts connections up to a cap and serves
//! each with hyper's HTTP/1.1, closing a connection whose request headers have not all
//! arrived within `header_read_timeout` (a slow or stalled client) or that stays idle between
//! requests that long, and failing a request body that has not arrived in full within
//! `body_read_timeout`. Written on hyper directly because `axum::serve` sets none of these
//! limits: a client sending one header byte every few seconds held its connection, and a file
//! descriptor, for ever.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use orderly_http::body_deadline::DeadlineBody;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// How many connections, and how slow a client may be.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Most connections open at once. At the cap the server stops accepting: new
    /// connections wait in the kernel's listen backlog (bounded by `somaxconn`) until one
    /// closes, which the header timeout makes happen within `header_read_timeout` even when
    /// slow or idle clients hold every slot. So a burst is served later rather than refused,
    /// and the process never runs out of file descriptors. (Closing idle kept-alive
    /// connections at the cap was tried: clients then lose requests they were sending on a
    /// connection as it closed.)
    pub max_connections: usize,
    /// Longest wait for a request's whole header, counted from the end of the previous
    /// response (or from the connection's start): it is the idle timeout of kept-alive
    /// connections too.
    pub header_read_timeout: Duration,
    /// Longest a request's body may take to arrive in full, counted from its head: then the
    /// body ends in an error the API answers `408` (see `orderly_http::body_deadline`).
    pub body_read_timeout: Duration,
}

/// After a failed `accept` (out of file descriptors, most often), how long to wait before the
/// next, so the loop does not spin while nothing can be accepted.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `router` on `listener` until `stop_accepting` is cancelled; then stops accepting,
/// closes idle connections, and waits for those with a request in progress to finish it (the
/// caller bounds that wait).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    stop_accepting: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let open = metrics::gauge!("http_connections_open");
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = stop_accepting.cancelled() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    metrics::counter!("http_accept_errors_total").increment(1);
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = stop_accepting.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        open.increment(1.0);
        let open = open.clone();
        // The peer's address, for the rate limits of clients without a key; the body's
        // deadline, so that no route waits on a trickling body for longer.
        let body_read_timeout = limits.body_read_timeout;
        let service = TowerToHyperService::new(router.clone().map_request(
            move |request: axum::http::Request<hyper::body::Incoming>| {
                let mut request = request.map(|body| DeadlineBody::new(body, body_read_timeout));
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            },
        ));
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // An error here is the client's doing (reset, timed out, malformed): nothing to
            // answer, and not worth more than a debug line.
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
            open.decrement(1.0);
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
