//! Why a submission was refused before anything was stored: one variant
//! per reason, each with the stable code clients branch on. The list of
//! codes is finite, tested, and written into the OpenAPI document.

use voxq_shared::audio::LengthError;
use voxq_shared::job::JobKind;

use crate::error::ApiError;

/// Most target languages one speech translation job may ask for.
pub const MAX_TARGETS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum Invalid {
    // 400: the request is malformed, whatever its meaning.
    #[error("field `{0}` is too long")]
    FieldTooLong(String),
    #[error("field `{0}` contains the NUL character")]
    FieldHoldsNul(String),
    #[error("unexpected form field {0:?}")]
    UnexpectedField(String),
    #[error("send either `file` or `audio_url`, not both")]
    FileAndUrl,
    #[error("missing form field `file` (or `audio_url`)")]
    NoAudio,

    // 422: well formed, but not a job voxq can take.
    #[error("form field `{field}` has an invalid value {value:?}")]
    FieldValue { field: String, value: String },
    #[error("unknown timestamp granularity {0:?} (use `word` or `segment`)")]
    Granularity(String),
    #[error("{0}")]
    Vad(String),
    #[error("the job's parameters are too large")]
    ParamsTooLarge,
    #[error("unknown job kind {0:?}")]
    UnknownKind(String),
    #[error("{} jobs take a JSON body, not an upload", .0.as_str())]
    KindTakesJson(JobKind),
    #[error("{} jobs take a multipart/form-data upload with a `file` field", .0.as_str())]
    KindTakesUpload(JobKind),
    #[error("`target_languages` is for speech_translate jobs")]
    TargetsWithoutTranslation,
    #[error("speech_translate jobs need `target_languages`")]
    NoTargets,
    #[error("at most {MAX_TARGETS} target languages per job")]
    TooManyTargets,
    #[error("`target_language` is required")]
    NoTargetLanguage,
    #[error("unknown language {0:?}: use an ISO 639-1 code such as \"en\"")]
    UnknownLanguage(String),
    #[error("`text` is required")]
    NoText,
    #[error("`text` has {chars} characters; the maximum is {max}")]
    TextTooLong { chars: usize, max: usize },
    #[error("the uploaded file is empty")]
    EmptyAudio,
    #[error(transparent)]
    AudioLength(#[from] LengthError),
    #[error("{0}")]
    AudioUrl(String),
    #[error("{0}")]
    WebhookUrl(String),
    #[error("{asked}; available: {available:?} (see GET /v1/models)")]
    UnknownModel {
        asked: String,
        available: Vec<String>,
    },
    #[error("model {model:?} does not handle the language {language:?}")]
    UnsupportedLanguage { model: String, language: String },
    #[error(
        "no worker serves both {model:?} and the translation model {translator:?}: speech \
         translation runs both on one worker (see GET /v1/models)"
    )]
    ModelsApart { model: String, translator: String },
    /// The `Idempotency-Key` came first with another request (see `idempotency`).
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyKeyReused,
}

impl Invalid {
    /// Every code of a refused submission, for the OpenAPI document and its
    /// test: `bad_request` is a 400 (the request is malformed), every other
    /// one a 422.
    pub const CODES: [&'static str; 16] = [
        "invalid_parameter",
        "invalid_kind",
        "invalid_language",
        "unknown_language",
        "invalid_text",
        "text_too_long",
        "invalid_audio",
        "audio_too_short",
        "audio_too_long",
        "invalid_audio_url",
        "invalid_webhook_url",
        "unknown_model",
        "unsupported_language",
        "models_apart",
        "idempotency_key_reused",
        "bad_request",
    ];

    /// The code clients branch on; `bad_request` for a malformed request.
    pub fn code(&self) -> &'static str {
        match self {
            Self::FieldTooLong(_)
            | Self::FieldHoldsNul(_)
            | Self::UnexpectedField(_)
            | Self::FileAndUrl
            | Self::NoAudio => "bad_request",
            Self::FieldValue { .. }
            | Self::Granularity(_)
            | Self::Vad(_)
            | Self::ParamsTooLarge => "invalid_parameter",
            Self::UnknownKind(_)
            | Self::KindTakesJson(_)
            | Self::KindTakesUpload(_)
            | Self::TargetsWithoutTranslation => "invalid_kind",
            Self::NoTargets | Self::TooManyTargets | Self::NoTargetLanguage => "invalid_language",
            Self::UnknownLanguage(_) => "unknown_language",
            Self::NoText => "invalid_text",
            Self::TextTooLong { .. } => "text_too_long",
            Self::EmptyAudio => "invalid_audio",
            Self::AudioLength(e) => e.code(),
            Self::AudioUrl(_) => "invalid_audio_url",
            Self::WebhookUrl(_) => "invalid_webhook_url",
            Self::UnknownModel { .. } => "unknown_model",
            Self::UnsupportedLanguage { .. } => "unsupported_language",
            Self::ModelsApart { .. } => "models_apart",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
        }
    }
}

impl From<Invalid> for ApiError {
    fn from(invalid: Invalid) -> Self {
        match invalid.code() {
            "bad_request" => ApiError::BadRequest(invalid.to_string()),
            code => ApiError::unprocessable(code, invalid.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One sample of every reason, written `pattern => sample`. The
    /// patterns make one `match` with no wildcard, so a new variant does
    /// not compile until it is listed here with a sample; each sample is
    /// checked against its own pattern.
    macro_rules! every_reason {
        ($($pattern:pat => $sample:expr),+ $(,)?) => {{
            fn covered(reason: &Invalid) {
                match reason {
                    $($pattern => {})+
                }
            }
            [$({
                let sample: Invalid = $sample;
                assert!(
                    matches!(&sample, $pattern),
                    "{sample:?} is listed under another pattern"
                );
                covered(&sample);
                sample
            }),+]
        }};
    }

    #[test]
    fn every_reason_has_a_listed_code_and_every_listed_code_a_reason() {
        let reasons = every_reason! {
            Invalid::FieldTooLong(_) => Invalid::FieldTooLong("model".into()),
            Invalid::FieldHoldsNul(_) => Invalid::FieldHoldsNul("model".into()),
            Invalid::UnexpectedField(_) => Invalid::UnexpectedField("x".into()),
            Invalid::FileAndUrl => Invalid::FileAndUrl,
            Invalid::NoAudio => Invalid::NoAudio,
            Invalid::FieldValue { .. } => Invalid::FieldValue {
                field: "vad".into(),
                value: "maybe".into(),
            },
            Invalid::Granularity(_) => Invalid::Granularity("char".into()),
            Invalid::Vad(_) => Invalid::Vad("vad_threshold is 0.05–0.95".into()),
            Invalid::ParamsTooLarge => Invalid::ParamsTooLarge,
            Invalid::UnknownKind(_) => Invalid::UnknownKind("sing".into()),
            Invalid::KindTakesJson(_) => Invalid::KindTakesJson(JobKind::Translate),
            Invalid::KindTakesUpload(_) => Invalid::KindTakesUpload(JobKind::Transcribe),
            Invalid::TargetsWithoutTranslation => Invalid::TargetsWithoutTranslation,
            Invalid::NoTargets => Invalid::NoTargets,
            Invalid::TooManyTargets => Invalid::TooManyTargets,
            Invalid::NoTargetLanguage => Invalid::NoTargetLanguage,
            Invalid::UnknownLanguage(_) => Invalid::UnknownLanguage("xx".into()),
            Invalid::NoText => Invalid::NoText,
            Invalid::TextTooLong { .. } => Invalid::TextTooLong { chars: 9, max: 8 },
            Invalid::EmptyAudio => Invalid::EmptyAudio,
            Invalid::AudioLength(LengthError::TooShort { .. }) => Invalid::AudioLength(
                LengthError::TooShort {
                    seconds: 0.01,
                    min: 0.1,
                },
            ),
            Invalid::AudioLength(LengthError::TooLong { .. }) => Invalid::AudioLength(
                LengthError::TooLong {
                    seconds: 9.0,
                    max: 8.0,
                },
            ),
            Invalid::AudioUrl(_) => Invalid::AudioUrl("private address".into()),
            Invalid::WebhookUrl(_) => Invalid::WebhookUrl("private address".into()),
            Invalid::UnknownModel { .. } => Invalid::UnknownModel {
                asked: "no worker serves model \"x\"".into(),
                available: vec![],
            },
            Invalid::UnsupportedLanguage { .. } => Invalid::UnsupportedLanguage {
                model: "m".into(),
                language: "xx".into(),
            },
            Invalid::ModelsApart { .. } => Invalid::ModelsApart {
                model: "a".into(),
                translator: "b".into(),
            },
            Invalid::IdempotencyKeyReused => Invalid::IdempotencyKeyReused,
        };
        let mut seen: Vec<&str> = reasons.iter().map(Invalid::code).collect();
        for code in &seen {
            assert!(Invalid::CODES.contains(code), "{code} is not listed");
        }
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(
            seen.len(),
            Invalid::CODES.len(),
            "a listed code has no reason"
        );
        for reason in reasons {
            assert!(!reason.to_string().is_empty());
            let expected = if reason.code() == "bad_request" {
                400
            } else {
                422
            };
            let response = axum::response::IntoResponse::into_response(ApiError::from(reason));
            assert_eq!(response.status().as_u16(), expected);
        }
    }
}
