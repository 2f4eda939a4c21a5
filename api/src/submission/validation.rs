//! What a client sends to `POST /v1/jobs`, read and checked before
//! anything is stored: the multipart form of an audio job, the JSON body
//! of a text job, their fields and language codes.
//!
//! Longer than most files: these are the checks of every way a job comes
//! in (the OpenAI and LibreTranslate routes call them too), kept in one
//! place so that the ways agree; some eighty lines are the two documented
//! request bodies, whose doc comments are the OpenAPI document's.

use axum::extract::multipart::MultipartError;
use axum::extract::Multipart;
use axum::http::StatusCode;
use serde::Deserialize;
use voxq_shared::audio::{self, AudioInfo};
use voxq_shared::job::{JobKind, JobParams};
use voxq_shared::whisper_languages::WHISPER_LANGUAGES;

use super::idempotency::Fingerprint;
use super::invalid::{Invalid, MAX_TARGETS};
use super::spool::{self, Spooled};
use crate::config::ApiConfig;
use crate::error::{ApiError, Result};
use crate::outbound::MAX_URL_CHARS;

/// Longest short form field (`kind`, `language`, `model`, …).
const MAX_FIELD_CHARS: usize = 64;
/// Longest `prompt`: Whisper reads at most 223 tokens of it, a few
/// characters each.
pub const MAX_PROMPT_CHARS: usize = 1000;
/// Most alternative translations one job may ask for.
pub const MAX_ALTERNATIVES: u8 = 3;

/// An audio upload that passed every check.
pub struct AudioUpload {
    pub kind: JobKind,
    pub params: JobParams,
    pub source: AudioSource,
    /// For `Idempotency-Key`: the fields and file, not their framing.
    pub fingerprint: [u8; 32],
}

/// Where an audio job's audio is.
pub enum AudioSource {
    /// Uploaded, and probed.
    File { data: Spooled, info: AudioInfo },
    /// To be fetched by the worker (`audio_url`).
    Url(String),
}

/// A text job (JSON body of `POST /v1/jobs`).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TextJobRequest {
    /// `translate`.
    kind: String,
    /// At most `VOXQ_MAX_TEXT_CHARS` characters.
    #[serde(default)]
    text: Option<String>,
    /// ISO 639-1 (`de`) or NLLB (`deu_Latn`).
    #[serde(default)]
    target_language: Option<String>,
    /// The text's language; the model's default (English) if absent.
    #[serde(default)]
    source_language: Option<String>,
    /// A translation model from `GET /v1/models`.
    #[serde(default)]
    model: Option<String>,
    /// Where to post this job's events (Standard Webhooks, signed with the
    /// secret of `GET /v1/webhooks/job-secret`).
    #[serde(default)]
    webhook_url: Option<String>,
    /// Alternative translations to return besides the best one, 0–3.
    #[serde(default)]
    alternatives: u8,
}

impl TextJobRequest {
    /// A translation as the compatible APIs ask for one.
    pub fn translate(
        text: String,
        source_language: Option<String>,
        target_language: String,
        alternatives: u8,
    ) -> Self {
        Self {
            kind: JobKind::Translate.as_str().to_owned(),
            text: Some(text),
            target_language: Some(target_language),
            source_language,
            model: None,
            webhook_url: None,
            alternatives,
        }
    }
}

/// An audio job (`multipart/form-data` body of `POST /v1/jobs`).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the form; `read_audio_upload` parses it
pub struct AudioUploadForm {
    /// WAV, MP3, FLAC or Ogg Vorbis, recognised by its bytes.
    #[schema(format = Binary, value_type = String)]
    file: Option<Vec<u8>>,
    /// Instead of `file`: where the worker fetches the audio (https and
    /// public addresses only, no redirects, at most the upload limit).
    audio_url: Option<String>,
    /// ISO 639-1 code of the spoken language; detected when absent.
    language: Option<String>,
    /// `transcribe` (the default) or `speech_translate`.
    kind: Option<String>,
    /// A model from `GET /v1/models`; the default for the kind if absent.
    model: Option<String>,
    /// `speech_translate`: comma-separated target languages (ISO 639-1 or
    /// NLLB codes), up to 8. English comes from Whisper itself, the others
    /// from a translation model.
    target_languages: Option<String>,
    /// `speech_translate`: the translation model for non-English targets;
    /// the default translation model if absent.
    translation_model: Option<String>,
    /// `word` adds word timestamps to every segment (`segment`, the
    /// default, does not). May be repeated; also accepted as
    /// `timestamp_granularities[]`, as OpenAI's API spells it.
    timestamp_granularities: Option<String>,
    /// Where to post this job's events (Standard Webhooks, signed with the
    /// secret of `GET /v1/webhooks/job-secret`); https, public addresses.
    webhook_url: Option<String>,
    /// `true`: Whisper hears only the speech that voice activity detection
    /// (Silero VAD) finds; segments keep the original times and the result
    /// lists the speech spans. `false`: the whole audio. Absent: on for
    /// audio longer than the worker's threshold (30 s by default).
    vad: Option<bool>,
    /// Speech probability from which a frame is speech, 0.05–0.95 (0.5).
    vad_threshold: Option<f32>,
    /// Text to condition the first window on (names, spellings, style),
    /// at most 1000 characters: Whisper's initial prompt.
    prompt: Option<String>,
    /// First decoding temperature, 0–1 (0: beam search). Windows that fail
    /// the quality checks are decoded again at higher temperatures.
    temperature: Option<f32>,
    /// Shorter sounds are not speech, in ms (250; at most 10000).
    vad_min_speech_ms: Option<u32>,
    /// Shorter pauses do not end a speech span, in ms (160; at most 10000).
    vad_min_silence_ms: Option<u32>,
    /// Audio kept around each speech span, in ms (400; at most 10000).
    vad_speech_pad_ms: Option<u32>,
}

/// A typed form field (`true`, `0.6`, `500`).
fn parse_form_value<T: std::str::FromStr>(name: &str, value: &str) -> Result<T> {
    value.parse().map_err(|_| {
        Invalid::FieldValue {
            field: name.to_owned(),
            value: value.to_owned(),
        }
        .into()
    })
}

/// A decoding temperature, 0–1.
pub fn parse_temperature(value: &str) -> Result<f32> {
    let temperature: f32 = parse_form_value("temperature", value)?;
    if (0.0..=1.0).contains(&temperature) {
        Ok(temperature)
    } else {
        Err(Invalid::FieldValue {
            field: "temperature".into(),
            value: value.to_owned(),
        }
        .into())
    }
}

/// Whether `word` is among comma-separated timestamp granularities.
pub fn parse_granularities(value: &str) -> Result<bool> {
    let mut words = false;
    for granularity in value.split(',').map(str::trim) {
        match granularity {
            "word" => words = true,
            "segment" => {}
            other => return Err(Invalid::Granularity(other.to_owned()).into()),
        }
    }
    Ok(words)
}

/// Reads and checks an audio job's form: its fields, and the file's
/// size, container, codec and duration.
pub async fn read_audio_upload(
    mut multipart: Multipart,
    config: &ApiConfig,
) -> Result<AudioUpload> {
    let mut data: Option<Spooled> = None;
    let mut url: Option<String> = None;
    let mut kind = JobKind::Transcribe;
    let mut params = JobParams::default();
    let mut fingerprint = Fingerprint::new("multipart");
    let part_error = |e: MultipartError| multipart_error(e, config.max_upload_bytes);
    while let Some(mut field) = multipart.next_field().await.map_err(part_error)? {
        let name = field.name().unwrap_or("").to_owned();
        match name.as_str() {
            "file" => {
                let upload = spool::take(
                    &mut field,
                    config.max_upload_bytes,
                    &config.spool_dir(),
                    part_error,
                )
                .await?;
                fingerprint.field("file", &upload.digest);
                data = Some(upload.data);
            }
            "kind"
            | "prompt"
            | "temperature"
            | "language"
            | "model"
            | "target_languages"
            | "translation_model"
            | "webhook_url"
            | "audio_url"
            | "timestamp_granularities"
            | "timestamp_granularities[]"
            | "vad"
            | "vad_threshold"
            | "vad_min_speech_ms"
            | "vad_min_silence_ms"
            | "vad_speech_pad_ms" => {
                let value = field.text().await.map_err(part_error)?;
                let value = value.trim();
                let limit = match name.as_str() {
                    "webhook_url" | "audio_url" => MAX_URL_CHARS,
                    "prompt" => MAX_PROMPT_CHARS,
                    _ => MAX_FIELD_CHARS,
                };
                if value.chars().count() > limit {
                    return Err(Invalid::FieldTooLong(name).into());
                }
                if value.contains('\0') {
                    return Err(Invalid::FieldHoldsNul(name).into());
                }
                fingerprint.field(&name, value.as_bytes());
                match name.as_str() {
                    "kind" => {
                        kind = JobKind::parse(value)
                            .ok_or_else(|| Invalid::UnknownKind(value.to_owned()))?
                    }
                    "language" => params.language = Some(validate_language(value)?),
                    "target_languages" => params.target_languages = parse_targets(value)?,
                    "translation_model" => params.translation_model = Some(value.to_owned()),
                    "model" => params.model = Some(value.to_owned()),
                    "prompt" if !value.is_empty() => params.prompt = Some(value.to_owned()),
                    "prompt" => {}
                    "temperature" => params.temperature = Some(parse_temperature(value)?),
                    "webhook_url" => params.webhook_url = Some(value.to_owned()),
                    "audio_url" => url = Some(value.to_owned()),
                    "vad" => params.vad.enabled = Some(parse_form_value(&name, value)?),
                    "vad_threshold" => params.vad.threshold = Some(parse_form_value(&name, value)?),
                    "vad_min_speech_ms" => {
                        params.vad.min_speech_ms = Some(parse_form_value(&name, value)?)
                    }
                    "vad_min_silence_ms" => {
                        params.vad.min_silence_ms = Some(parse_form_value(&name, value)?)
                    }
                    "vad_speech_pad_ms" => {
                        params.vad.speech_pad_ms = Some(parse_form_value(&name, value)?)
                    }
                    _ => {
                        if parse_granularities(value)? {
                            params.word_timestamps = true;
                        }
                    }
                }
            }
            other => return Err(Invalid::UnexpectedField(other.to_owned()).into()),
        }
    }
    if let Some(problem) = params.vad.problem() {
        return Err(Invalid::Vad(problem).into());
    }
    if !kind.takes_audio() {
        return Err(Invalid::KindTakesJson(kind).into());
    }
    match (kind, params.target_languages.is_empty()) {
        (JobKind::SpeechTranslate, true) => return Err(Invalid::NoTargets.into()),
        (JobKind::Transcribe, false) => return Err(Invalid::TargetsWithoutTranslation.into()),
        _ => {}
    }
    let data = match (data, url) {
        (Some(_), Some(_)) => return Err(Invalid::FileAndUrl.into()),
        (None, None) => return Err(Invalid::NoAudio.into()),
        (None, Some(url)) => {
            return Ok(AudioUpload {
                kind,
                params,
                source: AudioSource::Url(url),
                fingerprint: fingerprint.finish(),
            })
        }
        (Some(data), None) => data,
    };
    Ok(AudioUpload {
        kind,
        params,
        source: probe(data, config).await?,
        fingerprint: fingerprint.finish(),
    })
}

/// Checks an uploaded file: not empty, a container and codec voxq decodes,
/// a duration within the limits.
pub async fn probe(data: Spooled, config: &ApiConfig) -> Result<AudioSource> {
    if data.is_empty() {
        return Err(Invalid::EmptyAudio.into());
    }
    // Parsing a container is CPU work; keep it off the async executor.
    // `Bytes` clones share one buffer: the upload is held once.
    let probe = match &data {
        Spooled::Memory(bytes) => {
            let bytes = bytes.clone();
            tokio::task::spawn_blocking(move || audio::probe(bytes))
        }
        Spooled::File { file, .. } => {
            let file = file.try_clone().map_err(|e| ApiError::Internal(e.into()))?;
            tokio::task::spawn_blocking(move || audio::probe_file(file))
        }
    };
    let info = probe.await.map_err(|e| ApiError::Internal(e.into()))??;
    audio::check_length(&info, config.min_audio_seconds, config.max_audio_seconds)
        .map_err(Invalid::from)?;
    Ok(AudioSource::File { data, info })
}

fn parse_targets(value: &str) -> Result<Vec<String>> {
    let mut targets: Vec<String> = Vec::new();
    for code in value.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        let code = validate_target_language(code)?;
        if !targets.contains(&code) {
            targets.push(code);
        }
    }
    if targets.len() > MAX_TARGETS {
        return Err(Invalid::TooManyTargets.into());
    }
    Ok(targets)
}

pub fn multipart_error(e: MultipartError, limit: usize) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge { limit }
    } else {
        ApiError::BadRequest(format!("malformed multipart body: {}", e.body_text()))
    }
}

pub fn validate_language(value: &str) -> Result<String> {
    let code = value.to_ascii_lowercase();
    if WHISPER_LANGUAGES.contains(&code.as_str()) {
        Ok(code)
    } else {
        Err(Invalid::UnknownLanguage(value.to_owned()).into())
    }
}

/// A text job's text is at most `VOXQ_MAX_TEXT_CHARS` characters.
pub fn check_text_length(text: &str, config: &ApiConfig) -> Result<()> {
    let chars = text.chars().count();
    if chars > config.max_text_chars {
        return Err(Invalid::TextTooLong {
            chars,
            max: config.max_text_chars,
        }
        .into());
    }
    Ok(())
}

/// Checks a text job's body.
pub fn validate_text_job(job: TextJobRequest, config: &ApiConfig) -> Result<(JobParams, String)> {
    match JobKind::parse(&job.kind) {
        Some(JobKind::Translate) => {}
        Some(kind @ (JobKind::Transcribe | JobKind::SpeechTranslate)) => {
            return Err(Invalid::KindTakesUpload(kind).into())
        }
        None => return Err(Invalid::UnknownKind(job.kind).into()),
    }
    let text = job.text.unwrap_or_default();
    if text.trim().is_empty() {
        return Err(Invalid::NoText.into());
    }
    check_text_length(&text, config)?;
    let target = job.target_language.ok_or(Invalid::NoTargetLanguage)?;
    let target = validate_target_language(&target)?;
    let source = job
        .source_language
        .as_deref()
        .map(validate_target_language)
        .transpose()?;
    if job
        .model
        .as_ref()
        .is_some_and(|m| m.chars().count() > MAX_FIELD_CHARS)
    {
        return Err(Invalid::FieldTooLong("model".into()).into());
    }
    if job.alternatives > MAX_ALTERNATIVES {
        return Err(Invalid::FieldValue {
            field: "alternatives".into(),
            value: job.alternatives.to_string(),
        }
        .into());
    }
    let params = JobParams {
        alternatives: job.alternatives,
        target_language: Some(target),
        language: source,
        model: job.model,
        webhook_url: job.webhook_url,
        ..JobParams::default()
    };
    Ok((params, text))
}

/// ISO 639-1 (`de`) or NLLB/FLORES-200 (`deu_Latn`) codes.
pub fn validate_target_language(value: &str) -> Result<String> {
    let nllb = value.len() == 8
        && value.as_bytes()[3] == b'_'
        && value[..3].bytes().all(|b| b.is_ascii_lowercase())
        && value.as_bytes()[4].is_ascii_uppercase()
        && value[5..].bytes().all(|b| b.is_ascii_lowercase());
    if nllb {
        return Ok(value.to_owned());
    }
    validate_language(value)
}

/// The job's `webhook_url`, checked by the SSRF guard (and normalised).
pub async fn check_webhook(config: &ApiConfig, params: &mut JobParams) -> Result<()> {
    if let Some(url) = params.webhook_url.take() {
        let checked = crate::outbound::webhook(config, &url)
            .await
            .map_err(|e| Invalid::WebhookUrl(e.0))?;
        params.webhook_url = Some(checked);
    }
    Ok(())
}

/// An `audio_url`, checked by the SSRF guard (and normalised).
pub async fn check_audio_url(config: &ApiConfig, url: &str) -> Result<String> {
    Ok(crate::outbound::audio(config, url)
        .await
        .map_err(|e| Invalid::AudioUrl(e.0))?)
}
