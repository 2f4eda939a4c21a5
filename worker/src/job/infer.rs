//! Inference for a batch: one engine call for all its jobs (one model) on
//! a blocking thread, voice activity detection first, the renditions of
//! speech translation, and each job's share of the call's time.
//!
//! The renditions are here rather than with the commit because they are
//! more inference (Whisper's translate task, or the translation model),
//! run inside the same blocking call.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use voxq_shared::audio;
use voxq_shared::job::{
    JobKind, Rendition, Segment, TranscriptResult, TranslationResult, VadParams,
};

use super::claimed::{Input, Prepared};
use super::context::Context;
use super::failure::Failure;
use crate::engine::vad::{self, Vad};
use crate::engine::{Engine, Task, TranscribeOptions, TranslateRequest};

/// Runs the engine once for all `jobs` (one model); each job gets its
/// result and its share of the call's processing seconds. The decoded
/// audio moves into the engine call (hours of audio are not copied).
pub(super) async fn infer(
    ctx: &Context,
    jobs: &mut [Prepared],
) -> Vec<(Result<serde_json::Value, Failure>, f64)> {
    let model = jobs[0].message.model.clone();
    let Some(served) = ctx.models.get(&model) else {
        return jobs
            .iter()
            .map(|_| {
                let message = format!("this worker does not serve model {model:?}");
                (Err(Failure::permanent("model_unavailable", message)), 0.0)
            })
            .collect();
    };
    let engine = served.engine.clone();
    let kind = jobs[0].message.kind;
    let audio: f64 = jobs
        .iter()
        .map(|j| match &j.input {
            Input::Audio { samples, .. } => samples.len() as f64 / f64::from(audio::TARGET_RATE),
            Input::Text(_) => 0.0,
        })
        .sum();
    let work: Vec<Work> = jobs.iter_mut().map(Work::of).collect();
    let translators: HashMap<String, Arc<dyn Engine>> = ctx
        .models
        .iter()
        .map(|(name, s)| (name.clone(), s.engine.clone()))
        .collect();
    let started = Instant::now();
    let n = work.len();
    let detection = Detection {
        vad: ctx.vad.clone(),
        auto_above: ctx.vad_auto_seconds,
    };
    // A panic inside an engine fails this call's attempt, not the worker.
    let results = tokio::task::spawn_blocking(move || {
        run_engine(engine.as_ref(), &translators, &detection, work)
    })
    .await
    .unwrap_or_else(|e| {
        (0..n)
            .map(|_| {
                Err(Failure::Transient(anyhow::anyhow!(
                    "inference crashed: {e}"
                )))
            })
            .collect()
    });
    let inference = started.elapsed().as_secs_f64();
    ctx.metrics
        .inference_seconds
        .with_label_values(&[kind.as_str(), &model])
        .observe(inference);
    ctx.metrics
        .batch_jobs
        .with_label_values(&[&model])
        .observe(n as f64);
    if audio > 0.0 {
        ctx.metrics
            .real_time_factor
            .with_label_values(&[&model])
            .observe(inference / audio);
    }
    // Each job pays for the share of the call its input took.
    let sizes: Vec<f64> = jobs.iter().map(|j| j.billed().1.max(1e-3)).collect();
    let total: f64 = sizes.iter().sum();
    results
        .into_iter()
        .zip(sizes)
        .map(|(result, size)| (result, inference * size / total))
        .collect()
}

/// One job's input as the blocking engine call needs it.
struct Work {
    kind: JobKind,
    samples: Vec<f32>,
    text: String,
    options: TranscribeOptions,
    target_language: String,
    target_languages: Vec<String>,
    translation_model: Option<String>,
    alternatives: usize,
    vad: VadParams,
}

/// How a worker finds speech before Whisper runs.
struct Detection {
    vad: Option<Arc<Vad>>,
    auto_above: f64,
}

impl Work {
    fn of(job: &mut Prepared) -> Self {
        let params = &job.message.params;
        let (samples, text) = match &mut job.input {
            Input::Audio { samples, .. } => (std::mem::take(samples), String::new()),
            Input::Text(text) => (Vec::new(), text.clone()),
        };
        Work {
            kind: job.message.kind,
            samples,
            text,
            options: TranscribeOptions {
                language: params.language.clone(),
                task: Task::Transcribe,
                word_timestamps: params.word_timestamps,
                speech: None,
                prompt: params.prompt.clone(),
                temperature: params.temperature.unwrap_or(0.0),
                control: Some(job.control.clone()),
            },
            target_language: params.target_language.clone().unwrap_or_default(),
            target_languages: params.target_languages.clone(),
            translation_model: params.translation_model.clone(),
            alternatives: usize::from(params.alternatives),
            vad: params.vad.clone(),
        }
    }
}

fn run_engine(
    engine: &dyn Engine,
    models: &HashMap<String, Arc<dyn Engine>>,
    detection: &Detection,
    mut work: Vec<Work>,
) -> Vec<Result<serde_json::Value, Failure>> {
    let to_json = |v: Result<serde_json::Value, serde_json::Error>| {
        v.map_err(|e| Failure::Transient(e.into()))
    };
    if work.iter().all(|w| w.kind == JobKind::Translate) {
        let requests: Vec<TranslateRequest> = work
            .iter()
            .map(|w| TranslateRequest {
                text: w.text.clone(),
                source: w.options.language.clone(),
                target: w.target_language.clone(),
                alternatives: w.alternatives,
            })
            .collect();
        let translated = match engine.translate_batch(&requests) {
            Ok(texts) => texts.into_iter().map(Ok).collect(),
            // Alone, one job's bad input fails that job only.
            Err(_) if requests.len() > 1 => requests
                .iter()
                .map(|r| {
                    engine
                        .translate_batch(std::slice::from_ref(r))
                        .and_then(|mut t| t.pop().ok_or_else(|| anyhow::anyhow!("no output")))
                })
                .collect(),
            Err(e) => vec![Err(e)],
        };
        return translated
            .into_iter()
            .zip(&work)
            .map(|(translation, w)| {
                let translation = translation.map_err(Failure::engine)?;
                let (sentences, _) = crate::engine::sentences::split(&w.text);
                to_json(serde_json::to_value(TranslationResult {
                    text: translation.text,
                    target_language: w.target_language.clone(),
                    sentences: sentences.len(),
                    alternatives: translation.alternatives,
                }))
            })
            .collect();
    }
    // Speech detection first; a job it fails for sits out the batch.
    let mut results: Vec<Option<Result<serde_json::Value, Failure>>> =
        work.iter().map(|_| None).collect();
    for (w, result) in work.iter_mut().zip(&mut results) {
        let vad = detection.vad.as_deref();
        match vad::detect(vad, &w.samples, &w.vad, detection.auto_above) {
            Ok(speech) => w.options.speech = speech,
            Err(e) => *result = Some(Err(Failure::engine(e))),
        }
    }
    let ready: Vec<usize> = (0..work.len()).filter(|&i| results[i].is_none()).collect();
    let clips: Vec<&[f32]> = ready.iter().map(|&i| work[i].samples.as_slice()).collect();
    let options: Vec<TranscribeOptions> = ready.iter().map(|&i| work[i].options.clone()).collect();
    let transcripts = if ready.is_empty() {
        Vec::new()
    } else {
        engine.transcribe_batch(&clips, &options)
    };
    for (&i, transcript) in ready.iter().zip(transcripts) {
        results[i] = Some(finish_transcript(engine, models, &work[i], transcript));
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Failure::Transient(anyhow::anyhow!("no result")))))
        .collect()
}

/// A transcript as the job's result: with its renditions for speech
/// translation.
fn finish_transcript(
    engine: &dyn Engine,
    models: &HashMap<String, Arc<dyn Engine>>,
    w: &Work,
    transcript: anyhow::Result<TranscriptResult>,
) -> Result<serde_json::Value, Failure> {
    let mut transcript = transcript.map_err(Failure::engine)?;
    if w.kind == JobKind::SpeechTranslate {
        for target in &w.target_languages {
            let rendition = render(engine, models, w, &transcript, target)?;
            transcript.translations.insert(target.clone(), rendition);
        }
    }
    serde_json::to_value(transcript).map_err(|e| Failure::Transient(e.into()))
}

/// The transcript in `target`: itself if already in it, Whisper's own
/// translate task for English, else the transcript's segments through the
/// translation model (keeping the source timings).
fn render(
    whisper: &dyn Engine,
    models: &HashMap<String, Arc<dyn Engine>>,
    work: &Work,
    transcript: &TranscriptResult,
    target: &str,
) -> Result<Rendition, Failure> {
    if target == transcript.language {
        return Ok(Rendition {
            text: transcript.text.clone(),
            segments: transcript.segments.clone(),
        });
    }
    if target == "en" && whisper.info().languages.len() > 1 {
        let options = TranscribeOptions {
            language: Some(transcript.language.clone()),
            task: Task::Translate,
            word_timestamps: false,
            speech: work.options.speech.clone(),
            // The rendition reads the audio as the transcript did.
            prompt: work.options.prompt.clone(),
            temperature: work.options.temperature,
            control: work.options.control.clone(),
        };
        let english = whisper
            .transcribe(&work.samples, &options)
            .map_err(Failure::engine)?;
        return Ok(Rendition {
            text: english.text,
            segments: english.segments,
        });
    }
    let name = work.translation_model.as_deref().unwrap_or("");
    let translator = models.get(name).ok_or_else(|| {
        Failure::permanent(
            "model_unavailable",
            format!("this worker does not serve the translation model {name:?}"),
        )
    })?;
    let requests: Vec<TranslateRequest> = transcript
        .segments
        .iter()
        .map(|s| TranslateRequest {
            text: s.text.clone(),
            source: Some(transcript.language.clone()),
            target: target.to_owned(),
            alternatives: 0,
        })
        .collect();
    let texts = if requests.is_empty() {
        Vec::new()
    } else {
        translator
            .translate_batch(&requests)
            .map_err(Failure::engine)?
    };
    let segments: Vec<Segment> = transcript
        .segments
        .iter()
        .zip(texts)
        .map(|(source, translation)| Segment {
            start: source.start,
            end: source.end,
            text: translation.text,
            ..Segment::default()
        })
        .collect();
    Ok(Rendition {
        text: crate::engine::join_text(&segments),
        segments,
    })
}
