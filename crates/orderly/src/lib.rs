//! The `orderly` service as a library: configuration, telemetry, the application that wires
//! storage and HTTP together, and the command-line commands. `main.rs` only parses arguments
//! and calls into here, so tests start exactly what operators run.

pub mod app;
pub mod bench;
pub mod cli;
pub mod commands;
pub mod config;
pub mod metrics;
pub mod serve;
pub mod servers;
pub mod supervise;
pub mod telemetry;

pub use app::{AppError, Application, Roles};
pub use config::Config;

/// Installs the process's TLS crypto provider, `ring` (the one the mailer's TLS already
/// uses), for every HTTPS client: webhook deliveries and the OTLP exporter. rustls wants one
/// per process; calling this again does nothing.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
