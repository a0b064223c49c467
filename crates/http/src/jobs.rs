//! The operators' view of the job queue under `/v1/jobs` (admin only): list and read jobs,
//! send a discarded one round again, cancel one that has not finished.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use orderly_domain::ValidationErrors;
use orderly_queue::JobState;
use orderly_queue::{Job, JobFilter};
use orderly_service::{JobAction, JobActionError};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::{Authorized, ManageJobs};
use crate::error::{ApiError, Problem};
use crate::extract::{PathParams, QueryParams};
use crate::pagination::{next_cursor, page_limit, parse_choice, read_page};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_jobs))
        .routes(routes!(get_job))
        .routes(routes!(retry_job))
        .routes(routes!(cancel_job))
}

/// A background job.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobResource {
    pub id: i64,
    pub queue: String,
    /// What the job does, such as `send_receipt`.
    pub kind: String,
    #[schema(value_type = Object)]
    pub args: serde_json::Value,
    /// `available`, `running`, `completed`, `discarded` or `cancelled`.
    pub state: &'static str,
    /// 0 runs first, 9 last.
    pub priority: i32,
    pub attempt: i32,
    pub max_attempts: i32,
    /// Not before this time.
    #[serde(with = "time::serde::rfc3339")]
    pub run_at: OffsetDateTime,
    /// The worker running it, while it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unique_key: Option<String>,
    /// Why the last attempt failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub finished_at: Option<OffsetDateTime>,
    /// When an operator asked the running job to stop: it stays `running` until its worker
    /// stops it (then `cancelled`), or its side effect had happened (then `completed`).
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub cancel_requested_at: Option<OffsetDateTime>,
}

impl From<Job> for JobResource {
    fn from(job: Job) -> Self {
        Self {
            id: job.id,
            queue: job.queue,
            kind: job.kind,
            args: job.args,
            state: job.state.as_str(),
            priority: job.priority,
            attempt: job.attempt,
            max_attempts: job.max_attempts,
            run_at: job.run_at,
            locked_by: job.locked_by,
            unique_key: job.unique_key,
            last_error: job.last_error,
            created_at: job.created_at,
            finished_at: job.finished_at,
            cancel_requested_at: job.cancel_requested_at,
        }
    }
}

/// One page of jobs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobPage {
    pub data: Vec<JobResource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Query parameters of the job listing.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Page size, 1–100 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]{10}[AEIMQUYcgkosw048]$")]
    cursor: Option<String>,
    /// Only jobs in this state.
    #[param(pattern = "^(available|running|completed|discarded|cancelled)$")]
    state: Option<String>,
    /// Only jobs of this kind.
    #[param(pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    kind: Option<String>,
    /// Only jobs of this queue.
    #[param(pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$")]
    queue: Option<String>,
}

/// List jobs, newest first (admin).
#[utoipa::path(
    get, path = "/v1/jobs", tag = "jobs",
    params(ListQuery),
    responses(
        (status = 200, description = "One page of jobs", body = JobPage),
        (status = 400, description = "Invalid query parameters", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
async fn list_jobs(
    _auth: Authorized<ManageJobs>,
    State(state): State<AppState>,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<JobPage>, ApiError> {
    let mut errors = ValidationErrors::new();
    let (limit, before) = read_page(query.limit.as_deref(), query.cursor.as_deref(), &mut errors);
    let job_state = parse_choice::<JobState>(
        query.state,
        "state",
        "available, running, completed, discarded or cancelled",
        &mut errors,
    );
    let limit = page_limit(limit, errors)?;
    let jobs = state
        .services
        .list_jobs(&JobFilter {
            state: job_state,
            kind: query.kind,
            queue: query.queue,
            error_contains: None,
            before,
            limit,
        })
        .await?;
    let next_cursor = next_cursor(&jobs, limit, |j| j.id);
    Ok(Json(JobPage {
        data: jobs.into_iter().map(JobResource::from).collect(),
        next_cursor,
    }))
}

fn parse_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound("job"))
}

/// Read a job (admin).
#[utoipa::path(
    get, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = i64, Path, description = "The job id")),
    responses(
        (status = 200, description = "The job", body = JobResource),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
async fn get_job(
    _auth: Authorized<ManageJobs>,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<JobResource>, ApiError> {
    let job = state
        .store
        .queue()
        .job(parse_id(&id)?)
        .await?
        .ok_or(ApiError::NotFound("job"))?;
    Ok(Json(job.into()))
}

/// Applies an operator's `action` to job `id` by the service layer's rule (the console's
/// buttons too).
pub(crate) async fn act_on_job(
    state: &AppState,
    id: i64,
    action: JobAction,
) -> Result<Job, ApiError> {
    state
        .services
        .act_on_job(id, action)
        .await
        .map_err(|error| match error {
            JobActionError::NotFound(_) => ApiError::NotFound("job"),
            JobActionError::NotAllowed { action, job } => ApiError::Conflict {
                code: "invalid_job_state",
                detail: format!("cannot {} a job that is {}", action.as_str(), job.state),
            },
            JobActionError::Queue(error) => error.into(),
        })
}

/// Send a discarded or cancelled job round again, with a fresh set of attempts (admin).
#[utoipa::path(
    post, path = "/v1/jobs/{id}/retry", tag = "jobs",
    params(("id" = i64, Path, description = "The job id")),
    responses(
        (status = 200, description = "The job, available again", body = JobResource),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job is not discarded or cancelled", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
async fn retry_job(
    _auth: Authorized<ManageJobs>,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<JobResource>, ApiError> {
    let job = act_on_job(&state, parse_id(&id)?, JobAction::Retry).await?;
    Ok(Json(job.into()))
}

/// Cancel a job that has not finished (admin). An available job is cancelled at once (`200`).
/// A running job is asked to stop (`202`, the job with `cancel_requested_at`): its handler
/// hears of it within a second, wherever it runs, and the job ends `cancelled` if it stopped
/// before its side effect (a webhook request is aborted, a receipt not yet handed to SMTP is
/// not sent), `completed` if the effect had happened. A cancelled job is never retried.
#[utoipa::path(
    post, path = "/v1/jobs/{id}/cancel", tag = "jobs",
    params(("id" = i64, Path, description = "The job id")),
    responses(
        (status = 200, description = "The cancelled job", body = JobResource),
        (status = 202, description = "The running job, asked to stop", body = JobResource),
        (status = 404, description = "No such job", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The job has already finished", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
async fn cancel_job(
    _auth: Authorized<ManageJobs>,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<(StatusCode, Json<JobResource>), ApiError> {
    let job = act_on_job(&state, parse_id(&id)?, JobAction::Cancel).await?;
    let status = if job.state == JobState::Running {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(job.into())))
}
