use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use clap::Parser;
use voxq_shared::job::{JobKind, VadParams};
use voxq_worker::config::{Command, WorkerConfig};
use voxq_worker::engine::{vad, Engine, Task, TranscribeOptions, TranslateRequest};
use voxq_worker::Models;

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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = WorkerConfig::parse();
    // whisper.cpp logs every model load and VAD call at info level: only
    // its warnings, unless the filter names it.
    let log = &config.common.log;
    let filter = if log.contains("whisper_rs") {
        log.clone()
    } else {
        format!("{log},whisper_rs=warn")
    };
    // The benchmark commands print their result on stdout.
    let output = match config.command {
        None | Some(Command::Run) => voxq_shared::telemetry::Output::Stdout,
        Some(_) => voxq_shared::telemetry::Output::Stderr,
    };
    voxq_shared::telemetry::init_to(&filter, output);
    whisper_rs::install_logging_hooks();
    voxq_worker::cpu_backend::choose()?;
    let models = voxq_worker::load_models(&config).await?;
    match config.command.clone() {
        None | Some(Command::Run) => {
            voxq_worker::run(config, models, voxq_shared::shutdown::signal()).await
        }
        Some(Command::Transcribe {
            file,
            language,
            translate,
            words,
            runs,
            batch,
            vad,
        }) => {
            // The first model (of the file, or the flags' one).
            let (name, engine) = first_model(&config, &models, |_| true)?;
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
                    speech: None,
                    control: None,
                };
                let clips = vec![audio.as_slice(); batch.max(1)];
                let (result, times) = timed(runs, || {
                    // Detection is part of the job's time, as in a worker.
                    let speech =
                        vad::detect(vad_model.as_deref(), &audio, &vad_params, auto_above)?;
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
        Some(Command::Translate {
            file,
            to,
            from,
            runs,
        }) => {
            let (name, engine) = first_model(&config, &models, |engine| {
                engine.info().kinds.contains(&JobKind::Translate)
            })?;
            tokio::task::spawn_blocking(move || {
                let request = TranslateRequest {
                    text: std::fs::read_to_string(&file)?,
                    source: from,
                    target: to,
                };
                let (text, times) = timed(runs, || {
                    engine
                        .translate_batch(std::slice::from_ref(&request))?
                        .pop()
                        .context("no result")
                })?;
                println!(
                    "{}",
                    serde_json::json!({ "model": name, "text": text, "seconds": times })
                );
                Ok(())
            })
            .await?
        }
    }
}
