//! The activity sampler, one per worker process: every [`EVERY`] it reads what the fleet is
//! doing and writes it to the per-minute rollup the console charts (`orderly_queue::activity`)
//! and to the limits' metrics: the orders of this minute and the last (counted afresh: ids are
//! time-ordered), each queue's due jobs, each limit's use (for a rate, the jobs a second it let
//! start since the last look), and this process's tally of runs; and the webhook endpoints'
//! breakers to their metrics.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use orderly_db::cause_chain;
use orderly_queue::activity::minute_start;
use orderly_queue::{LimitUse, known_queues};
use orderly_service::Services;
use tokio_util::sync::CancellationToken;

/// How often the sampler looks.
pub const EVERY: Duration = Duration::from_secs(10);

/// Samples until `stop`.
pub async fn run(services: Services, stop: CancellationToken) {
    let mut admitted: HashMap<String, (Instant, f64)> = HashMap::new();
    let mut failing = false;
    loop {
        match sample(&services, &mut admitted).await {
            Ok(()) => failing = false,
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %cause_chain(e.as_ref()), "sampling the fleet's activity failed");
            }
            Err(_) => {}
        }
        tokio::select! {
            () = tokio::time::sleep(EVERY) => {},
            () = stop.cancelled() => return,
        }
    }
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

async fn sample(
    services: &Services,
    admitted: &mut HashMap<String, (Instant, f64)>,
) -> Result<(), Failure> {
    let store = services.store();
    let queue = store.queue();
    let now = orderly_domain::now();
    let this_minute = minute_start(now);
    let last_minute = this_minute - time::Duration::MINUTE;
    let orders_now = store.count_orders_between(this_minute, now).await?;
    let orders_before = store.count_orders_between(last_minute, this_minute).await?;
    queue
        .set_activity("orders", this_minute, orders_now as f64)
        .await?;
    queue
        .set_activity("orders", last_minute, orders_before as f64)
        .await?;

    let mut peaks = Vec::new();
    for name in known_queues() {
        let stats = queue.queue_stats(name).await?;
        peaks.push((format!("waiting:{name}"), stats.available as f64));
    }
    let usage = services.limit_usage().await?;
    orderly_queue::export_limit_metrics(&usage);
    for limit in &usage {
        peaks.push((series(limit), in_use(limit, admitted)));
    }
    queue.record_activity(&peaks).await?;
    crate::webhook::export_breaker_metrics(store).await?;
    Ok(())
}

/// The series a limit's use is charted as.
pub fn series(limit: &LimitUse) -> String {
    format!("limit:{}:{}", limit.scope.as_str(), limit.name)
}

/// What is charted of `limit`: jobs held, or for a rate, jobs a second let start since the
/// last sample (nothing on the first).
fn in_use(limit: &LimitUse, admitted: &mut HashMap<String, (Instant, f64)>) -> f64 {
    if !limit.scope.is_rate() {
        return limit.in_use;
    }
    let now = Instant::now();
    let previous = admitted.insert(series(limit), (now, limit.in_use));
    previous.map_or(0.0, |(at, before)| {
        let seconds = now.duration_since(at).as_secs_f64();
        if seconds > 0.0 {
            (limit.in_use - before).max(0.0) / seconds
        } else {
            0.0
        }
    })
}
