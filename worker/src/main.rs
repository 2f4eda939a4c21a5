//! The `voxq-worker` binary: settings, logging and the CPU backend, then
//! the worker until a signal, or a benchmark command.

use clap::Parser;
use voxq_shared::telemetry::Output;
use voxq_worker::config::{Command, WorkerConfig};
use voxq_worker::{bench, Worker};

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
        None | Some(Command::Run) => Output::Stdout,
        Some(_) => Output::Stderr,
    };
    voxq_shared::telemetry::init_to(&filter, output);
    whisper_rs::install_logging_hooks();
    // Before anything else: it may start the process over.
    voxq_worker::cpu_backend::choose()?;
    match config.command.clone() {
        None | Some(Command::Run) => {
            let worker = Worker::build(config).await?;
            worker.run(voxq_shared::shutdown::signal()).await
        }
        Some(Command::Transcribe(args)) => bench::transcribe(&config, args).await,
        Some(Command::Translate(args)) => bench::translate(&config, args).await,
    }
}
