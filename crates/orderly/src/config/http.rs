//! `[http]`: the API's listener, its connection and request limits, and shutdown.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::bounds::{at_most, within};

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

impl HttpConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        within(
            "http.body_limit_bytes",
            self.body_limit_bytes,
            1_024..=16 * 1_024 * 1_024,
        )?;
        within("http.max_connections", self.max_connections, 1..=65_536)?;
        let timeouts = Duration::from_millis(100)..=Duration::from_secs(300);
        within(
            "http.header_read_timeout",
            self.header_read_timeout,
            timeouts.clone(),
        )?;
        within("http.body_read_timeout", self.body_read_timeout, timeouts)?;
        within("http.max_in_flight", self.max_in_flight, 1..=65_536)?;
        within("http.anonymous_share", self.anonymous_share, 1..=90)?;
        within(
            "http.request_timeout",
            self.request_timeout,
            Duration::from_millis(100)..=Duration::from_secs(600),
        )?;
        at_most("http.auth_cache", self.auth_cache, Duration::from_secs(300))
    }
}
