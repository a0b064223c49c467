//! The overview: is anything wrong right now? Orders per minute (and a chart of the last
//! hour's), this process's error ratio,
//! p99 latency and cache hit ratio, each queue's depth and oldest due job, jobs discarded in
//! the last hour, worker processes alive, webhook endpoints disabled, and the readiness of
//! each dependency. The live part is re-fetched every five seconds by the page's script.

use axum::extract::State;
use axum::response::Response;
use maud::{Markup, html};

use orderly_queue::activity::per_minute;

use super::charts::{self, Series};
use super::extract::Query;
use super::figures;
use super::layout::{Nav, NoticeQuery, PageError, fragment, notice_text, page, span, time_ago};
use super::session::Session;
use crate::AppState;
use orderly_service::Overview;

pub(crate) async fn show(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let live = live_figures(&state).await?;
    let notice = notice_text(query.notice.as_deref(), None);
    Ok(page(
        "Overview",
        Nav::Overview,
        Some(&session),
        notice.as_deref(),
        html! {
            div #live data-refresh="/console/overview/live" data-every="5000" { (live) }
        },
    ))
}

/// The live part alone, for the page's script.
pub(crate) async fn live(
    State(state): State<AppState>,
    _session: Session,
) -> Result<Response, PageError> {
    Ok(fragment(live_figures(&state).await?))
}

fn percent(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "–".into(), |r| format!("{:.1} %", r * 100.0))
}

fn tile(label: &str, value: &str, warn: bool) -> Markup {
    html! {
        div.tile.warn[warn] {
            span.label { (label) }
            span.value { (value) }
        }
    }
}

async fn live_figures(state: &AppState) -> Result<Markup, PageError> {
    let overview = state.services.overview().await?;
    let queues = state.services.queue_figures().await?;
    let (_, readiness) = crate::health::readiness(state).await;
    let traffic = state
        .metrics
        .as_ref()
        .map(|render| figures::sample(&(render.0)()));
    let activity = state.services.activity_last_hour().await?;
    let orders = Series {
        name: "orders".into(),
        values: per_minute(&activity, "orders", orderly_domain::now(), 60),
    };
    Ok(html! {
        (tiles(&overview, traffic.as_ref()))
        (charts::minutes("Orders a minute, the last hour", &[orders]))
        h2 { "Queues" }
        table {
            thead { tr { th { "Queue" } th { "State" } th.num { "Due" } th.num { "Running" } th.num { "Scheduled" } th { "Oldest due job" } } }
            tbody {
                @for queue in &queues {
                    tr {
                        td { a href="/console/queues" { (queue.name) } }
                        td { @if queue.paused.is_some() { span.badge.warn { "paused" } } @else { span.badge { "running" } } }
                        td.num { (queue.available) }
                        td.num { (queue.running) }
                        td.num { (queue.scheduled) }
                        td { @match queue.oldest_due_at { Some(t) => { "due " (time_ago(t)) } None => { "–" } } }
                    }
                }
            }
        }
        h2 { "Readiness" }
        table {
            thead { tr { th { "Dependency" } th { "Status" } th { "Backend" } th { "Detail" } } }
            tbody {
                @for (name, check) in &readiness.checks {
                    tr {
                        td { (name) }
                        td { span.badge.warn[check.status != "up" && check.status != "disabled"] { (check.status) } }
                        td { (check.backend) }
                        td { (check.error.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
        (workers(&overview))
    })
}

/// The tiles: the figures that say at a glance whether anything is wrong.
fn tiles(overview: &Overview, traffic: Option<&figures::Figures>) -> Markup {
    let alive = overview.workers_alive();
    html! {
        section.tiles {
            (tile("Orders in the last minute", &overview.orders_last_minute.to_string(), false))
            (tile("Jobs discarded in the last hour", &overview.discarded_last_hour.to_string(), overview.discarded_last_hour > 0))
            (tile("Worker processes alive", &alive.to_string(), alive == 0))
            (tile("Webhook endpoints disabled", &format!("{} of {}", overview.webhooks_disabled, overview.webhooks), overview.webhooks_disabled > 0))
            @if let Some(traffic) = traffic {
                (tile("API error ratio (5xx)", &percent(traffic.error_ratio), traffic.error_ratio.is_some_and(|r| r > 0.01)))
                (tile("API p99 latency", &traffic.p99.map_or_else(|| "–".into(), |s| if s.is_infinite() { "> 10 s".into() } else { format!("≤ {} ms", s * 1_000.0) }), false))
                (tile("Cache hit ratio", &percent(traffic.cache_hit_ratio), false))
            }
        }
        @if let Some(traffic) = traffic {
            p.hint {
                "Error ratio, latency and cache: this API process, "
                @match traffic.over {
                    Some(over) => { "over the last " (span(time::Duration::try_from(over).unwrap_or_default())) }
                    None => { "since it started" }
                }
                " (" (traffic.requests) " API requests)."
            }
        }
    }
}

fn workers(overview: &Overview) -> Markup {
    html! {
        h2 { "Worker processes" }
        @if overview.workers.is_empty() {
            p.hint { "No worker process has reported a heartbeat." }
        } @else {
            table {
                thead { tr { th { "Worker" } th { "Queues" } th { "Started" } th { "Last heartbeat" } th { "State" } } }
                tbody {
                    @for beat in &overview.workers {
                        tr {
                            td { code { (beat.worker) } }
                            td { (beat.queues) }
                            td { (time_ago(beat.started_at)) }
                            td { (time_ago(beat.beat_at)) }
                            td { @if beat.is_alive(overview.at) { span.badge { "alive" } } @else { span.badge.warn { "gone" } } }
                        }
                    }
                }
            }
        }
    }
}
