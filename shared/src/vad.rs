//! Voice activity detection settings of an audio job, and the speech spans
//! it reports. Defaults follow faster-whisper's batched pipeline, whose
//! chunking the worker does too.

use serde::{Deserialize, Serialize};

pub const DEFAULT_THRESHOLD: f32 = 0.5;
pub const DEFAULT_MIN_SPEECH_MS: u32 = 250;
pub const DEFAULT_MIN_SILENCE_MS: u32 = 160;
pub const DEFAULT_SPEECH_PAD_MS: u32 = 400;
/// Upper bounds of the millisecond settings: beyond them a setting no
/// longer describes speech (a ten-second "minimum word").
pub const MAX_SETTING_MS: u32 = 10_000;

/// Whether Whisper hears only the speech Silero VAD finds, and how speech
/// is told from the rest. Every field is optional; omitted ones take the
/// defaults above.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VadParams {
    /// `true` or `false`; omitted: on for audio longer than the worker's
    /// `VOXQ_VAD_AUTO_SECONDS` (30 s unless configured).
    #[serde(default, rename = "vad", skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Speech probability from which a 32 ms frame counts as speech
    /// (0.05–0.95; default 0.5).
    #[serde(
        default,
        rename = "vad_threshold",
        skip_serializing_if = "Option::is_none"
    )]
    pub threshold: Option<f32>,
    /// Shorter bursts are not speech (default 250 ms).
    #[serde(
        default,
        rename = "vad_min_speech_ms",
        skip_serializing_if = "Option::is_none"
    )]
    pub min_speech_ms: Option<u32>,
    /// Shorter pauses do not end a speech span (default 160 ms).
    #[serde(
        default,
        rename = "vad_min_silence_ms",
        skip_serializing_if = "Option::is_none"
    )]
    pub min_silence_ms: Option<u32>,
    /// Audio kept around each speech span for Whisper (default 400 ms).
    #[serde(
        default,
        rename = "vad_speech_pad_ms",
        skip_serializing_if = "Option::is_none"
    )]
    pub speech_pad_ms: Option<u32>,
}

impl VadParams {
    pub fn threshold(&self) -> f32 {
        self.threshold.unwrap_or(DEFAULT_THRESHOLD)
    }

    pub fn min_speech_ms(&self) -> u32 {
        self.min_speech_ms.unwrap_or(DEFAULT_MIN_SPEECH_MS)
    }

    pub fn min_silence_ms(&self) -> u32 {
        self.min_silence_ms.unwrap_or(DEFAULT_MIN_SILENCE_MS)
    }

    pub fn speech_pad_seconds(&self) -> f64 {
        f64::from(self.speech_pad_ms.unwrap_or(DEFAULT_SPEECH_PAD_MS)) / 1000.0
    }

    /// What is wrong with the settings, in words for the submitter.
    pub fn problem(&self) -> Option<String> {
        if let Some(t) = self.threshold {
            if !(0.05..=0.95).contains(&t) {
                return Some(format!(
                    "vad_threshold must be within 0.05 and 0.95, not {t}"
                ));
            }
        }
        let settings = [
            ("vad_min_speech_ms", self.min_speech_ms),
            ("vad_min_silence_ms", self.min_silence_ms),
            ("vad_speech_pad_ms", self.speech_pad_ms),
        ];
        settings.into_iter().find_map(|(name, value)| {
            value
                .filter(|&v| v > MAX_SETTING_MS)
                .map(|v| format!("{name} must be at most {MAX_SETTING_MS}, not {v}"))
        })
    }
}

/// Where speech was found, in seconds of the original audio.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SpeechSpan {
    pub start: f64,
    pub end: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_the_gaps_and_out_of_range_settings_are_named() {
        let params = VadParams::default();
        assert_eq!(params.threshold(), DEFAULT_THRESHOLD);
        assert_eq!(params.speech_pad_seconds(), 0.4);
        assert_eq!(params.problem(), None);
        let bad = VadParams {
            threshold: Some(1.5),
            ..VadParams::default()
        };
        assert!(bad.problem().is_some_and(|p| p.contains("vad_threshold")));
        let bad = VadParams {
            min_silence_ms: Some(60_000),
            ..VadParams::default()
        };
        assert!(bad
            .problem()
            .is_some_and(|p| p.contains("vad_min_silence_ms")));
    }

    #[test]
    fn flat_names_in_json_and_nothing_written_when_unset() {
        let params: VadParams =
            serde_json::from_str(r#"{"vad": true, "vad_threshold": 0.6}"#).expect("json");
        assert_eq!(params.enabled, Some(true));
        assert_eq!(params.threshold, Some(0.6));
        assert_eq!(
            serde_json::to_string(&VadParams::default()).expect("json"),
            "{}"
        );
    }
}
