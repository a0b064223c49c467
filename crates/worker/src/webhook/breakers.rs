//! The endpoints' circuit breakers in metrics: `webhook_breaker_state` (0 closed, 1 half-open,
//! 2 open) and `webhook_breaker_open_seconds` (how long it has been open, 0 when closed) per
//! endpoint, read from the endpoints' rows by the activity sampler from a worker's start, and
//! `webhook_breaker_transitions_total` per endpoint and state reached, counted by the worker
//! that made the change (each series exported at zero from the start).

use orderly_domain::breaker::{Breaker, BreakerState};
use orderly_storage::{Store, StoreError};
use uuid::Uuid;

/// Counts a change of an endpoint's breaker to `to`, and sets its state gauge.
pub(super) fn count_transition(endpoint: Uuid, to: BreakerState) {
    let endpoint = endpoint.to_string();
    metrics::counter!("webhook_breaker_transitions_total", "endpoint" => endpoint.clone(), "to" => to.as_str())
        .increment(1);
    metrics::gauge!("webhook_breaker_state", "endpoint" => endpoint).set(to.gauge());
}

/// Sets every endpoint's breaker gauges as its row says, and makes sure its transition
/// counters exist.
pub async fn export_breaker_metrics(store: &Store) -> Result<(), StoreError> {
    let now = orderly_domain::now();
    for (id, breaker) in store.webhook_breakers().await? {
        let endpoint = id.to_string();
        metrics::gauge!("webhook_breaker_state", "endpoint" => endpoint.clone())
            .set(breaker.state.gauge());
        metrics::gauge!("webhook_breaker_open_seconds", "endpoint" => endpoint.clone())
            .set(open_seconds(&breaker, now));
        for to in BreakerState::ALL {
            metrics::counter!("webhook_breaker_transitions_total", "endpoint" => endpoint.clone(), "to" => to.as_str())
                .increment(0);
        }
    }
    Ok(())
}

/// How long `breaker` has been open (or half-open) at `now`; 0 when closed.
fn open_seconds(breaker: &Breaker, now: time::OffsetDateTime) -> f64 {
    match (breaker.state, breaker.opened_at) {
        (BreakerState::Closed, _) | (_, None) => 0.0,
        (_, Some(since)) => (now - since).as_seconds_f64().max(0.0),
    }
}
