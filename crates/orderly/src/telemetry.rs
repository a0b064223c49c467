//! Log output: `tracing` lines as JSON (for machines) or text (for people), filtered by the
//! configured filter or `RUST_LOG`.
//!
//! Lines are handed to a background thread that writes them (`tracing-appender`), so a
//! request never waits on a write to stdout. The hand-over queue holds at most
//! [`LOG_QUEUE_LINES`] lines; beyond that, lines are dropped rather than slowing requests
//! down (a full queue means the log consumer cannot keep up, and serving matters more).

use std::io::IsTerminal;

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Lines waiting to be written, at most.
pub const LOG_QUEUE_LINES: usize = 65_536;

/// Where log lines go: servers log to stdout; operator commands keep stdout for their output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTarget {
    Stdout,
    Stderr,
}

/// Installs the global subscriber. Call once, early in `main`, and keep the guard until the
/// end: dropping it flushes the lines still queued.
pub fn init(config: &LogConfig, target: LogTarget) -> WorkerGuard {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(&config.filter));
    let is_terminal = match target {
        LogTarget::Stdout => std::io::stdout().is_terminal(),
        LogTarget::Stderr => std::io::stderr().is_terminal(),
    };
    let json = match config.format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !is_terminal,
    };
    let builder = NonBlockingBuilder::default()
        .buffered_lines_limit(LOG_QUEUE_LINES)
        .lossy(true);
    let (writer, guard) = match target {
        LogTarget::Stdout => builder.finish(std::io::stdout()),
        LogTarget::Stderr => builder.finish(std::io::stderr()),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(is_terminal && !json)
        .with_writer(writer);
    let result = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .try_init()
    } else {
        builder.try_init()
    };
    // Already installed (tests start several apps in one process): keep the first.
    let _ = result;
    guard
}
