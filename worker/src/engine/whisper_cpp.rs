//! Whisper on whisper.cpp (ggml model files) through whisper-rs.
//!
//! whisper.cpp runs the reference long-form algorithm itself (seeking,
//! previous-text conditioning, temperature fallback); this engine maps its
//! segments to voxq's result shape. Decoding states are pooled: a state
//! holds the key/value caches (tens of MiB) and one is needed per call in
//! flight.

use std::collections::BTreeMap;
use std::sync::Mutex;

use anyhow::{anyhow, Context};
use voxq_shared::job::{Segment, TranscriptResult};
use voxq_shared::registry::ModelInfo;
use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState,
};

use super::vad;
use super::words::{self, Timed};
use super::{
    first_temperature, join_text, round_ms, whisper_info, Engine, Stopped, Task, TranscribeOptions,
};
use crate::config::{DeviceArg, ModelSpec};

const SAMPLE_RATE: f64 = 16_000.0;

pub struct WhisperCpp {
    info: ModelInfo,
    context: WhisperContext,
    states: Mutex<Vec<WhisperState>>,
    threads: usize,
    beam_size: usize,
    multilingual: bool,
    eot: i32,
}

impl WhisperCpp {
    pub fn load(spec: &ModelSpec) -> anyhow::Result<Self> {
        let path = spec
            .path
            .to_str()
            .ok_or_else(|| anyhow!("model path is not UTF-8"))?;
        let params = WhisperContextParameters {
            use_gpu: spec.device == DeviceArg::Cuda,
            ..WhisperContextParameters::default()
        };
        let context = WhisperContext::new_with_params(path, params)
            .with_context(|| format!("loading ggml Whisper model {path}"))?;
        let multilingual = context.is_multilingual();
        Ok(Self {
            info: whisper_info(&spec.name, "whisper-cpp", multilingual, spec.default),
            eot: context.token_eot(),
            context,
            states: Mutex::new(Vec::new()),
            threads: spec.threads().max(1),
            beam_size: spec.beam_size.max(1),
            multilingual,
        })
    }

    fn state(&self) -> anyhow::Result<WhisperState> {
        let pooled = self.states.lock().ok().and_then(|mut pool| pool.pop());
        match pooled {
            Some(state) => Ok(state),
            None => Ok(self.context.create_state()?),
        }
    }

    fn run(&self, audio: &[f32], options: &TranscribeOptions) -> anyhow::Result<TranscriptResult> {
        let mut state = self.state()?;
        let outcome = self.run_chunks(&mut state, audio, options);
        if let Ok(mut pool) = self.states.lock() {
            pool.push(state);
        }
        let (segments, language) = outcome?;
        let text = join_text(&segments);
        Ok(TranscriptResult {
            text,
            segments,
            language,
            language_probability: None,
            duration: round_ms(audio.len() as f64 / SAMPLE_RATE),
            speech: options.speech.as_ref().map(|s| s.spans.clone()),
            translations: BTreeMap::new(),
        })
    }

    /// Decodes the clip's speech chunks (or the whole clip) one after
    /// another, on the original timeline, each conditioned on the text
    /// before it; the language of the first chunk holds for the rest.
    /// Stops between chunks when the job asks.
    fn run_chunks(
        &self,
        state: &mut WhisperState,
        audio: &[f32],
        options: &TranscribeOptions,
    ) -> anyhow::Result<(Vec<Segment>, String)> {
        let mut language = if self.multilingual {
            options.language.clone()
        } else {
            Some("en".to_owned())
        };
        let speech = options.speech.as_ref();
        let prompt = self.initial_prompt(options.prompt.as_deref())?;
        let mut segments = Vec::new();
        for chunk in vad::plan(speech, audio.len()) {
            if let Some(control) = &options.control {
                if control.stopped() {
                    return Err(Stopped.into());
                }
                control.report(chunk.start());
            }
            let first = segments.is_empty();
            // The prompt leads the first chunk; the later ones read on from
            // the text before them, which it already shaped.
            let prompt: &[i32] = if first { &prompt } else { &[] };
            let (decoded, detected) = self.decode(
                state,
                &chunk.audio(audio),
                options,
                (language.as_deref(), prompt),
                first,
            )?;
            let seek = (chunk.start() * 100.0).round() as u64;
            language.get_or_insert(detected);
            for mut segment in decoded {
                // whisper.cpp does not say which window a segment came
                // from: its chunk's start stands in for it.
                segment.seek = Some(seek);
                vad::place(&mut segment, &chunk, speech);
                segments.push(segment);
            }
        }
        Ok((segments, language.unwrap_or_else(|| "en".to_owned())))
    }

    /// A job's prompt as whisper.cpp's tokens, with the reference's
    /// leading space, at most the half context the decoder reads of it.
    /// Tokens are given rather than the text: whisper-rs leaks the text's
    /// copy on every call.
    fn initial_prompt(&self, prompt: Option<&str>) -> anyhow::Result<Vec<i32>> {
        let Some(prompt) = prompt.map(str::trim).filter(|p| !p.is_empty()) else {
            return Ok(Vec::new());
        };
        // No text a C string cannot carry; room for one token per byte, as
        // whisper-rs misreads whisper.cpp's "too many tokens" answer.
        let text = format!(" {}", prompt.replace('\0', ""));
        let tokens = self
            .context
            .tokenize(&text, text.len() + 1)
            .map_err(|e| anyhow!("the prompt could not be tokenized: {e:?}"))?;
        let keep = (self.context.n_text_ctx() / 2 - 1).max(0) as usize;
        let text_tokens: Vec<i32> = tokens.into_iter().filter(|&t| t < self.eot).collect();
        Ok(text_tokens[text_tokens.len().saturating_sub(keep)..].to_vec())
    }

    /// One whisper.cpp call over `audio`: its segments (times from the
    /// start of `audio`) and its language. `lead` is the language to
    /// decode in (`None`: detect it) and the prompt tokens.
    fn decode(
        &self,
        state: &mut WhisperState,
        audio: &[f32],
        options: &TranscribeOptions,
        lead: (Option<&str>, &[i32]),
        first: bool,
    ) -> anyhow::Result<(Vec<Segment>, String)> {
        let (language, prompt) = lead;
        let temperature = first_temperature(options.temperature);
        // As the reference: beam search at temperature 0, best-of sampling
        // above it; whisper.cpp climbs the fallback ladder from there.
        let mut params = if temperature > 0.0 {
            FullParams::new(SamplingStrategy::Greedy { best_of: 5 })
        } else {
            FullParams::new(SamplingStrategy::BeamSearch {
                beam_size: self.beam_size as i32,
                patience: -1.0,
            })
        };
        params.set_temperature(temperature);
        if !prompt.is_empty() {
            params.set_tokens(prompt);
        }
        params.set_n_threads(self.threads as i32);
        // `None` makes whisper.cpp detect the language.
        params.set_language(language);
        params.set_translate(self.multilingual && options.task == Task::Translate);
        // A state keeps its last call's text as the next call's prompt
        // unless told not to: a job's later chunks read on from its
        // earlier ones (chunks decoded alone read worse on this engine),
        // and a pooled state's text never reaches another job.
        params.set_no_context(first);
        // As the reference does: no sound-effect or speaker-label tokens.
        params.set_suppress_nst(true);
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        // whisper.cpp's own per-token times (from timestamp-token
        // probabilities), grouped into words below.
        params.set_token_timestamps(options.word_timestamps);
        state.full(params, audio).context("whisper.cpp inference")?;
        let language = match language {
            Some(l) => l.to_owned(),
            None => whisper_rs::get_lang_str(state.full_lang_id_from_state())
                .unwrap_or("en")
                .to_owned(),
        };
        let duration = audio.len() as f64 / SAMPLE_RATE;
        let mut segments = Vec::new();
        let mut last_speech = 0.0;
        for segment in state.as_iter() {
            let text = segment.to_str_lossy()?.trim().to_owned();
            if text.is_empty() {
                continue;
            }
            let mut logprob_sum = 0.0f64;
            let mut text_tokens = Vec::new();
            // Text tokens: bytes, (start, end) in seconds, probability.
            let mut timed_tokens = Vec::new();
            for i in 0..segment.n_tokens() {
                if let Some(token) = segment.get_token(i) {
                    if token.token_id() < self.eot {
                        let probability = token.token_probability();
                        logprob_sum += f64::from(probability.max(1e-10)).ln();
                        text_tokens.push(token.token_id() as u32);
                        if options.word_timestamps {
                            let data = token.token_data();
                            timed_tokens.push((
                                token.to_bytes().unwrap_or_default().to_vec(),
                                (data.t0 as f64 / 100.0, data.t1 as f64 / 100.0),
                                probability,
                            ));
                        }
                    }
                }
            }
            // whisper.cpp times are in centiseconds.
            let start = segment.start_timestamp() as f64 / 100.0;
            let end = (segment.end_timestamp() as f64 / 100.0).min(duration);
            let mut segment = Segment {
                start: round_ms(start),
                end: round_ms(end.max(start)),
                text,
                avg_logprob: (!text_tokens.is_empty())
                    .then(|| round_ms(logprob_sum / text_tokens.len() as f64)),
                no_speech_prob: Some(round_ms(f64::from(segment.no_speech_probability()))),
                tokens: text_tokens,
                ..Segment::default()
            };
            if !timed_tokens.is_empty() {
                let mut timed = word_times(&timed_tokens, &language);
                let median = words::tidy(&mut timed);
                words::attach(
                    std::slice::from_mut(&mut segment),
                    &[timed_tokens.len()],
                    timed,
                    0.0,
                    median,
                    &mut last_speech,
                );
            }
            segments.push(segment);
        }
        Ok((segments, language))
    }
}

/// Groups a segment's timed tokens into words: a word spans from its first
/// token's start to its last token's end.
fn word_times(tokens: &[(Vec<u8>, (f64, f64), f32)], language: &str) -> Vec<Timed> {
    let ids: Vec<u32> = (0..tokens.len() as u32).collect();
    let decode = |ids: &[u32]| {
        let bytes: Vec<u8> = ids
            .iter()
            .flat_map(|&i| tokens[i as usize].0.iter().copied())
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    words::split(&ids, language, decode)
        .into_iter()
        .filter_map(|(word, ids)| {
            let first = tokens.get(*ids.first()? as usize)?;
            let last = tokens.get(*ids.last()? as usize)?;
            let probability = ids
                .iter()
                .map(|&i| f64::from(tokens[i as usize].2))
                .sum::<f64>()
                / ids.len() as f64;
            Some(Timed {
                word,
                tokens: ids,
                start: first.1 .0,
                end: last.1 .1.max(first.1 .0),
                probability,
            })
        })
        .collect()
}

impl Engine for WhisperCpp {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// whisper.cpp has no batch entry point: clips run one after another.
    fn transcribe_batch(
        &self,
        audio: &[&[f32]],
        options: &[TranscribeOptions],
    ) -> Vec<anyhow::Result<TranscriptResult>> {
        audio
            .iter()
            .zip(options)
            .map(|(clip, options)| self.run(clip, options))
            .collect()
    }
}
