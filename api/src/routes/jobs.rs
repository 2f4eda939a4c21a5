//! `POST /v1/jobs` and `GET /v1/jobs/{id}`.

use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Request, State};
use axum::http::header::{CONTENT_TYPE, LOCATION};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use uuid::Uuid;
use voxq_shared::auth::scope::Scope;
use voxq_shared::db::idempotency as idempotency_repo;
use voxq_shared::db::jobs::{self as job_repo, NewInput, NewJobInput};
use voxq_shared::db::outbox;
use voxq_shared::events::{self, Signal};
use voxq_shared::job::{
    JobKind, JobMessage, JobParams, JobStatus, JobView, QueuePlace, TranscriptResult,
    TranslationResult,
};
use voxq_shared::models::{self, ServedModel};
use voxq_shared::queue::{Lane, Topology};
use voxq_shared::quota::{self, Amounts, Reservation};
use voxq_shared::subtitles;

use super::extract::ApiQuery;
use super::job_lifecycle;
use super::job_request::{
    read_audio_upload, validate_text_job, AudioSource, AudioUploadForm, TextJobRequest,
};
use crate::config::ApiConfig;
use crate::error::{ApiError, ErrorBody, Result};
use crate::idempotency::{self, Begin, Fingerprint, Held};
use crate::principal::{Principal, RequestMeta};
use crate::reservations::{self, NewJob};
use crate::spool::Spooled;
use crate::state::AppState;

/// Headroom over the upload limit for multipart framing and text fields.
const MULTIPART_OVERHEAD: usize = 64 * 1024;

pub fn router(config: &ApiConfig) -> Router<AppState> {
    Router::new()
        .route(
            "/v1/jobs",
            post(submit).layer(DefaultBodyLimit::max(
                config.max_upload_bytes.saturating_add(MULTIPART_OVERHEAD),
            )),
        )
        .route(
            "/v1/jobs/{id}",
            get(get_job).delete(job_lifecycle::cancel_job),
        )
        .route("/v1/jobs/{id}/cancel", post(job_lifecycle::cancel_job_post))
        .route("/v1/jobs/{id}/events", get(job_lifecycle::job_events))
        .route(
            "/v1/jobs/{id}/data",
            axum::routing::delete(job_lifecycle::delete_job_data),
        )
}

/// The answer to an accepted job.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct JobAccepted {
    pub id: Uuid,
    pub status: JobStatus,
    /// Where to poll: `/v1/jobs/{id}`.
    pub url: String,
}

/// A validated job, ready to reserve quota for and store.
struct Submission<'a> {
    kind: JobKind,
    params: JobParams,
    input: NewJobInput<'a>,
    amounts: Amounts,
}

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
        (status = 422, description = "Invalid field, `unknown_model`, `unsupported_language`, \
            `models_apart` (speech translation into a language other than English needs one \
            worker serving both the Whisper model and the translation model)", body = ErrorBody),
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
            *url =
                super::outbound_url(&state.config.fetch.guard(), url, "invalid_audio_url").await?;
        }
        resolve_models(&state, upload.kind, &mut upload.params).await?;
        check_webhook(&state, &mut upload.params).await?;
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
        admit(&state, &principal, &meta, keyed, submission).await
    } else if content_type.starts_with("application/json") {
        // Text is counted in characters; four bytes each at most, plus room
        // for the other fields.
        let limit = state.config.max_text_chars.saturating_mul(4) + 4096;
        let body = axum::body::to_bytes(request.into_body(), limit)
            .await
            .map_err(|_| ApiError::PayloadTooLarge { limit })?;
        let value: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?;
        super::extract::refuse_nul(&value)?;
        // Keys sorted, whitespace gone: one fingerprint per meaning.
        let mut fingerprint = Fingerprint::new("json");
        fingerprint.field("body", value.to_string().as_bytes());
        let job: TextJobRequest = serde_json::from_value(value)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?;
        let (mut params, text) = validate_text_job(job, &state.config)?;
        resolve_models(&state, JobKind::Translate, &mut params).await?;
        check_webhook(&state, &mut params).await?;
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
        admit(&state, &principal, &meta, keyed, submission).await
    } else {
        Err(ApiError::UnsupportedMediaType(
            "send audio as multipart/form-data (field `file`) or a text job as application/json"
                .into(),
        ))
    }
}

/// The job's `webhook_url`, checked by the SSRF guard (and normalised).
async fn check_webhook(state: &AppState, params: &mut JobParams) -> Result<()> {
    if let Some(url) = params.webhook_url.take() {
        params.webhook_url = Some(super::webhooks::check_url(state, &url).await?);
    }
    Ok(())
}

/// Picks the job's model (the named one, or the default for its kind)
/// among those served, and checks its languages; fills in `params.model`
/// (and `translation_model` for speech translation into languages other
/// than English).
async fn resolve_models(state: &AppState, kind: JobKind, params: &mut JobParams) -> Result<()> {
    let lookup = |models: &[ServedModel], kind: JobKind, name: Option<&str>| {
        models::pick(models, kind, name).cloned()
    };
    let mut served = state.catalog.models(false).await?;
    let mut model = lookup(&served, kind, params.model.as_deref());
    if model.is_none() {
        // Perhaps a worker announced itself within the reuse window.
        served = state.catalog.models(true).await?;
        model = lookup(&served, kind, params.model.as_deref());
    }
    let model = model.ok_or_else(|| unknown_model(&served, kind, params.model.as_deref()))?;
    let speaks = |m: &ServedModel, code: &str| {
        m.info.languages.is_empty() || m.info.languages.iter().any(|l| l == code)
    };
    match kind {
        JobKind::Transcribe | JobKind::SpeechTranslate => {
            if let Some(language) = params.language.as_deref().filter(|l| !speaks(&model, l)) {
                return Err(unsupported_language(&model.info.name, language));
            }
        }
        JobKind::Translate => {
            let target = params.target_language.as_deref().unwrap_or("");
            if !speaks(&model, target) {
                return Err(unsupported_language(&model.info.name, target));
            }
        }
    }
    if kind == JobKind::SpeechTranslate {
        // Whisper translates into English itself; an English-only model's
        // transcript already is English.
        let whisper_english = |t: &str| t == "en" || t == "eng_Latn";
        let others: Vec<&String> = params
            .target_languages
            .iter()
            .filter(|t| !whisper_english(t))
            .collect();
        if !others.is_empty() {
            let name = params.translation_model.as_deref();
            let translator = lookup(&served, JobKind::Translate, name)
                .ok_or_else(|| unknown_model(&served, JobKind::Translate, name))?;
            if let Some(target) = others.iter().find(|t| !speaks(&translator, t)) {
                return Err(unsupported_language(&translator.info.name, target));
            }
            // The worker that transcribes also translates: a job no worker
            // could finish is refused now rather than failed later.
            let apart = state
                .catalog
                .served_together(&model.info.name, &translator.info.name)
                .await?
                == Some(false);
            if apart {
                return Err(ApiError::unprocessable(
                    "models_apart",
                    format!(
                        "no worker serves both {:?} and the translation model {:?}: speech \
                         translation runs both on one worker (see GET /v1/models)",
                        model.info.name, translator.info.name
                    ),
                ));
            }
            params.translation_model = Some(translator.info.name.clone());
        }
        // One spelling of English, so the result has one key for it.
        for target in &mut params.target_languages {
            if whisper_english(target) {
                *target = "en".into();
            }
        }
        params.target_languages.dedup();
    }
    params.model = Some(model.info.name);
    Ok(())
}

fn unknown_model(served: &[ServedModel], kind: JobKind, name: Option<&str>) -> ApiError {
    let available: Vec<&str> = served
        .iter()
        .filter(|m| m.info.kinds.contains(&kind))
        .map(|m| m.info.name.as_str())
        .collect();
    let asked = match name {
        Some(name) => format!("no worker serves model {name:?} for {} jobs", kind.as_str()),
        None => format!("no worker serves {} jobs", kind.as_str()),
    };
    ApiError::unprocessable(
        "unknown_model",
        format!("{asked}; available: {available:?} (see GET /v1/models)"),
    )
}

fn unsupported_language(model: &str, language: &str) -> ApiError {
    ApiError::unprocessable(
        "unsupported_language",
        format!("model {model:?} does not handle the language {language:?}"),
    )
}

/// Runs `accept` under the request's idempotency key, if it has one:
/// replays a stored response, refuses a conflicting one, and forgets the
/// key if the submission fails.
async fn admit(
    state: &AppState,
    principal: &Principal,
    meta: &RequestMeta,
    keyed: Option<(String, [u8; 32])>,
    submission: Submission<'_>,
) -> Result<Response> {
    let Some((key, fingerprint)) = keyed else {
        return accept(state, principal, meta, submission, None).await;
    };
    let held = match idempotency::begin(state, principal, key, fingerprint).await? {
        Begin::Respond(response) => return Ok(response),
        Begin::Proceed(held) => held,
    };
    let accepted = accept(state, principal, meta, submission, Some(&held)).await;
    if accepted.is_err() {
        idempotency::abandon(state, principal, &held).await;
    }
    accepted
}

/// Reserves the job's quota, then commits the job with its input, its
/// reservation and its message (the outbox row) in one transaction, then
/// publishes with confirms. A 202 means the job is stored with its
/// message: if the broker cannot take it now, the outbox relay publishes
/// it when the broker is back, even if this process dies first.
async fn accept(
    state: &AppState,
    principal: &Principal,
    meta: &RequestMeta,
    submission: Submission<'_>,
    idempotency: Option<&Held>,
) -> Result<Response> {
    let reservation = Reservation {
        job_id: Uuid::now_v7(),
        account_id: principal.account_id,
        day: quota::today(),
        amounts: submission.amounts,
    };
    let kind = submission.kind;
    let audio_seconds = submission.amounts.audio_ms as f64 / 1000.0;
    let long = audio_seconds > state.config.long_audio_seconds;
    let fair_share = state.config.fair_share;
    let mut reserved = reservations::reserve_and_insert(
        state,
        principal,
        meta,
        &reservation,
        NewJob {
            kind: submission.kind,
            params: &submission.params,
            input: submission.input,
        },
        |in_flight| {
            if long {
                Lane::Long
            } else if in_flight > fair_share {
                Lane::Bulk
            } else {
                Lane::Interactive
            }
        },
    )
    .await?;
    let id = reserved.view.id;
    let lane = reserved.lane;
    let message = JobMessage {
        job_id: id,
        account_id: principal.account_id,
        kind,
        model: submission.params.model.clone().unwrap_or_default(),
        params: submission.params,
    };
    let payload = serde_json::to_vec(&message).map_err(|e| ApiError::Internal(e.into()))?;
    if payload.len() > outbox::MAX_PAYLOAD_BYTES {
        drop(reserved);
        reservations::release(state, &reservation).await;
        return Err(ApiError::unprocessable(
            "invalid_parameter",
            "the job's parameters are too large",
        ));
    }
    let routing_key = Topology::routing_key(&message.model, lane);
    let url = format!("/v1/jobs/{id}");
    let body = serde_json::to_vec(&JobAccepted {
        id,
        status: reserved.view.status,
        url: url.clone(),
    })
    .map_err(|e| ApiError::Internal(e.into()))?;
    // The message, and the response a retry will get, commit with the job.
    let mut stored =
        outbox::insert(&mut reserved.tx, id, &message.model, &routing_key, &payload).await;
    if let (Ok(()), Some(held)) = (&stored, idempotency) {
        let account = principal.account_id;
        stored =
            idempotency_repo::complete(&mut reserved.tx, account, &held.key, 202, &body, id).await;
    }
    if let Err(e) = stored {
        drop(reserved);
        reservations::release(state, &reservation).await;
        return Err(e.into());
    }
    reserved.commit(state, &reservation).await?;
    let published = state
        .publisher
        .publish_raw(&message.model, &routing_key, &payload, id)
        .await;
    match published {
        Ok(()) => {
            if let Err(e) = outbox::sent(&state.db, id).await {
                // Published twice at worst; the worker skips the copy.
                tracing::warn!(job_id = %id, error = %e, "clearing a published outbox row");
            }
        }
        Err(e) => {
            tracing::warn!(job_id = %id, error = %e, "publishing failed; the outbox relay will retry");
            if let Err(e) = outbox::hand_over(&state.db, id).await {
                // The relay still takes it, after its grace.
                tracing::warn!(job_id = %id, error = %e, "handing a message to the relay");
            }
            state.relay.wake();
        }
    }
    state
        .metrics
        .jobs_submitted
        .with_label_values(&[kind.as_str()])
        .inc();
    tracing::info!(job_id = %id, kind = kind.as_str(), lane = lane.as_str(), model = %message.model, "job accepted");
    Ok((
        StatusCode::ACCEPTED,
        [
            (LOCATION, url),
            (CONTENT_TYPE, "application/json".to_owned()),
        ],
        body,
    )
        .into_response())
}

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
        (status = 200, description = "The job (or its transcript as text, SRT or WebVTT)", body = JobView),
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
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<GetJobQuery>,
) -> Result<Response> {
    principal.require(Scope::JobsRead)?;
    let id = job_id(&id)?;
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
async fn wait_for_end(
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
            Some(Signal::Resync) => crate::waiters::resync_pause().await,
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

/// A job id from the path; a malformed one cannot name anyone's job: the
/// same answer as a missing one.
pub(super) fn job_id(id: &str) -> Result<Uuid> {
    Uuid::parse_str(id).map_err(|_| ApiError::NotFound)
}

/// Redis first (finished jobs only), then Postgres, caching what finished.
pub(super) async fn load_job(state: &AppState, account_id: Uuid, id: Uuid) -> Result<JobView> {
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
