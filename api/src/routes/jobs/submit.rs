//! `POST /v1/jobs`: the request read by its content type (an audio upload
//! or a text job as JSON), turned into a [`Submission`] and admitted.

use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::Response;
use voxq_shared::auth::scope::Scope;
use voxq_shared::db::jobs::{NewInput, NewJobInput};
use voxq_shared::job::JobKind;
use voxq_shared::quota::{self, Amounts};

use crate::error::{ApiError, ErrorBody, Result};
use crate::http::extract::refuse_nul;
use crate::http::principal::{Principal, RequestMeta};
use crate::state::AppState;
use crate::submission::admission::{self, JobAccepted};
use crate::submission::idempotency::{self, Fingerprint};
use crate::submission::spool::Spooled;
use crate::submission::validation::{
    self, read_audio_upload, validate_text_job, AudioSource, AudioUploadForm, TextJobRequest,
};
use crate::submission::{models, Submission};

/// Submit a job: audio to transcribe, or text to translate.
#[utoipa::path(
    post,
    path = "/v1/jobs",
    tag = "jobs",
    security(("bearer" = ["jobs:write"])),
    params(
        ("Idempotency-Key" = Option<String>, Header,
         description = "Up to 255 printable characters, kept 24 hours per account. A retry \
            with the same key and request gets the first response byte for byte (with \
            `Idempotent-Replayed: true`) and creates no second job; the same key with \
            another request is a 422 `idempotency_key_reused`; while the first request is \
            still in progress, a 409 `idempotency_in_progress`. Failed requests are not kept."),
    ),
    request_body(
        content(
            (AudioUploadForm = "multipart/form-data"),
            (TextJobRequest = "application/json"),
        )
    ),
    responses(
        (status = 202, description = "Committed with its queue message, quota reserved: the \
            job will finish, fail with a reason or be cancelled, whatever crashes meanwhile",
         body = JobAccepted,
         headers(("location" = String, description = "The job's URL"))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, description = "`idempotency_in_progress`", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 422, description = "A field is invalid, or no served model can take the \
            job (`models_apart`: speech translation into a language other than English needs \
            one worker serving both the Whisper model and the translation model).",
            body = ErrorBody),
        (status = 429, description = "Rate limit, quota or concurrency limit", body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub async fn submit(
    principal: Principal,
    meta: RequestMeta,
    State(state): State<AppState>,
    request: Request,
) -> Result<Response> {
    principal.require(Scope::JobsWrite)?;
    let idempotency_key = idempotency::key(request.headers())?;
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
        let mut upload = read_audio_upload(multipart, &state.config).await?;
        if let AudioSource::Url(url) = &mut upload.source {
            *url = validation::check_audio_url(&state.config, url).await?;
        }
        models::resolve(&state.catalog, upload.kind, &mut upload.params).await?;
        validation::check_webhook(&state.config, &mut upload.params).await?;
        let fingerprint = upload.fingerprint;
        let (input, duration) = match &upload.source {
            AudioSource::File { data, info } => (
                NewJobInput::Audio(NewInput {
                    content_type: info.container.mime(),
                    codec: &info.codec,
                    sample_rate: info.sample_rate,
                    channels: info.channels,
                    duration_seconds: info.duration_seconds,
                    data: data.audio_data(),
                }),
                info.duration_seconds,
            ),
            // Its length is known once fetched: reserve the configured
            // estimate; the worker settles what it really was.
            AudioSource::Url(url) => (
                NewJobInput::Url {
                    url,
                    audio_limit_ms: principal.limits.audio_seconds_per_day.saturating_mul(1000),
                },
                state
                    .config
                    .url_audio_estimate
                    .min(state.config.max_audio_seconds),
            ),
        };
        let submission = Submission {
            kind: upload.kind,
            params: upload.params,
            input,
            amounts: Amounts {
                audio_ms: quota::seconds_to_ms(duration),
                text_chars: 0,
                processing_ms: quota::seconds_to_ms(duration * state.config.processing_estimate),
            },
        };
        let keyed = idempotency_key.map(|key| (key, fingerprint));
        // Held until the job is committed.
        let _turn = match &upload.source {
            AudioSource::File {
                data: Spooled::File { .. },
                ..
            } => Some(state.copies.turn().await?),
            _ => None,
        };
        admission::admit(&state, &principal, &meta, keyed, submission).await
    } else if content_type.starts_with("application/json") {
        // Text is counted in characters; four bytes each at most, plus room
        // for the other fields.
        let limit = state.config.max_text_chars.saturating_mul(4) + 4096;
        let body = axum::body::to_bytes(request.into_body(), limit)
            .await
            .map_err(|_| ApiError::PayloadTooLarge { limit })?;
        let value: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?;
        refuse_nul(&value)?;
        // Keys sorted, whitespace gone: one fingerprint per meaning.
        let mut fingerprint = Fingerprint::new("json");
        fingerprint.field("body", value.to_string().as_bytes());
        let job: TextJobRequest = serde_json::from_value(value)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?;
        let (mut params, text) = validate_text_job(job, &state.config)?;
        models::resolve(&state.catalog, JobKind::Translate, &mut params).await?;
        validation::check_webhook(&state.config, &mut params).await?;
        let chars = text.chars().count() as u64;
        let submission = Submission {
            kind: JobKind::Translate,
            params,
            input: NewJobInput::Text(&text),
            // About a millisecond of worker time per character, until the
            // measured time replaces it.
            amounts: Amounts {
                audio_ms: 0,
                text_chars: chars,
                processing_ms: chars,
            },
        };
        let keyed = idempotency_key.map(|key| (key, fingerprint.finish()));
        admission::admit(&state, &principal, &meta, keyed, submission).await
    } else {
        Err(ApiError::UnsupportedMediaType(
            "send audio as multipart/form-data (field `file`) or a text job as application/json"
                .into(),
        ))
    }
}
