//! The benchmark commands (`voxq-worker transcribe`, `voxq-worker
//! translate`): one local file through the first suitable configured
//! model, the result and the timings printed as JSON on stdout.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use voxq_shared::job::{JobKind, VadParams};

use crate::config::{TranscribeArgs, TranslateArgs, WorkerConfig};
use crate::engine::{vad, Engine, Task, TranscribeOptions, TranslateRequest};
use crate::models::{load_models, Models};

/// Transcribes `args.file` with the first model (of the models file, or
/// the flags' one), voice activity detection included as in a worker.
pub async fn transcribe(config: &WorkerConfig, args: TranscribeArgs) -> anyhow::Result<()> {
    let TranscribeArgs {
        file,
        language,
        translate,
        words,
        runs,
        batch,
        vad,
        prompt,
        temperature,
    } = args;
    let models = load_models(config).await?;
    let (name, engine) = first_model(config, &models, |_| true)?;
    let vad_model = models.vad.clone();
    let auto_above = config.vad_auto_seconds;
    let max_seconds = config.max_audio_seconds;
    tokio::task::spawn_blocking(move || {
        let bytes = std::fs::read(&file)?;
        let audio = voxq_shared::audio::decode_to_mono_16k(bytes.into(), max_seconds)?;
        let vad_params = VadParams {
            enabled: vad,
            ..VadParams::default()
        };
        let options = TranscribeOptions {
            language,
            task: if translate {
                Task::Translate
            } else {
                Task::Transcribe
            },
            word_timestamps: words,
            prompt,
            temperature,
            ..TranscribeOptions::default()
        };
        let clips = vec![audio.as_slice(); batch.max(1)];
        let (result, times) = timed(runs, || {
            // Detection is part of the job's time, as in a worker.
            let speech = vad::detect(vad_model.as_deref(), &audio, &vad_params, auto_above)?;
            let options = TranscribeOptions {
                speech,
                ..options.clone()
            };
            let all_options = vec![options; clips.len()];
            let mut results = engine.transcribe_batch(&clips, &all_options);
            results.truncate(1);
            results.pop().context("no result")?
        })?;
        println!(
            "{}",
            serde_json::json!({ "model": name, "result": result, "seconds": times })
        );
        Ok(())
    })
    .await?
}

/// Translates the text of `args.file` with the first translation model.
pub async fn translate(config: &WorkerConfig, args: TranslateArgs) -> anyhow::Result<()> {
    let TranslateArgs {
        file,
        to,
        from,
        runs,
        alternatives,
    } = args;
    let models = load_models(config).await?;
    let (name, engine) = first_model(config, &models, |engine| {
        engine.info().kinds.contains(&JobKind::Translate)
    })?;
    tokio::task::spawn_blocking(move || {
        let request = TranslateRequest {
            text: std::fs::read_to_string(&file)?,
            source: from,
            target: to,
            alternatives,
        };
        let (translation, times) = timed(runs, || {
            engine
                .translate_batch(std::slice::from_ref(&request))?
                .pop()
                .context("no result")
        })?;
        println!(
            "{}",
            serde_json::json!({
                "model": name,
                "text": translation.text,
                "alternatives": translation.alternatives,
                "seconds": times,
            })
        );
        Ok(())
    })
    .await?
}

/// The first model of the configuration that loaded and that `wanted`
/// accepts.
fn first_model(
    config: &WorkerConfig,
    models: &Models,
    wanted: impl Fn(&dyn Engine) -> bool,
) -> anyhow::Result<(String, Arc<dyn Engine>)> {
    config
        .model_specs()?
        .into_iter()
        .find_map(|spec| {
            let served = models.served.get(&spec.name)?;
            wanted(served.engine.as_ref()).then(|| (spec.name, served.engine.clone()))
        })
        .context("no suitable model loaded")
}

/// One warm-up run, then `runs` timed ones: the last output and the
/// seconds of each timed run.
fn timed<T>(
    runs: usize,
    mut run: impl FnMut() -> anyhow::Result<T>,
) -> anyhow::Result<(T, Vec<f64>)> {
    let mut output = run()?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        output = run()?;
        times.push(started.elapsed().as_secs_f64());
    }
    Ok((output, times))
}
