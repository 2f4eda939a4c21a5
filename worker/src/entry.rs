//! What the `voxq-worker` binary runs: settings, logging and the CPU
//! backend, then the worker until a signal, or a benchmark command.
//!
//! In the library rather than in `main.rs`: release builds do not share
//! generic code between crates, so whatever the binary's crate instantiates
//! (clap's parser, the runtime's `block_on`, the worker's futures) is
//! compiled a second time there, after the library, on every rebuild. Here
//! it is compiled once: a change in `worker/` rebuilt in 70 s with the
//! body in `main.rs` (40 s the library, 30 s the binary), 56 to 64 s with
//! it here (two cores; see also the worker's `codegen-units` in the
//! workspace's Cargo.toml).

use clap::Parser;
use voxq_shared::telemetry::Output;

use crate::config::{Command, WorkerConfig};
use crate::{bench, Worker};

/// The binary's whole `main`.
pub fn main() -> anyhow::Result<()> {
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
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            voxq_shared::telemetry::init_to(&filter, output);
            whisper_rs::install_logging_hooks();
            // Before anything else: it may start the process over.
            crate::cpu_backend::choose()?;
            match config.command.clone() {
                None | Some(Command::Run) => {
                    let worker = Worker::build(config).await?;
                    worker.run(voxq_shared::shutdown::signal()).await
                }
                Some(Command::Transcribe(args)) => bench::transcribe(&config, args).await,
                Some(Command::Translate(args)) => bench::translate(&config, args).await,
            }
        })
}
