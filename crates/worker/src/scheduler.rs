//! The scheduler: cron schedules that enqueue jobs. It runs in every worker; only the one
//! holding the `scheduler` lease enqueues, by a pass of the schedules use case
//! (`orderly_service::Services::enqueue_due_ticks`, where ticks, pauses and missed ticks are
//! decided) four times a second. Each tick's job has a unique key, so even two leaders at once
//! (a lease handed over mid-pass) cannot enqueue a tick twice.

use std::time::Duration;

use orderly_service::{Schedule, Services};
use orderly_storage::cause_chain;
use tokio_util::sync::CancellationToken;

/// How often the scheduler looks at the clock.
const PASS: Duration = Duration::from_millis(250);
/// How long the leader's lease lasts without renewal.
const LEASE: Duration = Duration::from_secs(10);

/// Runs the scheduler until `shutdown`.
pub async fn run(
    services: Services,
    schedules: Vec<Schedule>,
    holder: String,
    shutdown: CancellationToken,
) {
    if schedules.is_empty() {
        return;
    }
    let mut pass = tokio::time::interval(PASS);
    let mut leading = false;
    loop {
        tokio::select! {
            _ = pass.tick() => {},
            () = shutdown.cancelled() => return,
        }
        let now = orderly_domain::now();
        match services
            .store()
            .acquire_lease("scheduler", &holder, now + LEASE)
            .await
        {
            Ok(true) => {
                if !leading {
                    tracing::info!(%holder, "this worker now runs the scheduler");
                    leading = true;
                }
            }
            Ok(false) => {
                leading = false;
                continue;
            }
            Err(e) => {
                // Not leading until the lease is renewed: another worker may take it over
                // once it expires, and this one resumes only by winning it again.
                tracing::warn!(error = %cause_chain(&e), "scheduler lease check failed");
                leading = false;
                continue;
            }
        }
        if let Err(e) = services.enqueue_due_ticks(&schedules, now).await {
            tracing::warn!(error = %cause_chain(&e), "reading the paused schedules failed");
        }
    }
}
