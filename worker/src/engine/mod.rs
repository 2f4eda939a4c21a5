//! Inference engines behind one trait, so a worker can serve models of
//! different formats the same way.

pub mod ct2_whisper;
pub mod mel;

use voxq_shared::job::TranscriptResult;

#[derive(Debug, Clone, Default)]
pub struct TranscribeOptions {
    /// ISO 639-1 code; `None` lets a multilingual model detect it.
    pub language: Option<String>,
}

pub trait Engine: Send + Sync {
    /// Model name as clients name it.
    fn model_name(&self) -> &str;

    /// Transcribes 16 kHz mono audio. Blocking and CPU/GPU heavy: call it
    /// from a blocking thread.
    fn transcribe(
        &self,
        audio: &[f32],
        options: &TranscribeOptions,
    ) -> anyhow::Result<TranscriptResult>;
}
