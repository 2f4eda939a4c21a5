//! Whisper on CTranslate2 through ct2rs's low-level API.
//!
//! ct2rs's high-level wrapper cuts audio into independent 30 s chunks and
//! computes its own features; here the long-form algorithm of the reference
//! implementation is followed instead: one feature pass over the whole file,
//! seeking by the predicted timestamps, conditioning each window on the text
//! before it, and falling back to sampling at higher temperatures when a
//! window's output looks like a repetition loop or has a low log-probability.

use std::io::Write;
use std::path::Path;

use anyhow::{anyhow, Context};
use ct2rs::sys::{ComputeType, Config, Device, StorageView, Whisper, WhisperOptions};
use tokenizers::Tokenizer;
use voxq_shared::job::{Segment, TranscriptResult};

use super::mel::{MelExtractor, CHUNK_FRAMES, HOP, SAMPLE_RATE};
use super::{Engine, TranscribeOptions};

const TEMPERATURES: [f32; 6] = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0];
const COMPRESSION_RATIO_THRESHOLD: f64 = 2.4;
const LOG_PROB_THRESHOLD: f64 = -1.0;
const NO_SPEECH_THRESHOLD: f32 = 0.6;
/// Above this temperature the previous text stops being used as a prompt:
/// it is probably what sent the model into a loop.
const PROMPT_RESET_TEMPERATURE: f32 = 0.5;
const MAX_LENGTH: usize = 448;
/// Seconds per timestamp token.
const TIME_PRECISION: f64 = 0.02;
/// Mel frames per encoder position (the encoder halves the frame rate).
const INPUT_STRIDE: usize = 2;
const BEST_OF: usize = 5;

pub struct Ct2WhisperConfig<'a> {
    pub name: &'a str,
    pub path: &'a Path,
    pub device: Device,
    pub compute_type: ComputeType,
    pub threads: usize,
    pub beam_size: usize,
}

pub struct Ct2Whisper {
    name: String,
    model: Whisper,
    tokenizer: Tokenizer,
    mel: MelExtractor,
    beam_size: usize,
    multilingual: bool,
    eot: u32,
    timestamp_begin: u32,
}

struct Decoded {
    tokens: Vec<u32>,
    avg_logprob: f64,
    no_speech_prob: f32,
    temperature: f32,
}

impl Ct2Whisper {
    pub fn load(config: Ct2WhisperConfig<'_>) -> anyhow::Result<Self> {
        let model = Whisper::new(
            config.path,
            Config {
                device: config.device,
                compute_type: config.compute_type,
                num_threads_per_replica: config.threads,
                ..Config::default()
            },
        )
        .with_context(|| format!("loading Whisper model from {}", config.path.display()))?;
        let tokenizer = Tokenizer::from_file(config.path.join("tokenizer.json"))
            .map_err(|e| anyhow!("loading tokenizer.json: {e}"))?;
        let id = |token: &str| {
            tokenizer
                .token_to_id(token)
                .ok_or_else(|| anyhow!("tokenizer has no {token}"))
        };
        let eot = id("<|endoftext|>")?;
        let timestamp_begin = id("<|notimestamps|>")? + 1;
        Ok(Self {
            name: config.name.to_owned(),
            mel: MelExtractor::new(model.n_mels()),
            multilingual: model.is_multilingual(),
            model,
            tokenizer,
            beam_size: config.beam_size.max(1),
            eot,
            timestamp_begin,
        })
    }

    fn detect_language(&self, encoded: &StorageView) -> anyhow::Result<String> {
        let results = self.model.detect_language(encoded)?;
        let best = results
            .first()
            .and_then(|r| r.first())
            .ok_or_else(|| anyhow!("language detection returned nothing"))?;
        // ct2rs 0.10 keeps DetectionResult's fields private; its Debug form
        // is the only public view of the language token.
        let debug = format!("{best:?}");
        let code = debug
            .split("<|")
            .nth(1)
            .and_then(|rest| rest.split("|>").next())
            .ok_or_else(|| anyhow!("unexpected detection result {debug}"))?;
        Ok(code.to_owned())
    }

    fn generate(&self, encoded: &StorageView, prompt: &[String]) -> anyhow::Result<Decoded> {
        let mut candidates: Vec<(Decoded, f64)> = Vec::new();
        for temperature in TEMPERATURES {
            let greedy = temperature == 0.0;
            let options = WhisperOptions {
                beam_size: if greedy { self.beam_size } else { 1 },
                patience: 1.0,
                length_penalty: 1.0,
                repetition_penalty: 1.0,
                no_repeat_ngram_size: 0,
                max_length: MAX_LENGTH,
                sampling_topk: if greedy { 1 } else { 0 },
                sampling_temperature: if greedy { 1.0 } else { temperature },
                num_hypotheses: if greedy { 1 } else { BEST_OF },
                return_scores: true,
                return_logits_vocab: false,
                return_no_speech_prob: true,
                max_initial_timestamp_index: 50,
                suppress_blank: true,
                suppress_tokens: vec![-1],
            };
            let result = self
                .model
                .generate(encoded, &[prompt.to_vec()], &options)?
                .into_iter()
                .next()
                .ok_or_else(|| anyhow!("Whisper returned no result"))?;
            let tokens: Vec<u32> = result
                .sequences_ids
                .first()
                .map(|ids| ids.iter().map(|&id| id as u32).collect())
                .unwrap_or_default();
            let score = f64::from(result.scores.first().copied().unwrap_or(f32::NEG_INFINITY));
            // Scores are length-normalised; recover the sum, then average
            // over the tokens plus the end-of-text token.
            let avg_logprob = score * tokens.len() as f64 / (tokens.len() + 1) as f64;
            let text = self.decode_text(&tokens);
            let ratio = compression_ratio(&text);
            let decoded = Decoded {
                tokens,
                avg_logprob,
                no_speech_prob: result.no_speech_prob,
                temperature,
            };
            let silent =
                decoded.no_speech_prob > NO_SPEECH_THRESHOLD && avg_logprob < LOG_PROB_THRESHOLD;
            if silent || (ratio <= COMPRESSION_RATIO_THRESHOLD && avg_logprob >= LOG_PROB_THRESHOLD)
            {
                return Ok(decoded);
            }
            candidates.push((decoded, ratio));
        }
        // Every temperature failed a check: keep the most probable output,
        // preferring one that is not a repetition loop.
        let best_index = |loops_ok: bool| {
            candidates
                .iter()
                .enumerate()
                .filter(|(_, (_, ratio))| loops_ok || *ratio <= COMPRESSION_RATIO_THRESHOLD)
                .max_by(|a, b| a.1 .0.avg_logprob.total_cmp(&b.1 .0.avg_logprob))
                .map(|(i, _)| i)
        };
        let index = best_index(false)
            .or_else(|| best_index(true))
            .ok_or_else(|| anyhow!("no decoding candidate"))?;
        Ok(candidates.swap_remove(index).0)
    }

    fn decode_text(&self, tokens: &[u32]) -> String {
        let text: Vec<u32> = tokens.iter().copied().filter(|&t| t < self.eot).collect();
        self.tokenizer.decode(&text, true).unwrap_or_default()
    }

    fn token_strings(&self, ids: &[u32]) -> Vec<String> {
        ids.iter()
            .filter_map(|&id| self.tokenizer.id_to_token(id))
            .collect()
    }

    fn timestamp(&self, token: u32) -> f64 {
        f64::from(token - self.timestamp_begin) * TIME_PRECISION
    }

    /// Splits one window's tokens into timed segments and says where the
    /// next window starts (in mel frames).
    fn split_segments(
        &self,
        tokens: &[u32],
        time_offset: f64,
        segment_size: usize,
        seek: usize,
    ) -> (Vec<(f64, f64, Vec<u32>)>, usize) {
        let is_ts = |t: u32| t >= self.timestamp_begin;
        let single_timestamp_ending = tokens.len() >= 2
            && !is_ts(tokens[tokens.len() - 2])
            && is_ts(tokens[tokens.len() - 1]);
        let mut boundaries: Vec<usize> = (1..tokens.len())
            .filter(|&i| is_ts(tokens[i]) && is_ts(tokens[i - 1]))
            .collect();
        let mut segments = Vec::new();
        if boundaries.is_empty() {
            let last_ts = tokens.iter().rev().copied().find(|&t| is_ts(t));
            let duration = match last_ts {
                Some(t) if t != self.timestamp_begin => self.timestamp(t),
                _ => segment_size as f64 * HOP as f64 / SAMPLE_RATE as f64,
            };
            segments.push((time_offset, time_offset + duration, tokens.to_vec()));
            return (segments, seek + segment_size);
        }
        if single_timestamp_ending {
            boundaries.push(tokens.len());
        }
        let mut last = 0;
        for &end in &boundaries {
            let slice = &tokens[last..end];
            if let (Some(&first), Some(&final_)) = (slice.first(), slice.last()) {
                if is_ts(first) && is_ts(final_) {
                    segments.push((
                        time_offset + self.timestamp(first),
                        time_offset + self.timestamp(final_),
                        slice.to_vec(),
                    ));
                }
            }
            last = end;
        }
        let next_seek = if single_timestamp_ending {
            seek + segment_size
        } else {
            // Resume at the last complete timestamp: the text after it was
            // cut by the window's end and is decoded again in the next one.
            let last_ts = tokens[last - 1];
            seek + (self.timestamp(last_ts) / TIME_PRECISION) as usize * INPUT_STRIDE
        };
        (segments, next_seek)
    }
}

impl Engine for Ct2Whisper {
    fn model_name(&self) -> &str {
        &self.name
    }

    fn transcribe(
        &self,
        audio: &[f32],
        options: &TranscribeOptions,
    ) -> anyhow::Result<TranscriptResult> {
        let features = self.mel.compute(audio);
        let content_frames = features.frames.saturating_sub(1);
        let mut language = if self.multilingual {
            options.language.clone()
        } else {
            Some("en".to_owned())
        };
        let mut segments: Vec<Segment> = Vec::new();
        let mut all_tokens: Vec<u32> = Vec::new();
        let mut prompt_reset_since = 0;
        let mut seek = 0usize;
        while seek < content_frames {
            let time_offset = (seek * HOP) as f64 / SAMPLE_RATE as f64;
            let segment_size = CHUNK_FRAMES.min(content_frames - seek);
            let mut window = features.window(seek, segment_size);
            let view = StorageView::new(
                &[1, features.n_mels, CHUNK_FRAMES],
                &mut window,
                Device::CPU,
            )?;
            let encoded = self.model.encode(&view, false)?;
            let lang = match &language {
                Some(lang) => lang.clone(),
                None => {
                    let detected = self.detect_language(&encoded)?;
                    language = Some(detected.clone());
                    detected
                }
            };

            let mut prompt = Vec::new();
            let previous = &all_tokens[prompt_reset_since..];
            if !previous.is_empty() {
                prompt.push("<|startofprev|>".to_owned());
                let keep = MAX_LENGTH / 2 - 1;
                prompt.extend(self.token_strings(&previous[previous.len().saturating_sub(keep)..]));
            }
            prompt.push("<|startoftranscript|>".to_owned());
            if self.multilingual {
                prompt.push(format!("<|{lang}|>"));
                prompt.push("<|transcribe|>".to_owned());
            }

            let decoded = self.generate(&encoded, &prompt)?;
            if decoded.no_speech_prob > NO_SPEECH_THRESHOLD
                && decoded.avg_logprob < LOG_PROB_THRESHOLD
            {
                seek += segment_size;
                continue;
            }
            let (window_segments, next_seek) =
                self.split_segments(&decoded.tokens, time_offset, segment_size, seek);
            for (start, end, tokens) in window_segments {
                let text = self.decode_text(&tokens);
                if start >= end || text.trim().is_empty() {
                    continue;
                }
                all_tokens.extend(tokens.iter().copied().filter(|&t| t < self.eot));
                segments.push(Segment {
                    start: round_ms(start),
                    end: round_ms(end.min(audio.len() as f64 / SAMPLE_RATE as f64)),
                    text: text.trim().to_owned(),
                });
            }
            if decoded.temperature > PROMPT_RESET_TEMPERATURE {
                prompt_reset_since = all_tokens.len();
            }
            // Always move forward, even if the model predicted no progress.
            seek = next_seek.max(seek + 1);
        }
        let text = segments
            .iter()
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        Ok(TranscriptResult {
            text,
            segments,
            language: language.unwrap_or_else(|| "en".to_owned()),
            duration: round_ms(audio.len() as f64 / SAMPLE_RATE as f64),
        })
    }
}

fn round_ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

/// zlib compression ratio of the text: high values mean repetition loops.
fn compression_ratio(text: &str) -> f64 {
    if text.is_empty() {
        return 0.0;
    }
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    if encoder.write_all(text.as_bytes()).is_err() {
        return 0.0;
    }
    match encoder.finish() {
        Ok(compressed) if !compressed.is_empty() => text.len() as f64 / compressed.len() as f64,
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::compression_ratio;

    #[test]
    fn repetition_loops_compress_far_better_than_speech() {
        let normal = "And so, my fellow Americans, ask not what your country can do for you.";
        let looped = "thank you ".repeat(40);
        assert!(compression_ratio(normal) < 2.4);
        assert!(compression_ratio(&looped) > 2.4);
    }
}
