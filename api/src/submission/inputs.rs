//! A valid job's input as it is stored, and the quota it reserves: an
//! upload's seconds of audio, an `audio_url`'s estimate, a text's
//! characters.

use voxq_shared::db::jobs::{NewInput, NewJobInput};
use voxq_shared::job::{JobKind, JobParams};
use voxq_shared::quota::{self, Amounts};

use super::validation::AudioSource;
use super::Submission;
use crate::config::ApiConfig;
use crate::http::principal::Principal;

/// An audio job's submission.
pub fn audio<'a>(
    kind: JobKind,
    params: JobParams,
    source: &'a AudioSource,
    principal: &Principal,
    config: &ApiConfig,
) -> Submission<'a> {
    let (input, duration) = match source {
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
            config.url_audio_estimate.min(config.max_audio_seconds),
        ),
    };
    Submission {
        kind,
        params,
        input,
        amounts: Amounts {
            audio_ms: quota::seconds_to_ms(duration),
            text_chars: 0,
            processing_ms: quota::seconds_to_ms(duration * config.processing_estimate),
        },
    }
}

/// A translation job's submission.
pub fn text(params: JobParams, text: &str) -> Submission<'_> {
    let chars = text.chars().count() as u64;
    Submission {
        kind: JobKind::Translate,
        params,
        input: NewJobInput::Text(text),
        // About a millisecond of worker time per character, until the
        // measured time replaces it.
        amounts: Amounts {
            audio_ms: 0,
            text_chars: chars,
            processing_ms: chars,
        },
    }
}
