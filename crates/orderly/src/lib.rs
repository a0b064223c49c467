//! The `orderly` service as a library: configuration, telemetry, the application that wires
//! storage and HTTP together, and the command-line commands. `main.rs` only parses arguments
//! and calls into here, so tests start exactly what operators run.

pub mod app;
pub mod bench;
pub mod cli;
pub mod commands;
pub mod config;
pub mod metrics;
pub mod telemetry;

pub use app::{AppError, Application, Roles};
pub use config::Config;
