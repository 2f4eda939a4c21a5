//! A claimed job with its loaded input: what preparing hands to inference,
//! to the watcher and to the commit.

use std::sync::Arc;
use std::time::Instant;

use voxq_shared::db::accounts::ResultCachePolicy;
use voxq_shared::job::{JobMessage, UsageMetric};

use crate::engine::JobControl;

/// The decoded input of a claimed job.
pub(super) enum Input {
    Audio { samples: Vec<f32>, seconds: f64 },
    Text(String),
}

/// A claimed job ready for inference.
pub(super) struct Prepared {
    pub(super) message: JobMessage,
    pub(super) attempts: i32,
    pub(super) cache_policy: ResultCachePolicy,
    pub(super) cache_key: [u8; 32],
    pub(super) input: Input,
    pub(super) started: Instant,
    pub(super) control: Arc<JobControl>,
}

impl Prepared {
    /// What this job is billed per unit of work: seconds of audio or
    /// characters of text.
    pub(super) fn billed(&self) -> (UsageMetric, f64) {
        match &self.input {
            Input::Audio { seconds, .. } => (UsageMetric::AudioSeconds, *seconds),
            Input::Text(text) => (UsageMetric::TextChars, text.chars().count() as f64),
        }
    }
}
