//! Whisper on whisper.cpp (ggml model files) through whisper-rs.
//!
//! whisper.cpp runs the reference long-form algorithm itself (seeking,
//! previous-text conditioning, temperature fallback); this engine maps its
//! segments to voxq's result shape. Decoding states are pooled: a state
//! holds the key/value caches (tens of MiB) and one is needed per call in
//! flight.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use anyhow::{anyhow, Context};
use voxq_shared::job::{Segment, TranscriptResult};
use voxq_shared::models::ModelInfo;
use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState,
};

use super::{join_text, round_ms, whisper_info, Engine, Task, TranscribeOptions};

const SAMPLE_RATE: f64 = 16_000.0;

pub struct WhisperCppConfig<'a> {
    pub name: &'a str,
    pub path: &'a Path,
    pub gpu: bool,
    pub threads: usize,
    pub beam_size: usize,
    pub default: bool,
}

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
    pub fn load(config: WhisperCppConfig<'_>) -> anyhow::Result<Self> {
        let path = config
            .path
            .to_str()
            .ok_or_else(|| anyhow!("model path is not UTF-8"))?;
        let params = WhisperContextParameters {
            use_gpu: config.gpu,
            ..WhisperContextParameters::default()
        };
        let context = WhisperContext::new_with_params(path, params)
            .with_context(|| format!("loading ggml Whisper model {path}"))?;
        let multilingual = context.is_multilingual();
        Ok(Self {
            info: whisper_info(config.name, "whisper-cpp", multilingual, config.default),
            eot: context.token_eot(),
            context,
            states: Mutex::new(Vec::new()),
            threads: config.threads.max(1),
            beam_size: config.beam_size.max(1),
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
        let language = if self.multilingual {
            options.language.as_deref()
        } else {
            Some("en")
        };
        let mut params = FullParams::new(SamplingStrategy::BeamSearch {
            beam_size: self.beam_size as i32,
            patience: -1.0,
        });
        params.set_n_threads(self.threads as i32);
        // `None` makes whisper.cpp detect the language.
        params.set_language(language);
        params.set_translate(self.multilingual && options.task == Task::Translate);
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        state.full(params, audio).context("whisper.cpp inference")?;
        let language = match language {
            Some(l) => l.to_owned(),
            None => whisper_rs::get_lang_str(state.full_lang_id_from_state())
                .unwrap_or("en")
                .to_owned(),
        };
        let duration = audio.len() as f64 / SAMPLE_RATE;
        let mut segments = Vec::new();
        for segment in state.as_iter() {
            let text = segment.to_str_lossy()?.trim().to_owned();
            if text.is_empty() {
                continue;
            }
            let (mut logprob_sum, mut tokens) = (0.0f64, 0usize);
            for i in 0..segment.n_tokens() {
                if let Some(token) = segment.get_token(i) {
                    if token.token_id() < self.eot {
                        logprob_sum += f64::from(token.token_probability().max(1e-10)).ln();
                        tokens += 1;
                    }
                }
            }
            // whisper.cpp times are in centiseconds.
            let start = segment.start_timestamp() as f64 / 100.0;
            let end = (segment.end_timestamp() as f64 / 100.0).min(duration);
            segments.push(Segment {
                start: round_ms(start),
                end: round_ms(end.max(start)),
                text,
                avg_logprob: (tokens > 0).then(|| round_ms(logprob_sum / tokens as f64)),
                no_speech_prob: Some(round_ms(f64::from(segment.no_speech_probability()))),
                ..Segment::default()
            });
        }
        if let Ok(mut pool) = self.states.lock() {
            pool.push(state);
        }
        let text = join_text(&segments);
        Ok(TranscriptResult {
            text,
            segments,
            language,
            language_probability: None,
            duration: round_ms(duration),
            translations: BTreeMap::new(),
        })
    }
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
