//! `[telemetry]`: where traces are exported.

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::bounds::check;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// OTLP/HTTP traces endpoint; empty exports nothing.
    pub otlp_endpoint: String,
    pub service_name: String,
}

impl TelemetryConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let otlp = &self.otlp_endpoint;
        check(
            otlp.is_empty() || otlp.starts_with("http://") || otlp.starts_with("https://"),
            "telemetry.otlp_endpoint",
            otlp,
            "must be an http:// or https:// URL (env ORDERLY_OTLP_ENDPOINT)",
        )
    }
}
