//! `GET /v1/jobs`: the caller's jobs, newest first, a page at a time,
//! optionally only those in one status.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use voxq_shared::auth::scope::Scope;
use voxq_shared::db::jobs as job_repo;
use voxq_shared::job::{JobStatus, JobSummary};

use crate::error::{ApiError, ErrorBody, Result};
use crate::http::extract::ApiQuery;
use crate::http::principal::Principal;
use crate::state::AppState;

/// A page when `limit` is absent: what a person reads at a glance.
const DEFAULT_LIMIT: u32 = 20;
/// Longest page: summaries carry their parameters, so a page stays a
/// few hundred kilobytes at most.
const MAX_LIMIT: u32 = 100;

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListJobsQuery {
    /// Jobs per page, 1–100 (20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// Cursor: the `next_before` of the previous page (the id of its last
    /// job); only older jobs follow. A job that is not the caller's gives
    /// an empty page.
    before: Option<Uuid>,
    /// Only jobs in this status.
    #[param(inline)]
    status: Option<JobStatus>,
}

/// A page of the caller's jobs.
#[derive(Serialize, utoipa::ToSchema)]
pub struct JobList {
    /// Newest first.
    pub jobs: Vec<JobSummary>,
    /// Pass as `before` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before: Option<Uuid>,
}

/// The caller's jobs, newest first: a summary of each (no result; read a
/// job with `GET /v1/jobs/{id}` for that).
#[utoipa::path(
    get,
    path = "/v1/jobs",
    tag = "jobs",
    security(("bearer" = ["jobs:read"])),
    params(ListJobsQuery),
    responses(
        (status = 200, body = JobList),
        (status = 400, description = "`limit` out of range, an unknown `status`", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    )
)]
pub async fn list_jobs(
    principal: Principal,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListJobsQuery>,
) -> Result<Json<JobList>> {
    principal.require(Scope::JobsRead)?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!("`limit` is 1 to {MAX_LIMIT}")));
    }
    // One more than asked tells whether another page follows, so that the
    // last page never sends a cursor to an empty one.
    let mut jobs = job_repo::list_for_account(
        &state.db,
        principal.account_id,
        query.status,
        query.before,
        i64::from(limit) + 1,
    )
    .await?;
    let more = jobs.len() > limit as usize;
    jobs.truncate(limit as usize);
    let next_before = if more {
        jobs.last().map(|job| job.id)
    } else {
        None
    };
    Ok(Json(JobList { jobs, next_before }))
}
