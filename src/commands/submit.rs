//! `voxq submit`: one file, one job, its JSON printed: the scripting
//! primitive under `voxq transcribe` (the benchmarks use it).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::client::Client;
use crate::error::Result;

#[derive(Args, Debug)]
pub struct SubmitArgs {
    /// WAV, MP3, FLAC or Ogg Vorbis file.
    pub file: PathBuf,
    /// ISO 639-1 code of the spoken language.
    #[arg(long)]
    pub language: Option<String>,
    /// Wait for the job to end and print it (otherwise the 202 answer).
    #[arg(long)]
    pub wait: bool,
    /// Seconds to wait with --wait.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
}

pub async fn run(client: &Client, args: SubmitArgs) -> Result<()> {
    let fields: Vec<(&'static str, String)> = args
        .language
        .iter()
        .map(|language| ("language", language.clone()))
        .collect();
    let submitted = client.submit_file(&args.file, &fields, None).await?;
    if args.wait {
        let done = client
            .wait_for_end(submitted.id, Duration::from_secs(args.timeout))
            .await?;
        crate::output::json(&done);
    } else {
        crate::output::json(&submitted.answer);
    }
    Ok(())
}
