//! `POST /v1/jobs` and `GET /v1/jobs/{id}`.

use axum::body::Bytes;
use axum::extract::multipart::MultipartError;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Query, Request, State};
use axum::http::header::{CONTENT_TYPE, LOCATION};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;
use voxq_shared::audio::{self, AudioInfo};
use voxq_shared::db::jobs::{self as job_repo, NewInput};
use voxq_shared::job::{
    JobError, JobKind, JobMessage, JobParams, JobStatus, JobView, TranscriptResult,
    WHISPER_LANGUAGES,
};
use voxq_shared::subtitles;

use crate::auth::AuthAccount;
use crate::config::ApiConfig;
use crate::error::{ApiError, Result};
use crate::state::AppState;

/// Headroom over the upload limit for multipart framing and text fields.
const MULTIPART_OVERHEAD: usize = 64 * 1024;
const MAX_FIELD_CHARS: usize = 64;

pub fn router(config: &ApiConfig) -> Router<AppState> {
    Router::new()
        .route(
            "/v1/jobs",
            post(submit).layer(DefaultBodyLimit::max(
                config.max_upload_bytes.saturating_add(MULTIPART_OVERHEAD),
            )),
        )
        .route("/v1/jobs/{id}", get(get_job))
}

/// An audio upload that passed every check.
struct AudioUpload {
    params: JobParams,
    data: Bytes,
    info: AudioInfo,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TextJobRequest {
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    target_language: Option<String>,
    #[serde(default)]
    model: Option<String>,
}

async fn submit(
    auth: AuthAccount,
    State(state): State<AppState>,
    request: Request,
) -> Result<Response> {
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        let multipart = Multipart::from_request(request, &state)
            .await
            .map_err(|e| ApiError::BadRequest(e.body_text()))?;
        let upload = read_audio_upload(multipart, &state.config).await?;
        accept_audio_job(auth, &state, upload).await
    } else if content_type.starts_with("application/json") {
        let body = Bytes::from_request(request, &state)
            .await
            .map_err(|e| ApiError::BadRequest(e.body_text()))?;
        let job: TextJobRequest = serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?;
        text_job(job)
    } else {
        Err(ApiError::UnsupportedMediaType(
            "send audio as multipart/form-data (field `file`) or a text job as application/json"
                .into(),
        ))
    }
}

async fn read_audio_upload(mut multipart: Multipart, config: &ApiConfig) -> Result<AudioUpload> {
    let mut data: Option<Vec<u8>> = None;
    let mut kind = JobKind::Transcribe;
    let mut params = JobParams::default();
    let part_error = |e: MultipartError| multipart_error(e, config.max_upload_bytes);
    while let Some(mut field) = multipart.next_field().await.map_err(part_error)? {
        let name = field.name().unwrap_or("").to_owned();
        match name.as_str() {
            "file" => {
                let mut buf = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(part_error)? {
                    if buf.len() + chunk.len() > config.max_upload_bytes {
                        return Err(ApiError::PayloadTooLarge {
                            limit: config.max_upload_bytes,
                        });
                    }
                    buf.extend_from_slice(&chunk);
                }
                data = Some(buf);
            }
            "kind" | "language" | "model" => {
                let value = field.text().await.map_err(part_error)?;
                let value = value.trim();
                if value.chars().count() > MAX_FIELD_CHARS {
                    return Err(ApiError::BadRequest(format!("field `{name}` is too long")));
                }
                match name.as_str() {
                    "kind" => {
                        kind = JobKind::parse(value).ok_or_else(|| {
                            ApiError::unprocessable(
                                "invalid_kind",
                                format!("unknown job kind {value:?}"),
                            )
                        })?
                    }
                    "language" => params.language = Some(validate_language(value)?),
                    _ => params.model = Some(value.to_owned()),
                }
            }
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unexpected form field {other:?}"
                )));
            }
        }
    }
    if kind != JobKind::Transcribe {
        return Err(ApiError::unprocessable(
            "invalid_kind",
            format!("{} jobs take a JSON body, not an upload", kind.as_str()),
        ));
    }
    if let Some(model) = &params.model {
        return Err(ApiError::unprocessable(
            "unknown_model",
            format!("no worker serves model {model:?}"),
        ));
    }
    let data =
        Bytes::from(data.ok_or_else(|| ApiError::BadRequest("missing form field `file`".into()))?);
    if data.is_empty() {
        return Err(ApiError::unprocessable(
            "invalid_audio",
            "the uploaded file is empty",
        ));
    }
    // Parsing a container is CPU work; keep it off the async executor.
    // `Bytes` clones share one buffer: the upload is held once.
    let probe_input = data.clone();
    let info = tokio::task::spawn_blocking(move || audio::probe(probe_input))
        .await
        .map_err(|e| ApiError::Internal(e.into()))??;
    if info.duration_seconds < config.min_audio_seconds {
        return Err(ApiError::unprocessable(
            "audio_too_short",
            format!(
                "audio lasts {:.3} s; the minimum is {} s",
                info.duration_seconds, config.min_audio_seconds
            ),
        ));
    }
    if info.duration_seconds > config.max_audio_seconds {
        return Err(ApiError::unprocessable(
            "audio_too_long",
            format!(
                "audio lasts {:.0} s; the maximum is {} s",
                info.duration_seconds, config.max_audio_seconds
            ),
        ));
    }
    Ok(AudioUpload { params, data, info })
}

fn multipart_error(e: MultipartError, limit: usize) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge { limit }
    } else {
        ApiError::BadRequest(format!("malformed multipart body: {}", e.body_text()))
    }
}

fn validate_language(value: &str) -> Result<String> {
    let code = value.to_ascii_lowercase();
    if WHISPER_LANGUAGES.contains(&code.as_str()) {
        Ok(code)
    } else {
        Err(ApiError::unprocessable(
            "unknown_language",
            format!("unknown language {value:?}: use an ISO 639-1 code such as \"en\""),
        ))
    }
}

/// Commits the job and its input, then publishes with confirms. A 202 is
/// only sent once the broker holds the message.
async fn accept_audio_job(
    auth: AuthAccount,
    state: &AppState,
    upload: AudioUpload,
) -> Result<Response> {
    let id = Uuid::now_v7();
    let kind = JobKind::Transcribe;
    let mut tx = state.db.begin().await?;
    let view = job_repo::insert(
        &mut tx,
        id,
        auth.account_id,
        kind,
        &upload.params,
        Some(NewInput {
            content_type: upload.info.container.mime(),
            codec: &upload.info.codec,
            sample_rate: upload.info.sample_rate,
            channels: upload.info.channels,
            duration_seconds: upload.info.duration_seconds,
            data: &upload.data,
        }),
    )
    .await?;
    tx.commit().await?;

    let message = JobMessage {
        job_id: id,
        account_id: auth.account_id,
        kind,
        params: upload.params,
    };
    if let Err(e) = state.publisher.publish(&message).await {
        tracing::error!(job_id = %id, error = %e, "publishing job failed");
        let error = JobError {
            code: "queue_unavailable".into(),
            message: "the job could not be queued; submit it again".into(),
        };
        if let Err(e) = job_repo::fail(&state.db, id, &error).await {
            tracing::error!(job_id = %id, error = %e, "marking unqueued job failed");
        }
        return Err(ApiError::Unavailable("the job queue"));
    }
    state
        .metrics
        .jobs_submitted
        .with_label_values(&[kind.as_str()])
        .inc();
    tracing::info!(job_id = %id, duration = upload.info.duration_seconds, codec = %upload.info.codec, "job accepted");
    let url = format!("/v1/jobs/{id}");
    Ok((
        StatusCode::ACCEPTED,
        [(LOCATION, url.clone())],
        Json(json!({ "id": view.id, "status": view.status, "url": url })),
    )
        .into_response())
}

fn text_job(job: TextJobRequest) -> Result<Response> {
    match JobKind::parse(&job.kind) {
        Some(JobKind::Translate) => {
            if job.text.as_deref().unwrap_or("").trim().is_empty() {
                return Err(ApiError::unprocessable(
                    "invalid_text",
                    "`text` is required",
                ));
            }
            if job.target_language.is_none() {
                return Err(ApiError::unprocessable(
                    "invalid_language",
                    "`target_language` is required",
                ));
            }
            Err(match job.model {
                Some(model) => ApiError::unprocessable(
                    "unknown_model",
                    format!("no worker serves model {model:?}"),
                ),
                None => ApiError::unprocessable(
                    "no_model",
                    "no model serves translate jobs on this deployment",
                ),
            })
        }
        Some(JobKind::Transcribe) => Err(ApiError::unprocessable(
            "invalid_kind",
            "transcribe jobs take a multipart/form-data upload with a `file` field",
        )),
        None => Err(ApiError::unprocessable(
            "invalid_kind",
            format!("unknown job kind {:?}", job.kind),
        )),
    }
}

#[derive(Deserialize)]
struct GetJobQuery {
    /// `json` (default), `text`, `srt` or `vtt`.
    format: Option<String>,
}

async fn get_job(
    auth: AuthAccount,
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: std::result::Result<Query<GetJobQuery>, QueryRejection>,
) -> Result<Response> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    // A malformed id cannot name anyone's job: same answer as a missing one.
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound)?;
    let view = load_job(&state, auth, id).await?;
    render(view, query.format.as_deref().unwrap_or("json"))
}

/// Redis first (finished jobs only), then Postgres, caching what finished.
async fn load_job(state: &AppState, auth: AuthAccount, id: Uuid) -> Result<JobView> {
    match state.cache.get(auth.account_id, id).await {
        Ok(Some(view)) => return Ok(view),
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "result cache unavailable; reading Postgres"),
    }
    let view = job_repo::find_for_account(&state.db, auth.account_id, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if let Err(e) = state.cache.put_terminal(auth.account_id, &view).await {
        tracing::warn!(error = %e, "caching job");
    }
    Ok(view)
}

fn render(view: JobView, format: &str) -> Result<Response> {
    let content_type = match format {
        "json" => return Ok(Json(view).into_response()),
        "text" => "text/plain; charset=utf-8",
        "srt" => "application/x-subrip; charset=utf-8",
        "vtt" => "text/vtt; charset=utf-8",
        other => {
            return Err(ApiError::BadRequest(format!(
                "unknown format {other:?}: use json, text, srt or vtt"
            )))
        }
    };
    if view.status != JobStatus::Succeeded {
        return Err(ApiError::Conflict {
            code: "job_not_finished",
            message: format!(
                "the job is {}; {format} is available once it has succeeded",
                view.status.as_str()
            ),
        });
    }
    let transcript: TranscriptResult = view
        .result
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| ApiError::Internal(e.into()))?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("succeeded job without a result")))?;
    let body = match format {
        "text" => transcript.text + "\n",
        "srt" => subtitles::srt(&transcript.segments),
        _ => subtitles::vtt(&transcript.segments),
    };
    Ok(([(CONTENT_TYPE, content_type)], body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        }
    }

    #[test]
    fn subtitles_of_an_unfinished_job_are_a_conflict_and_unknown_formats_a_bad_request() {
        let err = render(view(JobStatus::Queued), "srt").expect_err("not finished");
        assert!(matches!(
            err,
            ApiError::Conflict {
                code: "job_not_finished",
                ..
            }
        ));
        let err = render(view(JobStatus::Queued), "docx").expect_err("unknown");
        assert!(matches!(err, ApiError::BadRequest(_)));
        assert!(render(view(JobStatus::Queued), "json").is_ok());
    }
}
