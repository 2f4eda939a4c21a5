//! Jobs as the API, the queue and the worker see them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use crate::vad::{SpeechSpan, VadParams};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Speech to text in the spoken language.
    Transcribe,
    /// Text to text in another language.
    Translate,
    /// Speech to text in one or several other languages.
    SpeechTranslate,
}

impl JobKind {
    pub const ALL: [JobKind; 3] = [
        JobKind::Transcribe,
        JobKind::Translate,
        JobKind::SpeechTranslate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Transcribe => "transcribe",
            JobKind::Translate => "translate",
            JobKind::SpeechTranslate => "speech_translate",
        }
    }

    /// Audio in (as opposed to text in).
    pub fn takes_audio(self) -> bool {
        !matches!(self, JobKind::Translate)
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == value)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            JobStatus::Queued,
            JobStatus::Running,
            JobStatus::Succeeded,
            JobStatus::Failed,
            JobStatus::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == value)
    }

    /// A terminal job never runs again, whatever the queue redelivers.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Succeeded | JobStatus::Failed | JobStatus::Cancelled
        )
    }
}

/// What the submitter asked for; stored with the job and copied into the
/// queue message so a worker needs no extra read to plan its work.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobParams {
    /// ISO 639-1 code of the spoken language; `None` lets the model decide.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The model that runs the job (the API resolves the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Translate jobs: the language to translate into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_language: Option<String>,
    /// Speech translation: the languages to produce. English comes from
    /// Whisper's own translate task; the others from the transcript through
    /// `translation_model`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_languages: Vec<String>,
    /// Speech translation into languages other than English.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub translation_model: Option<String>,
    /// Audio jobs: time every word too (segments carry `words`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub word_timestamps: bool,
    /// Where this job's events are posted (Standard Webhooks, signed with
    /// the account's job webhook secret). Does not shape the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// Audio jobs: voice activity detection (`vad`, `vad_threshold`, …).
    #[serde(flatten)]
    pub vad: VadParams,
    /// Audio jobs: text the decoding starts conditioned on, as if it had
    /// just been said (names, spellings, punctuation style): Whisper's
    /// initial prompt, OpenAI's `prompt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Audio jobs: the first decoding temperature, 0–1. 0 (the default) is
    /// beam search; above it, sampling at that temperature. Either way a
    /// window that fails the quality checks is decoded again at higher
    /// temperatures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Translate jobs: how many alternative translations to return
    /// besides the best one (0–3).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub alternatives: u8,
}

fn is_zero(n: &u8) -> bool {
    *n == 0
}

impl JobParams {
    /// The parameters that shape the result (the result cache's key).
    pub fn result_shaping(&self) -> Self {
        Self {
            webhook_url: None,
            ..self.clone()
        }
    }
}

/// The queue message. It carries ids and parameters, never the audio: the
/// input stays in Postgres and messages stay a few hundred bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobMessage {
    pub job_id: Uuid,
    pub account_id: Uuid,
    pub kind: JobKind,
    /// The model whose queue carries the message.
    pub model: String,
    pub params: JobParams,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Segment {
    pub start: f64,
    pub end: f64,
    pub text: String,
    /// Mean token log-probability of the decoding this segment came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avg_logprob: Option<f64>,
    /// Probability the model gave to "no speech" in this window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_speech_prob: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression_ratio: Option<f64>,
    /// Sampling temperature the window needed (0 = beam search).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Where the window this segment was decoded in starts, in mel frames
    /// (100 a second), as Whisper's `seek`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seek: Option<u64>,
    /// The segment's text token ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<u32>,
    /// When word timestamps were asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub words: Vec<Word>,
}

/// One word with its time in the audio.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Word {
    /// As decoded, with its leading space and attached punctuation.
    pub word: String,
    pub start: f64,
    pub end: f64,
    /// Mean probability of the word's tokens.
    pub probability: f64,
}

/// Text in another language, timed like the source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Rendition {
    pub text: String,
    /// One per source segment, with the source's timings.
    pub segments: Vec<Segment>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TranscriptResult {
    pub text: String,
    pub segments: Vec<Segment>,
    pub language: String,
    /// The detector's confidence when the language was detected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language_probability: Option<f64>,
    /// Seconds of audio in the input.
    pub duration: f64,
    /// Where voice activity detection found speech, when it ran (an empty
    /// list: none at all); Whisper heard only these spans, padded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speech: Option<Vec<SpeechSpan>>,
    /// Speech translation: one rendition per target language.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub translations: BTreeMap<String, Rendition>,
}

/// The result of a text translation job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TranslationResult {
    pub text: String,
    /// The target language as the model names it.
    pub target_language: String,
    /// Sentences translated.
    pub sentences: usize,
    /// When asked for (`alternatives`): other translations of the whole
    /// text, most probable first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<String>,
}

/// Why a job failed, in a form a client can branch on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobError {
    pub code: String,
    pub message: String,
}

/// A job as clients see it, and as it is cached in Redis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobView {
    pub id: Uuid,
    pub kind: JobKind,
    pub status: JobStatus,
    pub params: JobParams,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<JobError>,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// A running job: how far through its audio it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    /// A queued job: its place in line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueuePlace>,
    /// When its input and result were deleted (on request or by the
    /// account's retention); the job and its usage remain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_deleted_at: Option<DateTime<Utc>>,
}

/// A job in a list: what [`JobView`] says of it, less its result and
/// the live readings (progress, queue place) that cost a read each. A
/// list is for finding jobs; `GET /v1/jobs/{id}` reads one whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobSummary {
    pub id: Uuid,
    pub kind: JobKind,
    pub status: JobStatus,
    pub params: JobParams,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<JobError>,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_deleted_at: Option<DateTime<Utc>>,
}

/// A queued job's place in its queue (its model and lane).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QueuePlace {
    /// 1: next to start.
    pub position: i64,
    /// From the queue's recent run times and the workers serving it;
    /// absent until the queue has run jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_start_at: Option<DateTime<Utc>>,
}

/// How far a running job has got through its audio.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Progress {
    /// Seconds of audio processed so far.
    pub seconds_done: f64,
    /// Seconds of audio in all.
    pub seconds_total: f64,
}

/// Metered quantities a finished job records, one usage row each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageMetric {
    AudioSeconds,
    ProcessingSeconds,
    TextChars,
}

impl UsageMetric {
    pub fn as_str(self) -> &'static str {
        match self {
            UsageMetric::AudioSeconds => "audio_seconds",
            UsageMetric::ProcessingSeconds => "processing_seconds",
            UsageMetric::TextChars => "text_chars",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_statuses_round_trip_through_their_names() {
        for kind in JobKind::ALL {
            assert_eq!(JobKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(JobKind::parse("nope"), None);
        assert_eq!(JobStatus::parse("succeeded"), Some(JobStatus::Succeeded));
        assert!(JobStatus::Cancelled.is_terminal());
        assert!(!JobStatus::Running.is_terminal());
    }
}
