//! A job's life after submission: cancelling it, deleting its data, and
//! following it as server-sent events.

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use uuid::Uuid;
use voxq_shared::auth::scope::Scope;
use voxq_shared::db::jobs::{self as job_repo, Cancelled, DataDeleted};
use voxq_shared::events::{self, JobEvent, Progress, Signal};
use voxq_shared::job::{JobStatus, JobView};

use super::read::load_job;
use crate::error::{ApiError, ErrorBody, Result};
use crate::http::extract::PathId;
use crate::http::principal::{Principal, RequestMeta};
use crate::state::AppState;

/// Cancel a job: a queued job is cancelled at once, a running one stops
/// at its worker's next safe point; either way its result is never
/// committed or billed, and its reserved quota is released.
#[utoipa::path(
    delete,
    path = "/v1/jobs/{id}",
    tag = "jobs",
    security(("bearer" = ["jobs:write"])),
    params(("id" = Uuid, Path, description = "Job id")),
    responses(
        (status = 200, description = "The cancelled job (cancelling twice is fine)", body = JobView),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "No such job for this account", body = ErrorBody),
        (status = 409, description = "`job_finished`: it succeeded or failed first", body = ErrorBody),
    )
)]
pub async fn cancel_job(
    principal: Principal,
    meta: RequestMeta,
    State(state): State<AppState>,
    PathId(id): PathId,
) -> Result<Response> {
    principal.require(Scope::JobsWrite)?;
    let account_id = principal.account_id;
    match job_repo::cancel(&state.db, account_id, id).await? {
        None => Err(ApiError::NotFound),
        Some(Cancelled::Now(ended)) => {
            state.quotas.release(&ended.reservation).await;
            if let Err(e) = state.cache.put_terminal(account_id, &ended.view).await {
                tracing::warn!(error = %e, "caching a cancelled job");
            }
            state
                .events
                .publish(&JobEvent {
                    job_id: id,
                    account_id,
                    status: JobStatus::Cancelled,
                    progress: None,
                })
                .await;
            state
                .audit(meta.audit(
                    &principal,
                    "job.cancel",
                    format!("job:{id}"),
                    serde_json::json!({}),
                ))
                .await;
            tracing::info!(job_id = %id, "job cancelled");
            Ok(Json(ended.view).into_response())
        }
        Some(Cancelled::AlreadyEnded(view)) if view.status == JobStatus::Cancelled => {
            Ok(Json(view).into_response())
        }
        Some(Cancelled::AlreadyEnded(view)) => Err(ApiError::Conflict {
            code: "job_finished",
            message: format!("the job already {}", view.status.as_str()),
        }),
    }
}

/// Delete an ended job's input and result (and the result cache's copy);
/// the job and its usage records stay, with `data_deleted_at` set.
#[utoipa::path(
    delete,
    path = "/v1/jobs/{id}/data",
    tag = "jobs",
    security(("bearer" = ["jobs:write"])),
    params(("id" = Uuid, Path, description = "Job id")),
    responses(
        (status = 200, description = "The job, without its data", body = JobView),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`job_not_finished`: cancel it first", body = ErrorBody),
    )
)]
pub async fn delete_job_data(
    principal: Principal,
    meta: RequestMeta,
    State(state): State<AppState>,
    PathId(id): PathId,
) -> Result<Response> {
    principal.require(Scope::JobsWrite)?;
    match job_repo::delete_data(&state.db, principal.account_id, id).await? {
        None => Err(ApiError::NotFound),
        Some(DataDeleted::NotEnded(status)) => Err(ApiError::Conflict {
            code: "job_not_finished",
            message: format!(
                "the job is {}; cancel it before deleting its data",
                status.as_str()
            ),
        }),
        Some(DataDeleted::Now(view)) => {
            if let Err(e) = state.cache.forget(id).await {
                // The cached copy expires with its TTL; say so loudly.
                tracing::error!(job_id = %id, error = %e, "evicting a deleted job from the cache");
            }
            state
                .audit(meta.audit(
                    &principal,
                    "job.data_deleted",
                    format!("job:{id}"),
                    serde_json::json!({}),
                ))
                .await;
            Ok(Json(*view).into_response())
        }
    }
}

/// Cancel a job: the same as `DELETE /v1/jobs/{id}`, for clients that
/// cannot send DELETE.
#[utoipa::path(
    post,
    path = "/v1/jobs/{id}/cancel",
    tag = "jobs",
    security(("bearer" = ["jobs:write"])),
    params(("id" = Uuid, Path, description = "Job id")),
    responses(
        (status = 200, description = "The cancelled job", body = JobView),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
    )
)]
pub async fn cancel_job_post(
    principal: Principal,
    meta: RequestMeta,
    state: State<AppState>,
    id: PathId,
) -> Result<Response> {
    cancel_job(principal, meta, state, id).await
}

/// Server-sent events of one job: `status` events (the current state
/// first, then every change, with `progress` for long audio) until the
/// job ends. Works behind any API instance: events travel through Redis.
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}/events",
    tag = "jobs",
    security(("bearer" = ["jobs:read"])),
    params(("id" = Uuid, Path, description = "Job id")),
    responses(
        (status = 200, description = "`text/event-stream` of `status` events: \
            `{\"id\", \"status\", \"progress\"?}`; the stream ends after a terminal status",
         content_type = "text/event-stream", body = String),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "No such job for this account", body = ErrorBody),
        (status = 429, description = "`too_many_waiting`: the account's or the server's long-polls and event streams are at their cap", body = ErrorBody),
    )
)]
pub async fn job_events(
    principal: Principal,
    State(state): State<AppState>,
    PathId(id): PathId,
) -> Result<Response> {
    principal.require(Scope::JobsRead)?;
    let account_id = principal.account_id;
    let waiting = state.waiters.enter(account_id)?;
    let mut signals = state.hub.subscribe();
    let view = load_job(&state, account_id, id).await?;
    let (sender, receiver) = tokio::sync::mpsc::channel::<SseEvent>(16);
    tokio::spawn(async move {
        // Held for as long as the stream runs.
        let _waiting = waiting;
        let mut last = (view.status, None);
        if sender
            .send(status_event(id, view.status, None))
            .await
            .is_err()
        {
            return;
        }
        let mut ended = view.status.is_terminal();
        while !ended {
            let signal = tokio::select! {
                signal = events::next_for(&mut signals, id) => signal,
                () = state.stopping.cancelled() => None,
                () = sender.closed() => None,
            };
            let (status, progress) = match signal {
                None => return,
                Some(Signal::Job(event)) if event.account_id == account_id => {
                    (event.status, event.progress)
                }
                Some(Signal::Job(_)) => continue,
                // Perhaps missed: read the truth.
                Some(Signal::Resync) => {
                    crate::http::waiters::resync_pause().await;
                    match load_job(&state, account_id, id).await {
                        Ok(view) => (view.status, last.1),
                        Err(_) => continue,
                    }
                }
            };
            ended = status.is_terminal();
            if (status, progress) == last {
                continue;
            }
            last = (status, progress);
            if sender
                .send(status_event(id, status, progress))
                .await
                .is_err()
            {
                return;
            }
        }
    });
    let stream = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver
            .recv()
            .await
            .map(|event| (Ok::<_, std::convert::Infallible>(event), receiver))
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

fn status_event(id: Uuid, status: JobStatus, progress: Option<Progress>) -> SseEvent {
    let data = serde_json::json!({ "id": id, "status": status, "progress": progress });
    SseEvent::default().event("status").data(data.to_string())
}
