//! A job's result in OpenAI's response formats: `json`, `text`, `srt`,
//! `verbose_json` (task, language name, duration, segments with their
//! decoding statistics, words) and `vtt`.

use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::json;
use voxq_shared::job::{JobKind, Segment, TranscriptResult};
use voxq_shared::subtitles;
use voxq_shared::whisper_languages::language_name;

use crate::error::ApiError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Text,
    Srt,
    VerboseJson,
    Vtt,
}

impl Format {
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "json" => Self::Json,
            "text" => Self::Text,
            "srt" => Self::Srt,
            "verbose_json" => Self::VerboseJson,
            "vtt" => Self::Vtt,
            _ => return None,
        })
    }
}

/// Which timings `verbose_json` carries (`timestamp_granularities[]`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Granularities {
    pub words: bool,
    segments: bool,
    given: bool,
}

impl Granularities {
    /// One `timestamp_granularities[]` part (a comma list is taken too).
    pub fn add(&mut self, value: &str) -> Result<(), String> {
        for granularity in value.split(',').map(str::trim).filter(|g| !g.is_empty()) {
            match granularity {
                "word" => self.words = true,
                "segment" => self.segments = true,
                other => {
                    return Err(format!(
                        "unknown timestamp granularity {other:?}: use `word` or `segment`"
                    ))
                }
            }
            self.given = true;
        }
        Ok(())
    }

    /// Segments unless only words were asked for, as OpenAI does.
    fn segments(&self) -> bool {
        !self.given || self.segments
    }
}

#[derive(Serialize)]
struct VerboseSegment<'a> {
    id: usize,
    seek: u64,
    start: f64,
    end: f64,
    text: &'a str,
    tokens: &'a [u32],
    temperature: f64,
    avg_logprob: f64,
    compression_ratio: f64,
    no_speech_prob: f64,
}

#[derive(Serialize)]
struct VerboseWord<'a> {
    word: &'a str,
    start: f64,
    end: f64,
}

/// The answer to a succeeded job's request.
pub fn response(
    kind: JobKind,
    result: serde_json::Value,
    format: Format,
    granularities: Granularities,
) -> Result<Response, ApiError> {
    let transcript: TranscriptResult =
        serde_json::from_value(result).map_err(|e| ApiError::Internal(e.into()))?;
    let duration = transcript.duration;
    let (task, language, text, segments) = match kind {
        JobKind::SpeechTranslate => {
            let (text, segments) = english(transcript)?;
            ("translate", "en".to_owned(), text, segments)
        }
        _ => (
            "transcribe",
            transcript.language,
            transcript.text,
            transcript.segments,
        ),
    };
    let usage = json!({"type": "duration", "seconds": duration.ceil() as u64});
    Ok(match format {
        Format::Json => Json(json!({"text": text, "usage": usage})).into_response(),
        Format::Text => text_response("text/plain; charset=utf-8", text + "\n"),
        Format::Srt => text_response(
            "application/x-subrip; charset=utf-8",
            subtitles::srt(&segments),
        ),
        Format::Vtt => text_response("text/vtt; charset=utf-8", subtitles::vtt(&segments)),
        Format::VerboseJson => {
            let mut body = json!({
                "task": task,
                "language": language_name(&language).unwrap_or(&language),
                "duration": duration,
                "text": text,
                "usage": usage,
            });
            if granularities.segments() {
                body["segments"] = json!(verbose_segments(&segments));
            }
            if granularities.words {
                body["words"] = json!(verbose_words(&segments));
            }
            Json(body).into_response()
        }
    })
}

fn text_response(content_type: &'static str, body: String) -> Response {
    ([(CONTENT_TYPE, content_type)], body).into_response()
}

/// A speech translation's English: the rendition Whisper's translate task
/// made, or the transcript itself when it already is English.
fn english(mut transcript: TranscriptResult) -> Result<(String, Vec<Segment>), ApiError> {
    if let Some(rendition) = transcript.translations.remove("en") {
        return Ok((rendition.text, rendition.segments));
    }
    if transcript.language == "en" {
        return Ok((transcript.text, transcript.segments));
    }
    Err(ApiError::Internal(anyhow::anyhow!(
        "a speech translation without English"
    )))
}

fn verbose_segments(segments: &[Segment]) -> Vec<VerboseSegment<'_>> {
    segments
        .iter()
        .enumerate()
        .map(|(id, s)| VerboseSegment {
            id,
            // Whisper counts its windows in mel frames, 100 a second.
            seek: s.seek.unwrap_or((s.start * 100.0).round() as u64),
            start: s.start,
            end: s.end,
            text: &s.text,
            tokens: &s.tokens,
            temperature: s.temperature.unwrap_or(0.0),
            avg_logprob: s.avg_logprob.unwrap_or(0.0),
            compression_ratio: s.compression_ratio.unwrap_or(0.0),
            no_speech_prob: s.no_speech_prob.unwrap_or(0.0),
        })
        .collect()
}

fn verbose_words(segments: &[Segment]) -> Vec<VerboseWord<'_>> {
    segments
        .iter()
        .flat_map(|s| &s.words)
        .map(|w| VerboseWord {
            word: w.word.trim(),
            start: w.start,
            end: w.end,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use voxq_shared::job::Word;

    fn transcript() -> serde_json::Value {
        let segment = Segment {
            start: 0.0,
            end: 1.5,
            text: " Hello world.".into(),
            avg_logprob: Some(-0.2),
            tokens: vec![1, 2],
            words: vec![
                Word {
                    word: " Hello".into(),
                    start: 0.0,
                    end: 0.6,
                    probability: 0.9,
                },
                Word {
                    word: " world.".into(),
                    start: 0.6,
                    end: 1.5,
                    probability: 0.8,
                },
            ],
            ..Segment::default()
        };
        serde_json::to_value(TranscriptResult {
            text: "Hello world.".into(),
            segments: vec![segment],
            language: "en".into(),
            duration: 1.6,
            ..TranscriptResult::default()
        })
        .expect("json")
    }

    async fn body(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        serde_json::from_slice(&bytes).expect("json")
    }

    #[tokio::test]
    async fn verbose_json_has_openais_fields_and_words_only_when_asked() {
        let mut words = Granularities::default();
        words.add("word").expect("word");
        let v = body(
            response(
                JobKind::Transcribe,
                transcript(),
                Format::VerboseJson,
                words,
            )
            .expect("render"),
        )
        .await;
        assert_eq!(v["task"], "transcribe");
        assert_eq!(v["language"], "english");
        assert_eq!(v["duration"], 1.6);
        assert_eq!(v["words"][1]["word"], "world.");
        // Only words were asked for.
        assert!(v.get("segments").is_none());
        let v = body(
            response(
                JobKind::Transcribe,
                transcript(),
                Format::VerboseJson,
                Granularities::default(),
            )
            .expect("render"),
        )
        .await;
        let segment = &v["segments"][0];
        for field in [
            "id",
            "seek",
            "start",
            "end",
            "text",
            "tokens",
            "temperature",
            "avg_logprob",
            "compression_ratio",
            "no_speech_prob",
        ] {
            assert!(segment.get(field).is_some(), "segments lack {field}");
        }
        assert_eq!(segment["seek"], 0);
        assert!(v.get("words").is_none());
    }

    #[test]
    fn granularities_refuse_what_openai_does_not_know() {
        let mut g = Granularities::default();
        assert!(g.add("char").is_err());
        assert!(g.add("word,segment").is_ok());
        assert!(g.words && g.segments());
    }
}
