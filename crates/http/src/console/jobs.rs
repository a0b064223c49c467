//! Jobs: filter by state, kind, queue and text in the last error (newest first); a job's page
//! with its arguments, attempts, last error as its cause chain and trace id; retry and
//! cancel; and "retry all" for the discarded jobs a filter matches.

use axum::extract::State;
use axum::response::Response;
use maud::{Markup, html};
use orderly_domain::PageLimit;
use orderly_queue::{DiscardedFilter, JobFilter, JobState, RETRY_ALL_LIMIT};
use orderly_service::JobAction;
use serde::Deserialize;

use super::extract::{Path, Query};
use super::layout::{
    Nav, NoticeQuery, PageError, action_button, done, non_empty, notice_text, page, query,
    time_ago, when,
};
use super::session::{Action, Session};
use crate::AppState;
use crate::error::ApiError;
use crate::jobs::JobResource;

const STATES: [&str; 5] = [
    "available",
    "running",
    "completed",
    "discarded",
    "cancelled",
];

#[derive(Debug, Default, Deserialize)]
pub(crate) struct JobsQuery {
    state: Option<String>,
    kind: Option<String>,
    queue: Option<String>,
    error: Option<String>,
    before: Option<i64>,
    notice: Option<String>,
    n: Option<u64>,
}

pub(crate) async fn list(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<JobsQuery>,
) -> Result<Response, PageError> {
    let job_state = match non_empty(&q.state) {
        None => None,
        Some(raw) => Some(
            raw.parse::<JobState>()
                .map_err(|_| ApiError::Unprocessable {
                    code: "invalid_state",
                    detail: format!("{raw:?} is not a job state"),
                })?,
        ),
    };
    let limit = PageLimit::DEFAULT;
    let jobs = state
        .services
        .list_jobs(&JobFilter {
            state: job_state,
            kind: non_empty(&q.kind).map(str::to_owned),
            queue: non_empty(&q.queue).map(str::to_owned),
            error_contains: non_empty(&q.error).map(str::to_owned),
            before: q.before,
            limit,
        })
        .await?
        .into_iter()
        .map(JobResource::from)
        .collect::<Vec<_>>();
    let more = jobs.len() == limit.get() as usize;
    let next = jobs.last().map(|j| j.id.to_string());
    let notice = notice_text(q.notice.as_deref(), q.n);
    Ok(page(
        "Jobs",
        Nav::Jobs,
        Some(&session),
        notice.as_deref(),
        html! {
            (filters(&q))
            @if job_state == Some(JobState::Discarded) {
                form.inline method="post" action={"/console/jobs/retry-discarded" (filter_query(&q, None))}
                    data-confirm={"Send every discarded job this filter matches round again (at most " (RETRY_ALL_LIMIT) ")?"} {
                    (session.csrf_field())
                    button type="submit" { "Retry all matching discarded jobs" }
                }
            }
            @if jobs.is_empty() {
                p.hint { "No job matches." }
            } @else {
                (jobs_table(&jobs))
                @if more {
                    a.more href={"/console/jobs" (filter_query(&q, next.as_deref()))} { "Older jobs →" }
                }
            }
        },
    ))
}

/// The query of the filter in `q`, from `before` on.
fn filter_query(q: &JobsQuery, before: Option<&str>) -> String {
    query(&[
        ("state", non_empty(&q.state)),
        ("kind", non_empty(&q.kind)),
        ("queue", non_empty(&q.queue)),
        ("error", non_empty(&q.error)),
        ("before", before),
    ])
}

fn filters(q: &JobsQuery) -> Markup {
    let kinds = orderly_queue::kinds::ALL.iter().map(|k| k.name);
    html! {
        form.filters method="get" action="/console/jobs" {
            label { "State"
                select name="state" {
                    option value="" { "any" }
                    @for s in STATES { option value=(s) selected[non_empty(&q.state) == Some(s)] { (s) } }
                }
            }
            label { "Kind"
                select name="kind" {
                    option value="" { "any" }
                    @for k in kinds { option value=(k) selected[non_empty(&q.kind) == Some(k)] { (k) } }
                }
            }
            label { "Queue"
                select name="queue" {
                    option value="" { "any" }
                    @for name in orderly_queue::known_queues() { option value=(name) selected[non_empty(&q.queue) == Some(name)] { (name) } }
                }
            }
            label { "Error contains" input type="search" name="error" value=[non_empty(&q.error)]; }
            button type="submit" { "Filter" }
        }
    }
}

fn jobs_table(jobs: &[JobResource]) -> Markup {
    html! {
        table.jobs {
            thead { tr { th { "Job" } th { "Queue" } th { "Kind" } th { "State" } th.num { "Attempt" } th { "Run at" } th { "Last error" } } }
            tbody {
                @for job in jobs {
                    tr {
                        td { a href={"/console/jobs/" (job.id)} { (job.id) } }
                        td { (job.queue) }
                        td { (job.kind) }
                        td { span.badge.warn[job.state == "discarded"] { (job.state) } }
                        td.num { (job.attempt) "/" (job.max_attempts) }
                        td { (time_ago(job.run_at)) }
                        td.error { (job.last_error.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
    }
}

/// The trace id of a W3C `traceparent` (`00-<trace id>-<span id>-<flags>`).
fn trace_id(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.split('-');
    let (_, trace) = (parts.next()?, parts.next()?);
    (trace.len() == 32).then_some(trace)
}

pub(crate) async fn show(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let id: i64 = id.parse().map_err(|_| ApiError::NotFound("job"))?;
    let job = state
        .services
        .job(id)
        .await?
        .ok_or(ApiError::NotFound("job"))?;
    let notice = notice_text(q.notice.as_deref(), None);
    let here = format!("/console/jobs/{id}");
    let retryable = matches!(job.state, JobState::Discarded | JobState::Cancelled);
    let cancellable = matches!(job.state, JobState::Available | JobState::Running)
        && job.cancel_requested_at.is_none();
    let trace = job
        .trace_context
        .as_deref()
        .and_then(trace_id)
        .map(str::to_owned);
    let job = JobResource::from(job);
    let args = serde_json::to_string_pretty(&job.args).unwrap_or_default();
    Ok(page(
        &format!("Job {id}"),
        Nav::Jobs,
        Some(&session),
        notice.as_deref(),
        html! {
            section.facts {
                dl {
                    dt { "State" } dd { span.badge.warn[job.state == "discarded"] #job-state { (job.state) } }
                    @if let Some(order) = job.args.get("order_id").and_then(|o| o.as_str()).filter(|o| uuid::Uuid::parse_str(o).is_ok()) {
                        dt { "Order" } dd { a href={"/console/orders/" (order)} { code { (order) } } }
                    }
                    dt { "Kind" } dd { (job.kind) }
                    dt { "Queue" } dd { (job.queue) }
                    dt { "Attempt" } dd { (job.attempt) " of " (job.max_attempts) }
                    dt { "Priority" } dd { (job.priority) }
                    dt { "Run at" } dd { (when(job.run_at)) " (" (time_ago(job.run_at)) ")" }
                    dt { "Created" } dd { (when(job.created_at)) }
                    @if let Some(finished) = job.finished_at { dt { "Finished" } dd { (when(finished)) } }
                    @if let Some(asked) = job.cancel_requested_at {
                        dt { "Cancel requested" } dd #cancel-requested { (when(asked)) }
                    }
                    @if let Some(worker) = &job.locked_by { dt { "Worker" } dd { code { (worker) } } }
                    @if let Some(key) = &job.unique_key { dt { "Unique key" } dd { code { (key) } } }
                    @if let Some(trace) = &trace {
                        dt { "Trace id" } dd { code #trace-id { (trace) } }
                    }
                }
                div.actions {
                    @if retryable {
                        (action_button(&session, &format!("{here}/retry"), "Retry", Some("Run this job again with fresh attempts?")))
                    }
                    @if cancellable {
                        (action_button(&session, &format!("{here}/cancel"), "Cancel", Some("Cancel this job? It will not run again; if it is running, its worker stops it.")))
                    }
                }
            }
            h2 { "Arguments" }
            pre { code { (args) } }
            h2 { "Last error" }
            @match &job.last_error {
                None => p.hint { "None." }
                Some(error) => {
                    // The chain as recorded: each cause after the one it explains.
                    ol.causes #last-error {
                        @for cause in error.split(": ") { li { (cause) } }
                    }
                }
            }
        },
    ))
}

pub(crate) async fn act(
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    Action(session): Action,
) -> Result<Response, PageError> {
    let id: i64 = id.parse().map_err(|_| ApiError::NotFound("job"))?;
    let (action, notice) = match action.as_str() {
        "retry" => (JobAction::Retry, "job_retried"),
        "cancel" => (JobAction::Cancel, "job_cancelled"),
        _ => return Err(ApiError::NotFound("resource").into()),
    };
    let job = crate::jobs::act_on_job(&state, id, action).await?;
    let notice = if job.state == JobState::Running {
        "job_cancel_requested"
    } else {
        notice
    };
    let verb = action.as_str();
    session
        .audit(&state, &format!("job.{verb}"), &format!("job:{id}"), None)
        .await?;
    Ok(done(&format!("/console/jobs/{id}"), notice))
}

pub(crate) async fn retry_discarded(
    State(state): State<AppState>,
    Query(q): Query<JobsQuery>,
    Action(session): Action,
) -> Result<Response, PageError> {
    let filter = DiscardedFilter {
        kind: non_empty(&q.kind).map(str::to_owned),
        queue: non_empty(&q.queue).map(str::to_owned),
        error_contains: non_empty(&q.error).map(str::to_owned),
    };
    let retried = state.services.retry_discarded(&filter).await?;
    let detail = format!(
        "{retried} jobs; kind {}, queue {}, error contains {:?}",
        filter.kind.as_deref().unwrap_or("any"),
        filter.queue.as_deref().unwrap_or("any"),
        filter.error_contains.as_deref().unwrap_or("")
    );
    session
        .audit(
            &state,
            "job.retry_discarded",
            "jobs:discarded",
            Some(&detail),
        )
        .await?;
    let back = format!(
        "/console/jobs{}",
        query(&[
            ("state", Some("discarded")),
            ("kind", filter.kind.as_deref()),
            ("queue", filter.queue.as_deref()),
            ("error", filter.error_contains.as_deref()),
        ])
    );
    Ok(done(&format!("{back}&n={retried}"), "jobs_retried"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_trace_id_is_taken_from_a_traceparent() {
        assert_eq!(
            super::trace_id("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(super::trace_id("garbage"), None);
    }
}
