//! W3C trace context: continuing a caller's trace from its `traceparent` header, and handing the
//! current trace on to jobs, through the process's global propagator (the binary installs the
//! W3C one). Without an OpenTelemetry layer (no `ORDERLY_OTLP_ENDPOINT`) spans have no trace
//! ids and all of this does nothing.

use std::collections::HashMap;

use axum::http::HeaderMap;
use opentelemetry::global;
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::TraceContextExt;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Makes `span` a child of the trace named in `headers`, if any, and records its trace id.
pub fn continue_trace(span: &Span, headers: &HeaderMap) {
    let parent = global::get_text_map_propagator(|p| p.extract(&Headers(headers)));
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
    record_trace_id(span);
}

/// Records the span's trace id in its `trace_id` field, so log lines carry it.
pub fn record_trace_id(span: &Span) {
    let context = span.context();
    let span_context = context.span().span_context().clone();
    if span_context.is_valid() {
        span.record("trace_id", tracing::field::display(span_context.trace_id()));
    }
}

/// The current span's trace as a `traceparent` value, to store with a job.
pub fn current_traceparent() -> Option<String> {
    let mut carrier = HashMap::new();
    global::get_text_map_propagator(|p| p.inject_context(&Span::current().context(), &mut carrier));
    carrier.remove("traceparent")
}
