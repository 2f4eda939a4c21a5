use std::time::Instant;

use clap::Parser;
use voxq_worker::config::{Command, WorkerConfig};
use voxq_worker::engine::TranscribeOptions;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = WorkerConfig::parse();
    voxq_shared::telemetry::init(&config.common.log);
    let model = config.model.clone();
    // Loading reads hundreds of megabytes: keep it off the executor.
    let engine = tokio::task::spawn_blocking(move || voxq_worker::load_engine(&model)).await??;
    match config.command.clone() {
        None | Some(Command::Run) => {
            voxq_worker::run(config, engine, voxq_shared::shutdown::signal()).await
        }
        Some(Command::Transcribe {
            file,
            language,
            runs,
        }) => {
            tokio::task::spawn_blocking(move || {
                let bytes = std::fs::read(&file)?;
                let audio = voxq_shared::audio::decode_to_mono_16k(bytes.into())?;
                let options = TranscribeOptions { language };
                let mut result = engine.transcribe(&audio, &options)?;
                let mut times = Vec::new();
                for _ in 0..runs {
                    let started = Instant::now();
                    result = engine.transcribe(&audio, &options)?;
                    times.push(started.elapsed().as_secs_f64());
                }
                println!(
                    "{}",
                    serde_json::json!({ "result": result, "seconds": times })
                );
                Ok(())
            })
            .await?
        }
    }
}
