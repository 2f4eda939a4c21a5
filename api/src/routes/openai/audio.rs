//! `POST /v1/audio/transcriptions` and `/v1/audio/translations`: OpenAI's
//! multipart form read and checked, the job admitted and waited for, the
//! result rendered in the asked `response_format`.

use axum::extract::{Multipart, State};
use axum::http::HeaderMap;
use axum::response::Response;
use voxq_shared::auth::scope::Scope;
use voxq_shared::job::{JobKind, JobParams, JobStatus};

use super::render::{self, Format, Granularities};
use super::{OpenAiError, OpenAiErrorBody};
use crate::error::ApiError;
use crate::http::principal::{Principal, RequestMeta};
use crate::routes::awaited::{self, Keyed};
use crate::state::AppState;
use crate::submission::idempotency::Fingerprint;
use crate::submission::spool::{self, Spooled};
use crate::submission::validation::{
    self, multipart_error, parse_temperature, validate_language, AudioSource, MAX_PROMPT_CHARS,
};
use crate::submission::{inputs, models};

type Result<T, E = OpenAiError> = std::result::Result<T, E>;

/// OpenAI's model name; it means the default model. The names in
/// `GET /v1/models` work too.
pub const OPENAI_MODEL: &str = "whisper-1";
/// Longest short field (`model`, `language`, `response_format`, …).
const MAX_FIELD_CHARS: usize = 64;

/// The form OpenAI's SDKs send (`multipart/form-data`).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the form; `read_form` parses it
pub struct OpenAiAudioForm {
    /// The audio: WAV, MP3, FLAC or Ogg Vorbis, recognised by its bytes.
    #[schema(format = Binary, value_type = String)]
    file: Vec<u8>,
    /// `whisper-1` (the default model) or a model from `GET /v1/models`.
    #[schema(example = "whisper-1")]
    model: String,
    /// Transcriptions only: ISO 639-1 code of the spoken language;
    /// detected when absent.
    language: Option<String>,
    /// Text to condition the first window on (names, spellings, style),
    /// at most 1000 characters.
    prompt: Option<String>,
    /// `json` (the default), `text`, `srt`, `verbose_json` or `vtt`.
    response_format: Option<String>,
    /// 0–1; 0 (the default): beam search, higher temperatures only for
    /// windows that fail the quality checks.
    temperature: Option<f32>,
    /// `verbose_json` only: `word` and/or `segment` (the default), as
    /// `timestamp_granularities[]`, one part each.
    #[schema(rename = "timestamp_granularities[]")]
    timestamp_granularities: Option<Vec<String>>,
}

/// What OpenAI's form asked for, checked.
struct AudioForm {
    params: JobParams,
    upload: Option<Spooled>,
    format: Format,
    granularities: Granularities,
    /// The fields, sorted before they are hashed: SDKs send them in
    /// different orders, and the same request must be one job.
    fields: Vec<(&'static str, Vec<u8>)>,
}

impl AudioForm {
    fn fingerprint(&mut self, route: &str) -> Fingerprint {
        self.fields.sort();
        let mut fingerprint = Fingerprint::new(route);
        for (name, value) in &self.fields {
            fingerprint.field(name, value);
        }
        fingerprint
    }
}

/// Transcribe audio into the spoken language, OpenAI's way.
#[utoipa::path(
    post,
    path = "/v1/audio/transcriptions",
    tag = "openai",
    security(("bearer" = ["jobs:write"])),
    request_body(content = OpenAiAudioForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "The transcript in `response_format`: JSON \
            (`{\"text\": …}`; `verbose_json` adds `task`, `language`, `duration`, `segments`, \
            `words`), plain text, SRT or WebVTT",
         content(
            (serde_json::Value = "application/json",
             example = json!({"text": "Hello world.", "usage": {"type": "duration", "seconds": 2}})),
            (String = "text/plain"),
         )),
        (status = 400, description = "A parameter is invalid (`param` names it)", body = OpenAiErrorBody),
        (status = 401, description = "Missing or wrong API key (`invalid_api_key`)", body = OpenAiErrorBody),
        (status = 413, description = "The file is larger than the upload limit", body = OpenAiErrorBody),
        (status = 429, description = "Rate limit (`rate_limit_exceeded`) or quota \
            (`insufficient_quota`)", body = OpenAiErrorBody),
        (status = 504, description = "`job_pending`: the job has not ended within \
            `VOXQ_RESULT_WAIT`; the message names it, `Location` points at it, and the same \
            request sent again waits on the same job", body = OpenAiErrorBody),
        (status = 422, description = "The job failed (`job_failed`) or was cancelled \
            (`job_cancelled`)", body = OpenAiErrorBody),
    )
)]
pub async fn transcriptions(
    principal: Principal,
    meta: RequestMeta,
    State(state): State<AppState>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Result<Response> {
    handle(
        JobKind::Transcribe,
        principal,
        meta,
        state,
        headers,
        multipart,
    )
    .await
}

/// Translate speech into English text, OpenAI's way.
#[utoipa::path(
    post,
    path = "/v1/audio/translations",
    tag = "openai",
    security(("bearer" = ["jobs:write"])),
    request_body(content = OpenAiAudioForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "The English text in `response_format`",
         content(
            (serde_json::Value = "application/json", example = json!({"text": "Hello world."})),
            (String = "text/plain"),
         )),
        (status = 400, description = "A parameter is invalid (`param` names it)", body = OpenAiErrorBody),
        (status = 401, description = "Missing or wrong API key (`invalid_api_key`)", body = OpenAiErrorBody),
        (status = 413, description = "The file is larger than the upload limit", body = OpenAiErrorBody),
        (status = 429, description = "Rate limit or quota", body = OpenAiErrorBody),
        (status = 422, description = "The job failed (`job_failed`) or was cancelled \
            (`job_cancelled`)", body = OpenAiErrorBody),
        (status = 504, description = "`job_pending`, as for transcriptions", body = OpenAiErrorBody),
    )
)]
pub async fn translations(
    principal: Principal,
    meta: RequestMeta,
    State(state): State<AppState>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Result<Response> {
    handle(
        JobKind::SpeechTranslate,
        principal,
        meta,
        state,
        headers,
        multipart,
    )
    .await
}

async fn handle(
    kind: JobKind,
    principal: Principal,
    meta: RequestMeta,
    state: AppState,
    headers: HeaderMap,
    multipart: Multipart,
) -> Result<Response> {
    principal.require(Scope::JobsWrite)?;
    let mut form = read_form(kind, multipart, &state).await?;
    let data = form
        .upload
        .take()
        .ok_or_else(|| OpenAiError::invalid("file", "you must provide a `file`"))?;
    if form.granularities.words && form.format != Format::VerboseJson {
        return Err(OpenAiError::invalid(
            "timestamp_granularities",
            "timestamp_granularities needs response_format `verbose_json`",
        ));
    }
    form.params.word_timestamps = form.granularities.words;
    if kind == JobKind::SpeechTranslate {
        form.params.target_languages = vec!["en".to_owned()];
    }
    models::resolve(&state.catalog, kind, &mut form.params)
        .await
        .map_err(OpenAiError::at("model"))?;
    let source = validation::probe(data, &state.config)
        .await
        .map_err(OpenAiError::at("file"))?;
    let route = match kind {
        JobKind::SpeechTranslate => "openai-translations",
        _ => "openai-transcriptions",
    };
    let keyed = Keyed::new(&headers, route, form.fingerprint(route))?;
    // Held until the job is committed.
    let turn = match &source {
        AudioSource::File {
            data: Spooled::File { .. },
            ..
        } => Some(state.copies.turn().await?),
        _ => None,
    };
    let params = form.params;
    let view = awaited::run(&state, &principal, &meta, keyed, turn, || {
        inputs::audio(kind, params.clone(), &source, &principal, &state.config)
    })
    .await?;
    if view.status != JobStatus::Succeeded || view.data_deleted_at.is_some() {
        return Err(awaited::unsuccessful(&view).into());
    }
    let result = view
        .result
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("succeeded job without a result")))?;
    Ok(render::response(
        kind,
        result,
        form.format,
        form.granularities,
    )?)
}

async fn read_form(kind: JobKind, mut multipart: Multipart, state: &AppState) -> Result<AudioForm> {
    let config = &state.config;
    let part_error = |e| multipart_error(e, config.max_upload_bytes);
    let mut form = AudioForm {
        params: JobParams::default(),
        upload: None,
        format: Format::Json,
        granularities: Granularities::default(),
        fields: Vec::new(),
    };
    let mut model = None;
    while let Some(mut field) = multipart.next_field().await.map_err(part_error)? {
        let name = field.name().unwrap_or("").to_owned();
        if name == "file" {
            if form.upload.is_some() {
                return Err(OpenAiError::invalid("file", "send one `file`"));
            }
            let upload = spool::take(
                &mut field,
                config.max_upload_bytes,
                &config.spool_dir(),
                part_error,
            )
            .await?;
            form.fields.push(("file", upload.digest.to_vec()));
            form.upload = Some(upload.data);
            continue;
        }
        let param = field_param(kind, &name)?;
        let value = field.text().await.map_err(part_error)?;
        let value = value.trim();
        let limit = if param == "prompt" {
            MAX_PROMPT_CHARS
        } else {
            MAX_FIELD_CHARS
        };
        if value.chars().count() > limit || value.contains('\0') {
            return Err(OpenAiError::invalid(
                param,
                format!("`{param}` must be at most {limit} characters, without NUL"),
            ));
        }
        form.fields.push((param, value.as_bytes().to_vec()));
        match param {
            "model" => model = Some(value.to_owned()),
            "language" if !value.is_empty() => {
                form.params.language =
                    Some(validate_language(value).map_err(OpenAiError::at("language"))?)
            }
            "prompt" if !value.is_empty() => form.params.prompt = Some(value.to_owned()),
            "response_format" => {
                form.format = Format::parse(value).ok_or_else(|| {
                    OpenAiError::invalid(
                        "response_format",
                        format!(
                            "unsupported response_format {value:?}: use json, text, srt, \
                             verbose_json or vtt"
                        ),
                    )
                })?
            }
            "temperature" => {
                form.params.temperature =
                    Some(parse_temperature(value).map_err(OpenAiError::at("temperature"))?)
            }
            "timestamp_granularities" => form
                .granularities
                .add(value)
                .map_err(|m| OpenAiError::invalid("timestamp_granularities", m))?,
            "stream" if value == "false" => {}
            "stream" => {
                return Err(OpenAiError::invalid(
                    "stream",
                    "streaming is not supported: follow /v1/jobs/{id}/events for progress",
                ))
            }
            _ => {}
        }
    }
    match model.as_deref() {
        None | Some("") => {
            return Err(OpenAiError::invalid("model", "you must provide a `model`"));
        }
        Some(OPENAI_MODEL) => {}
        Some(name) => form.params.model = Some(name.to_owned()),
    }
    Ok(form)
}

/// The parameter a form field sets; OpenAI's SDKs send lists as `name[]`.
fn field_param(kind: JobKind, name: &str) -> Result<&'static str> {
    Ok(match name {
        "model" => "model",
        "prompt" => "prompt",
        "response_format" => "response_format",
        "temperature" => "temperature",
        "stream" => "stream",
        "timestamp_granularities[]" | "timestamp_granularities" => "timestamp_granularities",
        "language" if kind == JobKind::Transcribe => "language",
        _ => {
            return Err(OpenAiError::Param {
                status: axum::http::StatusCode::BAD_REQUEST,
                param: name.to_owned(),
                code: "unknown_parameter",
                message: format!("unrecognized request argument supplied: {name}"),
            })
        }
    })
}
