use std::time::Instant;

use anyhow::Context as _;
use clap::Parser;
use voxq_shared::job::JobKind;
use voxq_worker::config::{Command, WorkerConfig};
use voxq_worker::engine::{Task, TranscribeOptions, TranslateRequest};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = WorkerConfig::parse();
    voxq_shared::telemetry::init(&config.common.log);
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
        }) => {
            // The first model (of the file, or the flags' one).
            let name = config
                .model_specs()?
                .into_iter()
                .map(|s| s.name)
                .find(|n| models.served.contains_key(n))
                .context("no model loaded")?;
            let engine = models.served[&name].engine.clone();
            tokio::task::spawn_blocking(move || {
                let bytes = std::fs::read(&file)?;
                let audio = voxq_shared::audio::decode_to_mono_16k(bytes.into())?;
                let options = TranscribeOptions {
                    language,
                    task: if translate {
                        Task::Translate
                    } else {
                        Task::Transcribe
                    },
                    word_timestamps: words,
                };
                let clips = vec![audio.as_slice(); batch.max(1)];
                let all_options = vec![options; clips.len()];
                let run = || -> anyhow::Result<_> {
                    let mut results = engine.transcribe_batch(&clips, &all_options);
                    results.truncate(1);
                    results.pop().context("no result")?
                };
                let mut result = run()?;
                let mut times = Vec::new();
                for _ in 0..runs {
                    let started = Instant::now();
                    result = run()?;
                    times.push(started.elapsed().as_secs_f64());
                }
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
            let name = config
                .model_specs()?
                .into_iter()
                .map(|s| s.name)
                .find(|n| {
                    models
                        .served
                        .get(n)
                        .is_some_and(|s| s.engine.info().kinds.contains(&JobKind::Translate))
                })
                .context("no translation model loaded")?;
            let engine = models.served[&name].engine.clone();
            tokio::task::spawn_blocking(move || {
                let request = TranslateRequest {
                    text: std::fs::read_to_string(&file)?,
                    source: from,
                    target: to,
                };
                let run = || -> anyhow::Result<String> {
                    engine
                        .translate_batch(std::slice::from_ref(&request))?
                        .pop()
                        .context("no result")
                };
                let mut text = run()?;
                let mut times = Vec::new();
                for _ in 0..runs {
                    let started = Instant::now();
                    text = run()?;
                    times.push(started.elapsed().as_secs_f64());
                }
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
