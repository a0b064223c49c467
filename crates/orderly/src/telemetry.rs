//! Logs and traces. Logs: `tracing` lines as JSON (for machines) or text (for people), filtered
//! by the configured filter or `RUST_LOG`. Traces: the same spans exported as OpenTelemetry
//! spans over OTLP/HTTP when `telemetry.otlp_endpoint` is set, nothing when it is not; the W3C
//! trace-context propagator is installed either way, so trace ids travel with requests and jobs
//! whenever a trace exists.
//!
//! Log lines are handed to a background thread that writes them (`tracing-appender`), so a
//! request never waits on a write to stdout. The hand-over queue holds at most
//! [`LOG_QUEUE_LINES`] lines; beyond that, lines are dropped rather than slowing requests
//! down (a full queue means the log consumer cannot keep up, and serving matters more).

use std::io::IsTerminal;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::{LogConfig, LogFormat, TelemetryConfig};

/// Lines waiting to be written, at most: about four seconds of the order benchmark's peak
/// (one line a request) with stdout stalled. The queue's slots are allocated, and touched, up
/// front (32 bytes each): 65,536 of them were 2 MB of the idle process's resident memory.
pub const LOG_QUEUE_LINES: usize = 16_384;

/// Where log lines go: servers log to stdout; operator commands keep stdout for their output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTarget {
    Stdout,
    Stderr,
}

/// Keeps the log writer and the trace exporter alive; dropping it flushes both.
#[derive(Debug)]
pub struct TelemetryGuard {
    _log: WorkerGuard,
    traces: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.traces.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Installs the global subscriber and propagator. Call once, early in `main`, and keep the
/// guard until the end.
pub fn init(log: &LogConfig, telemetry: &TelemetryConfig, target: LogTarget) -> TelemetryGuard {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(&log.filter));
    let is_terminal = match target {
        LogTarget::Stdout => std::io::stdout().is_terminal(),
        LogTarget::Stderr => std::io::stderr().is_terminal(),
    };
    let json = match log.format {
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
    let lines: Box<dyn Layer<Registry> + Send + Sync> = if json {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .with_writer(writer)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_ansi(is_terminal)
            .with_writer(writer)
            .boxed()
    };
    let traces = tracer_provider(telemetry);
    let spans = traces
        .as_ref()
        .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer("orderly")));
    // Already installed (tests start several apps in one process): keep the first.
    let _ = tracing_subscriber::registry()
        .with(lines)
        .with(spans)
        .with(filter)
        .try_init();
    TelemetryGuard {
        _log: guard,
        traces,
    }
}

/// The OTLP exporter, when an endpoint is configured. Export runs on a background thread in
/// batches; a collector that is down costs dropped spans, never a slower request.
fn tracer_provider(config: &TelemetryConfig) -> Option<SdkTracerProvider> {
    if config.otlp_endpoint.is_empty() {
        return None;
    }
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(&config.otlp_endpoint)
        .build()
    {
        Ok(exporter) => exporter,
        Err(e) => {
            eprintln!("orderly: traces disabled, the OTLP exporter could not be built: {e}");
            return None;
        }
    };
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(config.service_name.clone())
        .build();
    Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build(),
    )
}
