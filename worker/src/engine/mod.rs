//! Inference engines behind one trait, so a worker serves models of
//! different formats the same way:
//!
//! - `ct2-whisper`: Whisper on CTranslate2 (faster-whisper's model format);
//! - `whisper-cpp`: Whisper on whisper.cpp (ggml files);
//! - `ct2-translate`: sequence-to-sequence translation on CTranslate2.

pub mod ct2_translate;
pub mod ct2_whisper;
pub mod languages;
pub mod mel;
pub mod sentencepiece;
pub mod sentences;
#[cfg(test)]
mod test_models;
pub mod text_tokenizer;
pub mod vad;
pub mod vocabulary;
pub mod whisper_cpp;
pub mod words;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use voxq_shared::job::{JobKind, Segment, TranscriptResult};
use voxq_shared::registry::ModelInfo;
use voxq_shared::whisper_languages::WHISPER_LANGUAGES;

use crate::config::ModelSpec;

/// What Whisper is asked to produce from the audio.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Task {
    /// Text in the spoken language.
    #[default]
    Transcribe,
    /// English text, whatever the spoken language.
    Translate,
}

#[derive(Debug, Clone, Default)]
pub struct TranscribeOptions {
    /// ISO 639-1 code; `None` lets a multilingual model detect it.
    pub language: Option<String>,
    pub task: Task,
    /// Time each word (an extra alignment pass per window).
    pub word_timestamps: bool,
    /// Where voice activity detection found speech; `None`: it did not
    /// run, and Whisper hears the whole clip.
    pub speech: Option<vad::Speech>,
    /// Text the decoding starts conditioned on (Whisper's initial prompt):
    /// vocabulary, spellings, punctuation style.
    pub prompt: Option<String>,
    /// The first decoding temperature: 0 is beam search, above it
    /// sampling. Windows failing the quality checks go on to the higher
    /// temperatures of the fallback ladder.
    pub temperature: f32,
    /// The running job's controls; `None` outside jobs (benchmarks).
    pub control: Option<Arc<JobControl>>,
}

/// Between a running job and its worker: the worker asks for a stop (the
/// job was cancelled, or the worker is shutting down), the engine reports
/// how much audio it has done. Engines check it between windows, the safe
/// points of long-form decoding.
#[derive(Debug, Default)]
pub struct JobControl {
    stop: AtomicBool,
    done_ms: AtomicU64,
}

impl JobControl {
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    pub fn report(&self, seconds_done: f64) {
        self.done_ms
            .store((seconds_done * 1000.0) as u64, Ordering::Relaxed);
    }

    pub fn seconds_done(&self) -> f64 {
        self.done_ms.load(Ordering::Relaxed) as f64 / 1000.0
    }
}

/// An engine call stopped at a safe point because its job's worker asked.
#[derive(Debug, thiserror::Error)]
#[error("stopped before finishing (the job was cancelled or its worker is stopping)")]
pub struct Stopped;

/// One text to translate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslateRequest {
    pub text: String,
    /// ISO 639-1 or the model's own code; `None`: the model's default.
    pub source: Option<String>,
    pub target: String,
    /// Other translations wanted besides the best one.
    pub alternatives: usize,
}

/// One text translated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Translation {
    pub text: String,
    /// The next most probable translations of the whole text, distinct
    /// from `text` and from each other; fewer than asked when the model
    /// finds no more.
    pub alternatives: Vec<String>,
}

/// A request the model cannot serve: retrying will not help.
#[derive(Debug, thiserror::Error)]
#[error("model {model} cannot {what}")]
pub struct Unsupported {
    pub model: String,
    pub what: String,
}

/// CTranslate2 settings of a model: device, compute type, threads per
/// call, and `replicas` copies so that this many calls run at once.
pub(crate) fn ct2_config(spec: &ModelSpec, replicas: usize) -> ct2rs::sys::Config {
    ct2rs::sys::Config {
        device: spec.device.into(),
        compute_type: spec.compute_type.into(),
        num_threads_per_replica: spec.threads(),
        device_indices: vec![0; replicas.max(1)],
        ..ct2rs::sys::Config::default()
    }
}

/// What a Whisper model serves, whichever engine runs it.
pub(crate) fn whisper_info(
    name: &str,
    engine: &str,
    multilingual: bool,
    default: bool,
) -> ModelInfo {
    let languages = if multilingual {
        WHISPER_LANGUAGES.iter().map(|&l| l.to_owned()).collect()
    } else {
        vec!["en".to_owned()]
    };
    ModelInfo {
        name: name.to_owned(),
        engine: engine.into(),
        kinds: vec![JobKind::Transcribe, JobKind::SpeechTranslate],
        languages,
        default,
    }
}

/// The text of a run of segments.
pub(crate) fn join_text(segments: &[Segment]) -> String {
    segments
        .iter()
        .map(|s| s.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The first temperature an engine decodes at: below 0.01, beam search,
/// as a near-zero temperature would overflow the logits it divides.
pub(crate) fn first_temperature(asked: f32) -> f32 {
    if asked >= 0.01 {
        asked.min(1.0)
    } else {
        0.0
    }
}

/// Seconds rounded to the millisecond, as results report times.
pub(crate) fn round_ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

/// Every call is blocking and CPU/GPU heavy: run it on a blocking thread.
/// Batch calls give each input the result it would get alone.
pub trait Engine: Send + Sync {
    fn info(&self) -> &ModelInfo;

    fn name(&self) -> &str {
        &self.info().name
    }

    /// Transcribes 16 kHz mono clips, one result per clip.
    fn transcribe_batch(
        &self,
        _audio: &[&[f32]],
        _options: &[TranscribeOptions],
    ) -> Vec<anyhow::Result<TranscriptResult>> {
        vec![Err(Unsupported {
            model: self.name().to_owned(),
            what: "transcribe audio".into(),
        }
        .into())]
    }

    fn transcribe(
        &self,
        audio: &[f32],
        options: &TranscribeOptions,
    ) -> anyhow::Result<TranscriptResult> {
        self.transcribe_batch(&[audio], std::slice::from_ref(options))
            .pop()
            .unwrap_or_else(|| Err(anyhow::anyhow!("the engine returned no result")))
    }

    /// Translates texts, one output per request, paragraph breaks kept.
    fn translate_batch(&self, _requests: &[TranslateRequest]) -> anyhow::Result<Vec<Translation>> {
        Err(Unsupported {
            model: self.name().to_owned(),
            what: "translate text".into(),
        }
        .into())
    }
}

#[cfg(test)]
mod tests {
    use super::first_temperature;

    #[test]
    fn near_zero_temperatures_decode_by_beam_search() {
        assert_eq!(first_temperature(0.0), 0.0);
        assert_eq!(first_temperature(1e-40), 0.0);
        assert_eq!(first_temperature(0.009), 0.0);
        assert_eq!(first_temperature(f32::NAN), 0.0);
        assert_eq!(first_temperature(0.4), 0.4);
        assert_eq!(first_temperature(7.0), 1.0);
    }
}
