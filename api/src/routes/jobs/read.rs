//! `GET /v1/jobs/{id}`: a job as it is or, long-polled, once it ends;
//! its place in the queue while it waits; its result rendered as JSON,
//! text or subtitles.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use uuid::Uuid;
use voxq_shared::auth::scope::Scope;
use voxq_shared::db::jobs as job_repo;
use voxq_shared::events::{self, Signal};
use voxq_shared::job::{
    JobKind, JobStatus, JobView, QueuePlace, TranscriptResult, TranslationResult,
};
use voxq_shared::subtitles;

use crate::error::{ApiError, ErrorBody, Result};
use crate::http::extract::{ApiQuery, PathId};
use crate::http::principal::Principal;
use crate::state::AppState;

#[derive(Deserialize, utoipa::IntoParams)]
pub struct GetJobQuery {
    /// `json` (default: the job), `verbose_json` (the result alone: text,
    /// segments with timings and decoding statistics, language and its
    /// probability, duration, the speech spans when voice activity
    /// detection ran, translations), `text`, `srt` or `vtt`.
    format: Option<String>,
    /// Speech translation: the target language whose text or subtitles to
    /// render (the transcript if absent).
    language: Option<String>,
    /// Long-poll: wait up to this many seconds (at most 60) for the job to
    /// end, and answer as soon as it does.
    wait: Option<u64>,
}

/// Longest `?wait=`.
const MAX_WAIT_SECONDS: u64 = 60;

/// A job's status, and its result once it has succeeded.
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}",
    tag = "jobs",
    security(("bearer" = ["jobs:read"])),
    params(("id" = Uuid, Path, description = "Job id"), GetJobQuery),
    responses(
        (status = 200, description = "The job (or its transcript as text, SRT or WebVTT)", body = JobView,
         example = json!({
             "id": "0193f0c2-7b1e-7d3a-9c41-2f6d8e5a1b07", "kind": "transcribe",
             "status": "succeeded", "attempts": 1,
             "params": {"model": "whisper-tiny.en", "language": "en"},
             "created_at": "2026-01-31T12:00:00Z", "started_at": "2026-01-31T12:00:01Z",
             "finished_at": "2026-01-31T12:00:03Z",
             "result": {"text": "Hello world.", "language": "en", "duration": 2.1,
                        "segments": [{"start": 0.0, "end": 2.1, "text": "Hello world."}]}
         })),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such job for this account", body = ErrorBody),
        (status = 409, description = "`job_not_finished`: no transcript yet", body = ErrorBody),
        (status = 429, description = "`too_many_waiting`: the account's or the server's long-polls and event streams are at their cap", body = ErrorBody),
    )
)]
pub async fn get_job(
    principal: Principal,
    State(state): State<AppState>,
    PathId(id): PathId,
    ApiQuery(query): ApiQuery<GetJobQuery>,
) -> Result<Response> {
    principal.require(Scope::JobsRead)?;
    let view = match query.wait {
        None | Some(0) => load_job(&state, principal.account_id, id).await?,
        Some(seconds) if seconds <= MAX_WAIT_SECONDS => {
            // Within the request timeout, whatever it is set to.
            let limit = state.config.request_timeout.saturating_sub(1).max(1);
            let wait = std::time::Duration::from_secs(seconds.min(limit));
            let _waiting = state.waiters.enter(principal.account_id)?;
            wait_for_end(&state, principal.account_id, id, wait).await?
        }
        Some(_) => {
            return Err(ApiError::BadRequest(format!(
                "`wait` is at most {MAX_WAIT_SECONDS} seconds"
            )))
        }
    };
    render(
        view,
        query.format.as_deref().unwrap_or("json"),
        query.language.as_deref(),
    )
}

/// The job once it has ended, or as it is after `wait`. Woken by job
/// events (from any API instance's or worker's Redis publish), not by
/// polling: it reads the job again only when an event or a resync says so.
pub(crate) async fn wait_for_end(
    state: &AppState,
    account_id: Uuid,
    id: Uuid,
    wait: std::time::Duration,
) -> Result<JobView> {
    // Subscribed before the first read, so no ending slips in between.
    let mut signals = state.hub.subscribe();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let view = load_job(state, account_id, id).await?;
        if view.status.is_terminal() {
            return Ok(view);
        }
        let signal = tokio::select! {
            signal = events::next_for(&mut signals, id) => signal,
            () = tokio::time::sleep_until(deadline) => None,
            () = state.stopping.cancelled() => None,
        };
        match signal {
            None => return load_job(state, account_id, id).await,
            Some(Signal::Resync) => crate::http::waiters::resync_pause().await,
            Some(Signal::Job(_)) => {}
        }
    }
}

/// A queued job's place in line, and when it should start: the jobs
/// ahead of it times the queue's recent mean run time, shared among the
/// workers that serve its model.
async fn queue_place(
    state: &AppState,
    account_id: Uuid,
    view: &JobView,
) -> Result<Option<QueuePlace>> {
    let Some(place) = job_repo::place(&state.db, account_id, view.id).await? else {
        return Ok(None);
    };
    let model = view.params.model.as_deref().unwrap_or_default();
    let workers = match state.catalog.models(false).await {
        Ok(models) => models
            .iter()
            .find(|m| m.info.name == model)
            .map_or(0, |m| m.workers),
        Err(e) => {
            tracing::warn!(error = %e, "reading the worker registry");
            0
        }
    };
    let estimated_start_at = place.recent_seconds.map(|mean| {
        let seconds = place.ahead as f64 * mean / workers.max(1) as f64;
        chrono::Utc::now() + chrono::Duration::milliseconds((seconds * 1000.0) as i64)
    });
    tracing::debug!(queue = %place.queue, ahead = place.ahead, workers, "queue place");
    Ok(Some(QueuePlace {
        position: place.ahead + 1,
        estimated_start_at,
    }))
}

/// Redis first (finished jobs only), then Postgres, caching what finished.
pub async fn load_job(state: &AppState, account_id: Uuid, id: Uuid) -> Result<JobView> {
    match state.cache.get(account_id, id).await {
        Ok(Some(view)) => return Ok(view),
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "result cache unavailable; reading Postgres"),
    }
    let mut view = job_repo::find_for_account(&state.db, account_id, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    match view.status {
        JobStatus::Running => {
            view.progress = state.cache.progress(id).await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "reading job progress");
                None
            });
        }
        JobStatus::Queued => view.queue = queue_place(state, account_id, &view).await?,
        _ => {}
    }
    if let Err(e) = state.cache.put_terminal(account_id, &view).await {
        tracing::warn!(error = %e, "caching job");
    }
    Ok(view)
}

fn render(view: JobView, format: &str, language: Option<&str>) -> Result<Response> {
    let content_type = match format {
        "json" => return Ok(Json(view).into_response()),
        "verbose_json" => "application/json",
        "text" => "text/plain; charset=utf-8",
        "srt" => "application/x-subrip; charset=utf-8",
        "vtt" => "text/vtt; charset=utf-8",
        other => {
            return Err(ApiError::BadRequest(format!(
                "unknown format {other:?}: use json, verbose_json, text, srt or vtt"
            )))
        }
    };
    if let Some(at) = view.data_deleted_at {
        return Err(ApiError::Gone {
            code: "data_deleted",
            message: format!("the job's result was deleted at {at}"),
        });
    }
    if view.status != JobStatus::Succeeded {
        return Err(ApiError::Conflict {
            code: "job_not_finished",
            message: format!(
                "the job is {}; {format} is available once it has succeeded",
                view.status.as_str()
            ),
        });
    }
    let result = view
        .result
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("succeeded job without a result")))?;
    if format == "verbose_json" {
        return Ok(([(CONTENT_TYPE, content_type)], Json(result)).into_response());
    }
    let corrupt = |e: serde_json::Error| ApiError::Internal(e.into());
    if view.kind == JobKind::Translate {
        let translation: TranslationResult = serde_json::from_value(result).map_err(corrupt)?;
        return match format {
            "text" => Ok(([(CONTENT_TYPE, content_type)], translation.text + "\n").into_response()),
            _ => Err(ApiError::BadRequest(format!(
                "{format} needs timings; text translation jobs have none"
            ))),
        };
    }
    let mut transcript: TranscriptResult = serde_json::from_value(result).map_err(corrupt)?;
    let (text, segments) = match language {
        None => (transcript.text, transcript.segments),
        Some(code) => {
            let rendition = transcript.translations.remove(code).ok_or_else(|| {
                let available: Vec<&String> = transcript.translations.keys().collect();
                ApiError::BadRequest(format!(
                    "the job has no {code:?} translation; it has {available:?}"
                ))
            })?;
            (rendition.text, rendition.segments)
        }
    };
    let body = match format {
        "text" => text + "\n",
        "srt" => subtitles::srt(&segments),
        _ => subtitles::vtt(&segments),
    };
    Ok(([(CONTENT_TYPE, content_type)], body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use voxq_shared::job::JobParams;

    fn view(status: JobStatus) -> JobView {
        JobView {
            id: Uuid::now_v7(),
            kind: JobKind::Transcribe,
            status,
            params: JobParams::default(),
            result: None,
            error: None,
            attempts: 0,
            created_at: chrono::Utc::now(),
            started_at: None,
            finished_at: None,
            progress: None,
            queue: None,
            data_deleted_at: None,
        }
    }

    #[test]
    fn subtitles_of_an_unfinished_job_are_a_conflict_and_unknown_formats_a_bad_request() {
        let err = render(view(JobStatus::Queued), "srt", None).expect_err("not finished");
        assert!(matches!(
            err,
            ApiError::Conflict {
                code: "job_not_finished",
                ..
            }
        ));
        let err = render(view(JobStatus::Queued), "docx", None).expect_err("unknown");
        assert!(matches!(err, ApiError::BadRequest(_)));
        assert!(render(view(JobStatus::Queued), "json", None).is_ok());
    }
}
