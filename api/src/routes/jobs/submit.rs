//! `POST /v1/jobs`: the request read by its content type (an audio upload
//! or a text job as JSON), turned into a [`Submission`] and admitted.

use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::Response;
use voxq_shared::auth::scope::Scope;
use voxq_shared::job::JobKind;

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
use crate::submission::{inputs, models};

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
         headers(("location" = String, description = "The job's URL")),
         example = json!({"id": "0193f0c2-7b1e-7d3a-9c41-2f6d8e5a1b07", "status": "queued",
                          "url": "/v1/jobs/0193f0c2-7b1e-7d3a-9c41-2f6d8e5a1b07"})),
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
        let submission = inputs::audio(
            upload.kind,
            upload.params,
            &upload.source,
            &principal,
            &state.config,
        );
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
        let submission = inputs::text(params, &text);
        let keyed = idempotency_key.map(|key| (key, fingerprint.finish()));
        admission::admit(&state, &principal, &meta, keyed, submission).await
    } else {
        Err(ApiError::UnsupportedMediaType(
            "send audio as multipart/form-data (field `file`) or a text job as application/json"
                .into(),
        ))
    }
}
