//! Whisper on CTranslate2 through ct2rs's low-level API.
//!
//! ct2rs's high-level wrapper cuts audio into independent 30 s chunks and
//! computes its own features; here the long-form algorithm of the reference
//! implementation is followed instead: one feature pass over the whole file,
//! seeking by the predicted timestamps, conditioning each window on the text
//! before it, and falling back to sampling at higher temperatures when a
//! window's output looks like a repetition loop or has a low log-probability.
//! A chunk of speech found by voice activity detection is one window,
//! decoded whole without timestamps, its sentences timed by their words.
//! Windows go through the model in rounds of batches, several calls at once
//! when the model's replicas and the cores allow.
//!
//! Longer than most files: the long-form loop is one algorithm whose steps
//! share its state (the seek, the prompt, the fallback), kept together as
//! the reference keeps them.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Mutex, PoisonError};

use anyhow::{anyhow, Context};
use ct2rs::sys::{Device, StorageView, Whisper, WhisperOptions};
use tokenizers::Tokenizer;
use voxq_shared::job::{Segment, TranscriptResult};
use voxq_shared::registry::ModelInfo;

use super::mel::{Features, MelExtractor, CHUNK_FRAMES, HOP, SAMPLE_RATE};
use super::vad::{self, Chunk};
use super::words::{self, Timed};
use super::{
    ct2_config, first_temperature, join_text, round_ms, vocabulary, whisper_info, Engine, Task,
    TranscribeOptions,
};
use crate::config::ModelSpec;

mod rounds;

use rounds::{parallel_calls, settle_languages, share_languages, Progress, MAX_WINDOWS_PER_CALL};

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
/// Smoothing of the cross-attention weights before word alignment.
const MEDIAN_FILTER_WIDTH: i64 = 7;

pub struct Ct2Whisper {
    info: ModelInfo,
    model: Whisper,
    tokenizer: Tokenizer,
    /// The model's token strings by id, timestamps included (Hugging Face
    /// tokenizers of Whisper lack them), for prompts: CTranslate2 takes
    /// prompts as strings.
    vocabulary: Vec<String>,
    mel: MelExtractor,
    beam_size: usize,
    windows_per_call: usize,
    /// Calls of one job's windows made at once, each on its own replica.
    parallel: usize,
    multilingual: bool,
    eot: u32,
    timestamp_begin: u32,
}

struct Decoded {
    tokens: Vec<u32>,
    avg_logprob: f64,
    no_speech_prob: f32,
    temperature: f32,
    compression_ratio: f64,
    /// Every temperature failed the checks: this is the least bad output,
    /// and the text before it should not condition the next window.
    exhausted: bool,
}

impl Ct2Whisper {
    /// One model copy per lane (`lanes`), so that the lanes' calls run at
    /// once, and as many more as one job's calls can use side by side.
    pub fn load(spec: &ModelSpec, lanes: usize) -> anyhow::Result<Self> {
        let parallel = parallel_calls(spec);
        let replicas = lanes.max(1) + parallel - 1;
        let model = Whisper::new(&spec.path, ct2_config(spec, replicas))
            .with_context(|| format!("loading Whisper model from {}", spec.path.display()))?;
        let tokenizer = Tokenizer::from_file(spec.path.join("tokenizer.json"))
            .map_err(|e| anyhow!("loading tokenizer.json: {e}"))?;
        let id = |token: &str| {
            tokenizer
                .token_to_id(token)
                .ok_or_else(|| anyhow!("tokenizer has no {token}"))
        };
        let eot = id("<|endoftext|>")?;
        let timestamp_begin = id("<|notimestamps|>")? + 1;
        let vocabulary = vocabulary::read(&spec.path, "vocabulary")?.ok_or_else(|| {
            anyhow!(
                "{} has no vocabulary.json or vocabulary.txt: is it a CTranslate2 Whisper model?",
                spec.path.display()
            )
        })?;
        anyhow::ensure!(
            vocabulary.get(timestamp_begin as usize).map(String::as_str) == Some("<|0.00|>"),
            "the vocabulary of {} does not put <|0.00|> after <|notimestamps|>",
            spec.path.display()
        );
        let multilingual = model.is_multilingual();
        Ok(Self {
            info: whisper_info(&spec.name, "ct2-whisper", multilingual, spec.default),
            mel: MelExtractor::new(model.n_mels()),
            multilingual,
            model,
            tokenizer,
            vocabulary,
            beam_size: spec.beam_size.max(1),
            windows_per_call: spec.batch_size.max(MAX_WINDOWS_PER_CALL),
            parallel,
            eot,
            timestamp_begin,
        })
    }

    /// A job's prompt as text tokens, with the leading space the reference
    /// gives it. Special tokens a prompt spells out (`<|endoftext|>`) are
    /// dropped: a prompt is text, never control.
    fn initial_prompt(&self, prompt: Option<&str>) -> Vec<u32> {
        let Some(prompt) = prompt.map(str::trim).filter(|p| !p.is_empty()) else {
            return Vec::new();
        };
        match self.tokenizer.encode(format!(" {prompt}"), false) {
            Ok(encoding) => encoding
                .get_ids()
                .iter()
                .copied()
                .filter(|&t| t < self.eot)
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "the prompt could not be tokenized; decoding without it");
                Vec::new()
            }
        }
    }

    fn decode_text(&self, tokens: &[u32]) -> String {
        let text: Vec<u32> = tokens.iter().copied().filter(|&t| t < self.eot).collect();
        self.tokenizer.decode(&text, true).unwrap_or_default()
    }

    fn token_strings(&self, ids: &[u32]) -> anyhow::Result<Vec<String>> {
        ids.iter()
            .map(|&id| {
                self.vocabulary
                    .get(id as usize)
                    .cloned()
                    .ok_or_else(|| anyhow!("token {id} is outside the model's vocabulary"))
            })
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
            // In whole timestamp steps: 0.58 / 0.02 in floating point is
            // 28.999…, which would seek one step early.
            let last_ts = tokens[last - 1];
            seek + (last_ts - self.timestamp_begin) as usize * INPUT_STRIDE
        };
        (segments, next_seek)
    }
}

/// One chunk's long-form decoding state (a chunk is a clip's speech, or
/// the whole clip).
struct Stream {
    /// The input clip the chunk belongs to.
    clip: usize,
    chunk: Chunk,
    features: Features,
    content_frames: usize,
    task: Task,
    language: Option<String>,
    language_probability: Option<f64>,
    /// The first temperature tried on each window.
    temperature: f32,
    seek: usize,
    /// The text so far, after the job's initial prompt.
    all_tokens: Vec<u32>,
    prompt_reset_since: usize,
    segments: Vec<Segment>,
    error: Option<anyhow::Error>,
    word_timestamps: bool,
    /// Whether Whisper predicts the segments' times (else they come from
    /// the words' alignment).
    timestamps: bool,
    /// Where the last timed word ended, for the next window's first word.
    last_speech: f64,
}

/// What one window added to a stream, for word alignment.
struct Window {
    stream: usize,
    seek: usize,
    size: usize,
    /// Index of the window's first segment in the stream.
    first_segment: usize,
    /// Text tokens of each of the window's segments.
    segment_tokens: Vec<usize>,
    tokens: Vec<u32>,
}

impl Stream {
    fn active(&self) -> bool {
        self.error.is_none() && self.seek < self.content_frames
    }

    fn segment_size(&self) -> usize {
        CHUNK_FRAMES.min(self.content_frames - self.seek)
    }

    /// The previous-text tokens this window is conditioned on.
    fn previous(&self) -> &[u32] {
        let previous = &self.all_tokens[self.prompt_reset_since..];
        &previous[previous.len().saturating_sub(MAX_LENGTH / 2 - 1)..]
    }
}

impl Ct2Whisper {
    fn prompt(&self, stream: &Stream, language: &str) -> anyhow::Result<Vec<String>> {
        let previous = stream.previous();
        let mut prompt = Vec::with_capacity(previous.len() + 4);
        if !previous.is_empty() {
            prompt.push("<|startofprev|>".to_owned());
            prompt.extend(self.token_strings(previous)?);
        }
        prompt.push("<|startoftranscript|>".to_owned());
        if self.multilingual {
            prompt.push(format!("<|{language}|>"));
            prompt.push(
                match stream.task {
                    Task::Transcribe => "<|transcribe|>",
                    Task::Translate => "<|translate|>",
                }
                .to_owned(),
            );
        }
        if !stream.timestamps {
            prompt.push("<|notimestamps|>".to_owned());
        }
        Ok(prompt)
    }

    /// Decodes the current window of every stream of `group` (streams whose
    /// prompts share one layout, as CTranslate2 requires of a batch) with
    /// one encoder pass and one beam search; windows that fail the quality
    /// checks are retried alone at higher temperatures.
    fn decode_group(&self, group: &mut [&mut Stream]) -> anyhow::Result<()> {
        let n_mels = self.mel.n_mels();
        let mut batch = Vec::with_capacity(group.len() * n_mels * CHUNK_FRAMES);
        for s in group.iter() {
            batch.extend(s.features.window(s.seek, s.segment_size()));
        }
        let view = StorageView::new(
            &[group.len(), n_mels, CHUNK_FRAMES],
            &mut batch,
            Device::CPU,
        )?;
        let encoded = self.model.encode(&view, false)?;
        if group.iter().any(|s| s.language.is_none()) {
            let detected = self.model.detect_language(&encoded)?;
            for (stream, results) in group.iter_mut().zip(detected) {
                if stream.language.is_none() {
                    let (language, probability) = detection(&results)?;
                    stream.language = Some(language);
                    stream.language_probability = Some(probability);
                }
            }
            settle_languages(group);
        }
        let prompts = group
            .iter()
            .map(|s| self.prompt(s, s.language.as_deref().unwrap_or("en")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        // Streams of a group share their first temperature (`groups`).
        let temperature = group[0].temperature;
        let first = self.run_generate(&encoded, &prompts, temperature)?;
        let mut windows = Vec::new();
        for (i, (prompt, decoded)) in prompts.iter().zip(first).enumerate() {
            let stream = &mut *group[i];
            let decoded = if decoded.acceptable() {
                decoded
            } else {
                let mut window = stream.features.window(stream.seek, stream.segment_size());
                let view = StorageView::new(&[1, n_mels, CHUNK_FRAMES], &mut window, Device::CPU)?;
                let encoded = self.model.encode(&view, false)?;
                self.fall_back(&encoded, prompt, decoded)?
            };
            let window = self.advance(stream, decoded);
            if (stream.word_timestamps || !stream.timestamps) && !window.tokens.is_empty() {
                windows.push(Window {
                    stream: i,
                    ..window
                });
            }
        }
        if !windows.is_empty() {
            self.time_words(group, &encoded, windows);
        }
        Ok(())
    }

    /// Aligns the text of decoded windows with their audio (cross-attention
    /// and dynamic time warping, in CTranslate2) and gives their segments
    /// words. Windows whose prompts start alike align in one call; reusing
    /// the group's encoder output when every window of the group is there.
    /// A failure leaves the affected streams failed, not the group.
    fn time_words(&self, streams: &mut [&mut Stream], encoded: &StorageView, windows: Vec<Window>) {
        let group_size = streams.len();
        let mut by_start: BTreeMap<Vec<usize>, Vec<Window>> = BTreeMap::new();
        for window in windows {
            let stream = &streams[window.stream];
            match self.start_sequence(stream) {
                Ok(start) => by_start.entry(start).or_default().push(window),
                Err(e) => streams[window.stream].error = Some(e),
            }
        }
        for (start, windows) in by_start {
            let aligned = self.align(streams, encoded, group_size, &start, &windows);
            match aligned {
                Ok(results) => {
                    for (window, result) in windows.into_iter().zip(results) {
                        let stream = &mut *streams[window.stream];
                        let language = stream.language.clone().unwrap_or_default();
                        let split = words::split(&window.tokens, &language, |t| {
                            self.tokenizer.decode(t, false).unwrap_or_default()
                        });
                        let path: Vec<(i64, i64)> = result
                            .alignments
                            .iter()
                            .map(|a| (a.token_x, a.frame_x))
                            .collect();
                        let mut timed: Vec<Timed> =
                            words::from_alignment(split, &path, &result.text_token_probs);
                        let median = words::tidy(&mut timed);
                        let time_offset = (window.seek * HOP) as f64 / SAMPLE_RATE as f64;
                        let mut segment_tokens = window.segment_tokens;
                        if !stream.timestamps {
                            // The window's text is one untimed segment:
                            // its sentences, timed by their words, become
                            // the segments.
                            // Text without a timed word (punctuation
                            // alone) stays the untimed segment.
                            let untimed = &stream.segments[window.first_segment..];
                            if let Some(untimed) = untimed.first() {
                                let (sentences, tokens) =
                                    words::sentences(untimed, &timed, time_offset);
                                if !sentences.is_empty() {
                                    stream.segments.truncate(window.first_segment);
                                    stream.segments.extend(sentences);
                                    segment_tokens = tokens;
                                }
                            }
                        }
                        let segments = &mut stream.segments[window.first_segment..];
                        words::attach(
                            segments,
                            &segment_tokens,
                            timed,
                            time_offset,
                            median,
                            &mut stream.last_speech,
                        );
                        if !stream.word_timestamps {
                            segments.iter_mut().for_each(|s| s.words.clear());
                        }
                    }
                }
                Err(e) => {
                    let message = format!("{e:#}");
                    for window in windows {
                        let stream = &mut *streams[window.stream];
                        if stream.word_timestamps {
                            stream.error = Some(anyhow!("word alignment failed: {message}"));
                        } else {
                            // Only the segments' times were asked of the
                            // alignment: the window's text stays, as one
                            // segment over the chunk, rather than the job
                            // failing.
                            tracing::warn!(error = %message, "alignment failed: the window stays one untimed segment");
                        }
                    }
                }
            }
        }
    }

    fn align(
        &self,
        streams: &[&mut Stream],
        encoded: &StorageView,
        group_size: usize,
        start: &[usize],
        windows: &[Window],
    ) -> anyhow::Result<Vec<ct2rs::sys::WhisperAlignmentResult>> {
        let own;
        let encoded = if windows.len() == group_size {
            encoded
        } else {
            let n_mels = self.mel.n_mels();
            let mut batch = Vec::with_capacity(windows.len() * n_mels * CHUNK_FRAMES);
            for w in windows {
                batch.extend(streams[w.stream].features.window(w.seek, w.size));
            }
            let view = StorageView::new(
                &[windows.len(), n_mels, CHUNK_FRAMES],
                &mut batch,
                Device::CPU,
            )?;
            own = self.model.encode(&view, false)?;
            &own
        };
        let tokens: Vec<Vec<usize>> = windows
            .iter()
            .map(|w| w.tokens.iter().map(|&t| t as usize).collect())
            .collect();
        let frames: Vec<usize> = windows.iter().map(|w| w.size).collect();
        let results = self
            .model
            .align(encoded, start, &tokens, &frames, MEDIAN_FILTER_WIDTH)?;
        anyhow::ensure!(
            results.len() == windows.len(),
            "alignment returned {} results for {} windows",
            results.len(),
            windows.len()
        );
        Ok(results)
    }

    /// The tokens before the text: start of transcript, and for
    /// multilingual models the language and the task.
    fn start_sequence(&self, stream: &Stream) -> anyhow::Result<Vec<usize>> {
        let id = |token: &str| {
            self.tokenizer
                .token_to_id(token)
                .map(|id| id as usize)
                .ok_or_else(|| anyhow!("tokenizer has no {token}"))
        };
        let mut start = vec![id("<|startoftranscript|>")?];
        if self.multilingual {
            let language = stream.language.as_deref().unwrap_or("en");
            start.push(id(&format!("<|{language}|>"))?);
            start.push(id(match stream.task {
                Task::Transcribe => "<|transcribe|>",
                Task::Translate => "<|translate|>",
            })?);
        }
        Ok(start)
    }

    /// Beam search (temperature 0) or best-of-N sampling for each prompt.
    fn run_generate(
        &self,
        encoded: &StorageView,
        prompts: &[Vec<String>],
        temperature: f32,
    ) -> anyhow::Result<Vec<Decoded>> {
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
        let results = self.model.generate(encoded, prompts, &options)?;
        anyhow::ensure!(
            results.len() == prompts.len(),
            "Whisper returned {} results for {} prompts",
            results.len(),
            prompts.len()
        );
        Ok(results
            .into_iter()
            .map(|result| {
                let tokens: Vec<u32> = result
                    .sequences_ids
                    .first()
                    .map(|ids| ids.iter().map(|&id| id as u32).collect())
                    .unwrap_or_default();
                let score = f64::from(result.scores.first().copied().unwrap_or(f32::NEG_INFINITY));
                // Scores are length-normalised; recover the sum, then average
                // over the tokens plus the end-of-text token.
                let avg_logprob = score * tokens.len() as f64 / (tokens.len() + 1) as f64;
                let compression_ratio = compression_ratio(self.decode_text(&tokens).trim());
                Decoded {
                    tokens,
                    avg_logprob,
                    no_speech_prob: result.no_speech_prob,
                    temperature,
                    compression_ratio,
                    exhausted: false,
                }
            })
            .collect())
    }

    /// The reference's temperature fallback for one window whose first
    /// decoding failed the checks: the ladder's higher temperatures.
    fn fall_back(
        &self,
        encoded: &StorageView,
        prompt: &[String],
        first: Decoded,
    ) -> anyhow::Result<Decoded> {
        let start = first.temperature;
        let mut candidates = vec![first];
        for temperature in TEMPERATURES.into_iter().filter(|&t| t > start) {
            let decoded = self
                .run_generate(encoded, std::slice::from_ref(&prompt.to_vec()), temperature)?
                .pop()
                .ok_or_else(|| anyhow!("Whisper returned no result"))?;
            if decoded.acceptable() {
                return Ok(decoded);
            }
            candidates.push(decoded);
        }
        // Every temperature failed a check: keep the most probable output,
        // preferring one that is not a repetition loop.
        let best_index = |loops_ok: bool| {
            candidates
                .iter()
                .enumerate()
                .filter(|(_, d)| loops_ok || d.compression_ratio <= COMPRESSION_RATIO_THRESHOLD)
                .max_by(|a, b| a.1.avg_logprob.total_cmp(&b.1.avg_logprob))
                .map(|(i, _)| i)
        };
        let index = best_index(false)
            .or_else(|| best_index(true))
            .ok_or_else(|| anyhow!("no decoding candidate"))?;
        Ok(Decoded {
            exhausted: true,
            ..candidates.swap_remove(index)
        })
    }

    /// Turns one window's decoding into segments and moves the stream on.
    fn advance(&self, stream: &mut Stream, decoded: Decoded) -> Window {
        let segment_size = stream.segment_size();
        let seek = stream.seek;
        let mut window = Window {
            stream: 0,
            seek,
            size: segment_size,
            first_segment: stream.segments.len(),
            segment_tokens: Vec::new(),
            tokens: Vec::new(),
        };
        tracing::debug!(
            seek,
            tokens = decoded.tokens.len(),
            no_speech_prob = decoded.no_speech_prob,
            avg_logprob = decoded.avg_logprob,
            temperature = decoded.temperature,
            compression_ratio = decoded.compression_ratio,
            silence = decoded.is_silence(),
            "window decoded"
        );
        if decoded.is_silence() {
            stream.seek += segment_size;
            return window;
        }
        let time_offset = (seek * HOP) as f64 / SAMPLE_RATE as f64;
        // Where the window starts in the clip, in mel frames, as the
        // reference's `seek` (a chunk of speech starts partway through).
        let clip_seek = (stream.chunk.original_time(time_offset) * SAMPLE_RATE as f64 / HOP as f64)
            .round() as u64;
        let (window_segments, next_seek) =
            self.split_segments(&decoded.tokens, time_offset, segment_size, seek);
        for (start, end, tokens) in window_segments {
            let text = self.decode_text(&tokens);
            if start >= end || text.trim().is_empty() {
                continue;
            }
            let text_tokens: Vec<u32> = tokens.iter().copied().filter(|&t| t < self.eot).collect();
            window.segment_tokens.push(text_tokens.len());
            window.tokens.extend(&text_tokens);
            // The next window is conditioned on this text with its
            // timestamps, as in the reference: without them the model
            // learns from its own prompt to stop predicting timestamps,
            // and every later segment becomes one bare 30 s window.
            stream.all_tokens.extend(tokens);
            stream.segments.push(Segment {
                start: round_ms(start),
                end: round_ms(end.min(stream.chunk.seconds())),
                text: text.trim().to_owned(),
                avg_logprob: Some(round_ms(decoded.avg_logprob)),
                no_speech_prob: Some(round_ms(f64::from(decoded.no_speech_prob))),
                compression_ratio: Some(round_ms(decoded.compression_ratio)),
                temperature: Some(round_ms(f64::from(decoded.temperature))),
                seek: Some(clip_seek),
                tokens: text_tokens,
                words: Vec::new(),
            });
        }
        if decoded.exhausted || decoded.temperature > PROMPT_RESET_TEMPERATURE {
            stream.prompt_reset_since = stream.all_tokens.len();
        }
        // Always move forward, even if the model predicted no progress.
        stream.seek = next_seek.max(seek + 1);
        window
    }
}

impl Decoded {
    fn is_silence(&self) -> bool {
        self.no_speech_prob > NO_SPEECH_THRESHOLD && self.avg_logprob < LOG_PROB_THRESHOLD
    }

    fn acceptable(&self) -> bool {
        self.is_silence()
            || (self.compression_ratio <= COMPRESSION_RATIO_THRESHOLD
                && self.avg_logprob >= LOG_PROB_THRESHOLD)
    }
}

/// The best language of a detection: its code and probability. ct2rs 0.10
/// keeps `DetectionResult`'s fields private; its `Debug` form is the only
/// public view of them.
fn detection(results: &[ct2rs::sys::DetectionResult]) -> anyhow::Result<(String, f64)> {
    let best = results
        .first()
        .ok_or_else(|| anyhow!("language detection returned nothing"))?;
    let debug = format!("{best:?}");
    let code = debug
        .split("<|")
        .nth(1)
        .and_then(|rest| rest.split("|>").next())
        .ok_or_else(|| anyhow!("unexpected detection result {debug}"))?;
    let probability = debug
        .split("probability:")
        .nth(1)
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches(['}', ' '])
                .split([',', ' '])
                .next()
        })
        .and_then(|p| p.parse::<f64>().ok())
        .unwrap_or(0.0);
    Ok((code.to_owned(), round_ms(probability)))
}

impl Engine for Ct2Whisper {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn transcribe_batch(
        &self,
        audio: &[&[f32]],
        options: &[TranscribeOptions],
    ) -> Vec<anyhow::Result<TranscriptResult>> {
        let english_only = !self.multilingual;
        let planned: Vec<(usize, Chunk)> = audio
            .iter()
            .zip(options)
            .enumerate()
            .flat_map(|(clip, (samples, options))| {
                let chunks = vad::plan(options.speech.as_ref(), samples.len());
                chunks.into_iter().map(move |chunk| (clip, chunk))
            })
            .collect();
        let features = self.features(audio, &planned);
        let initial: Vec<Vec<u32>> = options
            .iter()
            .map(|o| self.initial_prompt(o.prompt.as_deref()))
            .collect();
        let mut streams: Vec<Mutex<Stream>> = planned
            .into_iter()
            .zip(features)
            .map(|((clip, chunk), features)| {
                let options = &options[clip];
                Mutex::new(Stream {
                    clip,
                    content_frames: features.frames.saturating_sub(1),
                    features,
                    chunk,
                    task: if english_only {
                        Task::Transcribe
                    } else {
                        options.task
                    },
                    language: if english_only {
                        Some("en".to_owned())
                    } else {
                        options.language.clone()
                    },
                    language_probability: None,
                    temperature: first_temperature(options.temperature),
                    seek: 0,
                    // Each stretch of speech starts from the job's prompt,
                    // as a whole clip does.
                    all_tokens: initial[clip].clone(),
                    prompt_reset_since: 0,
                    segments: Vec::new(),
                    error: None,
                    word_timestamps: options.word_timestamps,
                    // A chunk of speech is one window, decoded whole: with
                    // timestamps, Whisper leaves a window's last sentence
                    // for the next window when it ends near the window's
                    // end (it did in each of six 29 s chunks measured),
                    // and decoding those tails doubled the encoder's work.
                    // Its segments are timed by their words instead.
                    timestamps: options.speech.is_none(),
                    last_speech: 0.0,
                })
            })
            .collect();
        let progress = Progress::new(&mut streams);
        loop {
            share_languages(&mut streams);
            let batches = self.plan_round(&mut streams);
            if batches.is_empty() {
                break;
            }
            self.run_round(&streams, batches, options, &progress);
        }
        let streams = streams
            .into_iter()
            .map(|s| s.into_inner().unwrap_or_else(PoisonError::into_inner))
            .collect();
        assemble(audio, options, streams)
    }
}

/// Each clip's transcript from its chunks' segments, on the original
/// timeline; a clip with a failed chunk fails.
fn assemble(
    audio: &[&[f32]],
    options: &[TranscribeOptions],
    streams: Vec<Stream>,
) -> Vec<anyhow::Result<TranscriptResult>> {
    let mut results: Vec<anyhow::Result<TranscriptResult>> = audio
        .iter()
        .zip(options)
        .map(|(samples, options)| {
            Ok(TranscriptResult {
                text: String::new(),
                segments: Vec::new(),
                language: options.language.clone().unwrap_or_else(|| "en".to_owned()),
                language_probability: None,
                duration: round_ms(samples.len() as f64 / SAMPLE_RATE as f64),
                speech: options.speech.as_ref().map(|s| s.spans.clone()),
                translations: BTreeMap::new(),
            })
        })
        .collect();
    for stream in streams {
        let result = &mut results[stream.clip];
        let Ok(transcript) = result else {
            continue;
        };
        if let Some(e) = stream.error {
            *result = Err(e);
            continue;
        }
        if let Some(language) = stream.language {
            transcript.language = language;
            transcript.language_probability = stream.language_probability;
        }
        let speech = options[stream.clip].speech.as_ref();
        for mut segment in stream.segments {
            vad::place(&mut segment, &stream.chunk, speech);
            transcript.segments.push(segment);
        }
    }
    for transcript in results.iter_mut().flatten() {
        transcript.text = join_text(&transcript.segments);
    }
    results
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
