//! The job queues under `/v1/queues` (admin): each queue's figures, and pausing and resuming
//! a queue for every worker process; each queue shows its fleet-wide limits' use. A pause stops fetches at once; each worker gives back the
//! jobs it fetched ahead within half a second; jobs already running finish.

use axum::Json;
use axum::extract::State;
use orderly_queue::{LimitUse, QueueStats};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::{Authorized, ManageJobs};
use crate::error::{ApiError, Problem};
use crate::extract::PathParams;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_queues))
        .routes(routes!(pause_queue))
        .routes(routes!(resume_queue))
}

/// A queue and its jobs as they stand.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueResource {
    pub name: String,
    /// Whether workers are kept from fetching its jobs.
    pub paused: bool,
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub paused_at: Option<OffsetDateTime>,
    /// The API key id that paused it, or `cli`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused_by: Option<String>,
    /// Due and waiting for a worker.
    pub available: i64,
    /// Waiting for their time (a retry's backoff, a job for later).
    pub scheduled: i64,
    pub running: i64,
    pub discarded: i64,
    /// When the oldest due job became due.
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub oldest_due_at: Option<OffsetDateTime>,
    /// Jobs completed in the last minute (0 when completed jobs are deleted as they complete).
    pub completed_last_minute: i64,
    /// The fleet-wide limits on its jobs, and their use now.
    pub limits: Vec<LimitResource>,
}

/// A fleet-wide limit on a queue's jobs and its use now, across every worker.
#[derive(Debug, Serialize, ToSchema)]
pub struct LimitResource {
    /// `queue`, `kind` or `partition` (jobs at once: for a partition, each partition of the
    /// kind, such as each webhook endpoint); `kind_rate` or `partition_rate` (jobs a second).
    #[schema(example = "partition")]
    pub scope: &'static str,
    /// The queue or job kind it limits.
    #[schema(example = "deliver_webhook")]
    pub name: String,
    /// Jobs at once, or jobs a second.
    pub limit: f64,
    /// Jobs running or fetched ahead under it (a partition limit: in its busiest partition);
    /// for a rate, the jobs it has let start so far.
    pub in_use: f64,
    /// Due jobs it holds back now.
    pub waiting: i64,
}

impl From<LimitUse> for LimitResource {
    fn from(usage: LimitUse) -> Self {
        Self {
            scope: usage.scope.as_str(),
            name: usage.name,
            limit: usage.limit,
            in_use: usage.in_use,
            waiting: usage.waiting,
        }
    }
}

impl QueueResource {
    /// The queue as `stats` has it, with those of `usage` that bear on it.
    pub fn new(stats: QueueStats, usage: &[LimitUse]) -> Self {
        let limits = usage
            .iter()
            .filter(|u| u.queue == stats.name)
            .cloned()
            .map(LimitResource::from)
            .collect();
        Self {
            limits,
            ..Self::from(stats)
        }
    }
}

impl From<QueueStats> for QueueResource {
    fn from(stats: QueueStats) -> Self {
        Self {
            limits: Vec::new(),
            paused: stats.paused.is_some(),
            paused_at: stats.paused.as_ref().map(|p| p.paused_at),
            paused_by: stats.paused.map(|p| p.paused_by),
            name: stats.name,
            available: stats.available,
            scheduled: stats.scheduled,
            running: stats.running,
            discarded: stats.discarded,
            oldest_due_at: stats.oldest_due_at,
            completed_last_minute: stats.completed_last_minute,
        }
    }
}

/// Every queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueList {
    pub data: Vec<QueueResource>,
}

/// The queue named `name`, when there is one.
pub(crate) fn queue_control_error(error: orderly_service::QueueControlError) -> ApiError {
    match error {
        orderly_service::QueueControlError::UnknownQueue { .. } => ApiError::NotFound("queue"),
        orderly_service::QueueControlError::Queue(error) => error.into(),
    }
}

/// List the queues with their jobs' figures (admin).
#[utoipa::path(
    get, path = "/v1/queues", tag = "jobs",
    responses((status = 200, description = "Every queue", body = QueueList)),
    security(("api_key" = []))
)]
async fn list_queues(
    _auth: Authorized<ManageJobs>,
    State(state): State<AppState>,
) -> Result<Json<QueueList>, ApiError> {
    let data = state.services.queue_figures().await?;
    let usage = state.services.limit_usage().await?;
    Ok(Json(QueueList {
        data: data
            .into_iter()
            .map(|stats| QueueResource::new(stats, &usage))
            .collect(),
    }))
}

/// Pause a queue for every worker (admin): no job of it starts until it is resumed; jobs
/// running now finish. Pausing a paused queue changes nothing.
#[utoipa::path(
    post, path = "/v1/queues/{name}/pause", tag = "jobs",
    params(("name" = String, Path, description = "The queue")),
    responses(
        (status = 200, description = "The queue, paused", body = QueueResource),
        (status = 404, description = "No such queue", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
async fn pause_queue(
    auth: Authorized<ManageJobs>,
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
) -> Result<Json<QueueResource>, ApiError> {
    let by = auth.caller.key_id.to_string();
    let paused = state
        .services
        .pause_queue(&name, &by)
        .await
        .map_err(queue_control_error)?;
    let usage = state.services.limit_usage().await?;
    Ok(Json(QueueResource::new(paused.stats, &usage)))
}

/// Resume a paused queue (admin): workers fetch from it again at once.
#[utoipa::path(
    post, path = "/v1/queues/{name}/resume", tag = "jobs",
    params(("name" = String, Path, description = "The queue")),
    responses(
        (status = 200, description = "The queue, running", body = QueueResource),
        (status = 404, description = "No such queue", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
async fn resume_queue(
    auth: Authorized<ManageJobs>,
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
) -> Result<Json<QueueResource>, ApiError> {
    let by = auth.caller.key_id.to_string();
    let resumed = state
        .services
        .resume_queue(&name, &by)
        .await
        .map_err(queue_control_error)?;
    let usage = state.services.limit_usage().await?;
    Ok(Json(QueueResource::new(resumed.stats, &usage)))
}
