//! Queues and schedules: each queue's available, running, scheduled and discarded jobs and
//! its completions in the last minute, with pause and resume (for every worker process); each
//! fleet-wide limit's use; charts of the last hour (`charts.rs`); each
//! schedule's cron, time zone, next and last run, with pause, resume and "run now".

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use maud::{Markup, html};
use orderly_service::{Schedule, ScheduleState};

use orderly_queue::activity::{Activity, per_minute};

use super::charts::{self, Series};
use super::extract::{Path, Query};
use super::layout::{
    Nav, NoticeQuery, PageError, action_button, done, notice_text, page, time_ago, when,
};
use super::session::{Action, Session};
use crate::AppState;
use crate::error::ApiError;
use crate::queues::QueueResource;

pub(crate) async fn show(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let usage = state.services.limit_usage().await?;
    let activity = state.services.activity_last_hour().await?;
    let queues: Vec<QueueResource> = (state.services.queue_figures().await?)
        .into_iter()
        .map(|stats| QueueResource::new(stats, &usage))
        .collect();
    let schedules = state
        .settings
        .console
        .as_ref()
        .map(|c| c.schedules.clone())
        .unwrap_or_default();
    let states = state.services.schedule_states(&schedules).await?;
    let notice = notice_text(q.notice.as_deref(), None);
    Ok(page(
        "Queues and schedules",
        Nav::Queues,
        Some(&session),
        notice.as_deref(),
        html! {
            (queues_table(&session, &queues))
            p.hint { "A pause reaches every worker process within a second: none starts a job of the queue, and the jobs a worker fetched ahead go back to the queue." }
            h2 { "Limits" }
            (limits_table(&queues))
            (activity_charts(&queues, &activity))
            h2 { "Schedules" }
            @if schedules.is_empty() {
                p.hint { "No schedule is configured." }
            } @else {
                (schedules_table(&session, &schedules, &states))
                p.hint { "The last run is the last tick the scheduler passed (enqueued, or skipped while paused)." }
            }
        },
    ))
}

fn queues_table(session: &Session, queues: &[QueueResource]) -> Markup {
    html! {
        table.queues {
            thead { tr {
                th { "Queue" } th { "State" } th.num { "Available" } th.num { "Running" }
                th.num { "Scheduled" } th.num { "Discarded" } th.num { "Done / min" } th { "Oldest due" } th {}
            } }
            tbody {
                @for queue in queues {
                    tr data-queue=(queue.name) {
                        td { (queue.name) }
                        td {
                            @match (queue.paused_at, &queue.paused_by) {
                                (Some(at), Some(by)) => { span.badge.warn { "paused" } " " span.hint title={"by " (by)} { (time_ago(at)) " by " code { (by.get(..8).unwrap_or(by)) } } }
                                _ => { span.badge { "running" } }
                            }
                        }
                        td.num.available { (queue.available) }
                        td.num.running { (queue.running) }
                        td.num { (queue.scheduled) }
                        td.num { a href={"/console/jobs?state=discarded&queue=" (queue.name)} { (queue.discarded) } }
                        td.num { (queue.completed_last_minute) }
                        td { @match queue.oldest_due_at { Some(t) => (time_ago(t)), None => "–" } }
                        td {
                            @if queue.paused {
                                (action_button(session, &format!("/console/queues/{}/resume", queue.name), "Resume", None))
                            } @else {
                                (action_button(session, &format!("/console/queues/{}/pause", queue.name), "Pause", Some("Pause this queue for every worker? Running jobs finish; no other starts.")))
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The last hour, a point a minute: each queue's jobs completed, failed and waiting, and each
/// limit's use (for a rate, jobs started a second).
fn activity_charts(queues: &[QueueResource], activity: &[Activity]) -> Markup {
    let now = orderly_domain::now();
    let line = |name: &str, series: String| Series {
        name: name.to_owned(),
        values: per_minute(activity, &series, now, 60),
    };
    let limits: Vec<Series> = queues
        .iter()
        .flat_map(|q| q.limits.iter())
        .map(|l| {
            line(
                &format!("{} {}", l.scope, l.name),
                format!("limit:{}:{}", l.scope, l.name),
            )
        })
        .collect();
    html! {
        h2 { "The last hour" }
        div.charts {
            @for queue in queues {
                (charts::minutes(&format!("Queue {}: jobs a minute", queue.name), &[
                    line("completed", format!("completed:{}", queue.name)),
                    line("failed", format!("failed:{}", queue.name)),
                    line("waiting", format!("waiting:{}", queue.name)),
                ]))
            }
            @if !limits.is_empty() {
                (charts::minutes("Limits in use", &limits))
            }
        }
        p.hint { "Drawn from a per-minute record the workers keep (the last two hours): runs each worker counted, and the due jobs and limits' use they saw every ten seconds, the minute's largest." }
    }
}

/// Each fleet-wide limit's use now, as a bar against the limit.
fn limits_table(queues: &[QueueResource]) -> Markup {
    html! {
        table.limits {
            thead { tr { th { "Queue" } th { "Limit on" } th { "Name" } th.num { "Limit" } th { "In use" } th.num { "Waiting" } } }
            tbody {
                @for queue in queues {
                    @for limit in &queue.limits {
                        tr data-limit={(limit.scope) ":" (limit.name)} {
                            td { (queue.name) }
                            td { (scope_text(limit.scope)) }
                            td { code { (limit.name) } }
                            @if limit.scope.ends_with("rate") {
                                td.num { (limit.limit) " / s" }
                                td { span.hint title="jobs it has let start" { (limit.in_use) " started" } }
                            } @else {
                                td.num { (limit.limit) }
                                td.in-use { (charts::gauge(limit.in_use, limit.limit)) " " (limit.in_use) }
                            }
                            td.num.waiting { (limit.waiting) }
                        }
                    }
                }
            }
        }
        p.hint { "Limits hold across every worker process: configured in [worker.limits] and, for each webhook endpoint, webhooks.per_endpoint_concurrency. A job over a limit waits without spending an attempt." }
    }
}

fn scope_text(scope: &str) -> &'static str {
    match scope {
        "queue" => "jobs of the queue at once",
        "kind" => "jobs of the kind at once",
        "partition" => "at once per partition (busiest)",
        "kind_rate" => "starts of the kind",
        _ => "starts per partition",
    }
}

fn schedules_table(
    session: &Session,
    schedules: &[Arc<Schedule>],
    states: &[ScheduleState],
) -> Markup {
    let now = orderly_domain::now();
    html! {
        table.schedules {
            thead { tr { th { "Schedule" } th { "Cron" } th { "Time zone" } th { "Job" } th { "Next run" } th { "Last run" } th { "State" } th {} } }
            tbody {
                @for (schedule, state) in schedules.iter().zip(states) {
                    tr data-schedule=(schedule.name) {
                        td { (schedule.name) }
                        td { code { (schedule.cron_text) } }
                        td { (schedule.timezone) }
                        td { (schedule.job) }
                        td { @match schedule.next_tick(now) { Some(next) => { (when(next)) }, None => "–" } }
                        td { @match state.last_tick { Some(last) => (time_ago(last)), None => "–" } }
                        td { @if state.paused { span.badge.warn { "paused" } } @else { span.badge { "active" } } }
                        td {
                            @if state.paused {
                                (action_button(session, &format!("/console/schedules/{}/resume", schedule.name), "Resume", None))
                            } @else {
                                (action_button(session, &format!("/console/schedules/{}/pause", schedule.name), "Pause", Some("Pause this schedule? Its ticks pass without a job until it is resumed.")))
                            }
                            (action_button(session, &format!("/console/schedules/{}/run", schedule.name), "Run now", Some("Queue this schedule's job now?")))
                        }
                    }
                }
            }
        }
    }
}

pub(crate) async fn act(
    State(state): State<AppState>,
    Path((name, action)): Path<(String, String)>,
    Action(session): Action,
) -> Result<Response, PageError> {
    let by = session.key_id.to_string();
    let (controlled, notice) = match action.as_str() {
        "pause" => (state.services.pause_queue(&name, &by).await, "queue_paused"),
        "resume" => (
            state.services.resume_queue(&name, &by).await,
            "queue_resumed",
        ),
        _ => return Err(ApiError::NotFound("resource").into()),
    };
    let queue = controlled
        .map_err(crate::queues::queue_control_error)?
        .stats
        .name;
    session
        .audit(
            &state,
            &format!("queue.{action}"),
            &format!("queue:{queue}"),
            None,
        )
        .await?;
    Ok(done("/console/queues", notice))
}

pub(crate) async fn act_on_schedule(
    State(state): State<AppState>,
    Path((name, action)): Path<(String, String)>,
    Action(session): Action,
) -> Result<Response, PageError> {
    let schedule = state
        .settings
        .console
        .as_ref()
        .and_then(|c| c.schedules.iter().find(|s| s.name == name))
        .ok_or(ApiError::NotFound("schedule"))?;
    let services = &state.services;
    let (notice, detail) = match action.as_str() {
        "pause" => {
            services
                .pause_schedule(schedule, &session.key_id.to_string())
                .await?;
            ("schedule_paused", None)
        }
        "resume" => {
            services.resume_schedule(schedule).await?;
            ("schedule_resumed", None)
        }
        "run" => {
            let id = services.run_schedule_now(schedule).await?;
            ("schedule_run", id.map(|id| format!("job {id}")))
        }
        _ => return Err(ApiError::NotFound("resource").into()),
    };
    session
        .audit(
            &state,
            &format!("schedule.{action}"),
            &format!("schedule:{}", schedule.name),
            detail.as_deref(),
        )
        .await?;
    Ok(done("/console/queues", notice))
}
