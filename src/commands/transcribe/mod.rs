//! `voxq transcribe`: files, folders and patterns to transcripts on
//! disk, several files at a time, resumable. The steps are one file
//! each: [`discover`] the audio, [`outputs`] (formats, places, skipping
//! what is done), [`fingerprint`] (idempotency keys), [`report`]
//! (progress).

pub mod discover;
pub mod fingerprint;
pub mod outputs;
pub mod report;

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use futures::StreamExt;
use serde::Serialize;
use uuid::Uuid;
use voxq_shared::job::JobStatus;

use crate::client::Client;
use crate::error::{Error, Result};
use outputs::{Format, Plan};
use report::Reporter;

/// Most submissions of one file and options: each generation after the
/// first replaces a job that ended without success (see
/// [`fingerprint::key`]).
const MAX_GENERATIONS: u32 = 5;

#[derive(Args, Debug)]
#[command(after_long_help = TRANSCRIBE_HELP)]
pub struct TranscribeArgs {
    /// Audio files, folders (searched recursively for .wav, .mp3, .flac,
    /// .ogg and .oga files) and glob patterns such as 'calls/**/*.mp3'
    /// (expanded by voxq, so they work quoted too). A file named on its own
    /// is sent whatever its extension.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,

    /// Output formats: repeat the flag or separate them with commas.
    #[arg(
        short,
        long = "format",
        value_enum,
        value_delimiter = ',',
        default_value = "txt",
        value_name = "FORMAT"
    )]
    pub formats: Vec<Format>,

    /// Write outputs under DIR instead of beside each audio file,
    /// mirroring its path below the folder or pattern it was found
    /// through (calls/a/b.wav, found through calls, → DIR/a/b.txt).
    #[arg(short, long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Files submitted and waited for at once.
    #[arg(
        short = 'j',
        long,
        default_value_t = 4,
        value_parser = clap::value_parser!(u16).range(1..=64)
    )]
    pub concurrency: u16,

    /// Submit and exit without waiting: print each file's job id and path
    /// (tab-separated) on stdout, write no outputs. Running the same
    /// command later without --no-wait picks up these jobs, paying for
    /// none twice.
    #[arg(long)]
    pub no_wait: bool,

    /// Transcribe files whose outputs are already there, too.
    #[arg(long)]
    pub force: bool,

    /// Also search hidden files and folders (names starting with a dot).
    #[arg(long)]
    pub hidden: bool,

    /// Longest wait for one job to end, in seconds.
    #[arg(long, default_value_t = 3600, value_name = "SECONDS")]
    pub timeout: u64,

    // Last, since its heading applies to whatever follows it.
    #[command(flatten)]
    pub job: JobOptions,
}

const TRANSCRIBE_HELP: &str = "\
Resuming: a file is skipped when every output it would get exists and is
no older than the audio (outputs are written whole, so one that exists is
complete). Each submission carries an Idempotency-Key made from the
audio's bytes and the options above that shape the result (not --format,
--out or the file's name), so running an interrupted command again is
answered with the jobs it already submitted rather than new ones. A job
that failed or was cancelled is submitted anew by the next run.

Each file's outcome is printed on stderr as it ends (with a progress bar
on a terminal); a file that fails does not stop the others. Exit status:
0 when every file was transcribed or skipped, 1 when any failed, 2 for
bad arguments or settings.

Examples:
  voxq transcribe meeting.mp3
  voxq transcribe calls/ --format srt,vtt --out transcripts/ --language en
  voxq transcribe 'archive/**/*.flac' -j 8 --no-wait   # submit now
  voxq transcribe 'archive/**/*.flac' -j 8             # collect later";

/// The options that shape a job's result: sent with each file, and part
/// of its idempotency key. Serialised in field order for the key, so a
/// field is only ever added at the end.
#[derive(Args, Debug, Clone, Serialize)]
#[command(next_help_heading = "Job options")]
pub struct JobOptions {
    /// A model from GET /v1/models [default: the API's for transcription].
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// ISO 639-1 code of the spoken language (en, de, …); detected per
    /// file when absent.
    #[arg(long, value_name = "CODE")]
    pub language: Option<String>,
    /// Time every word too (the json format's segments carry `words`).
    #[arg(long)]
    pub word_timestamps: bool,
    /// Text the first window is conditioned on (names, spellings, style):
    /// Whisper's initial prompt, at most 1000 characters.
    #[arg(long, value_name = "TEXT")]
    pub prompt: Option<String>,
    /// First decoding temperature, 0 to 1 [default: 0, beam search].
    #[arg(long, value_name = "T", value_parser = parse_temperature)]
    pub temperature: Option<f32>,
    /// Voice activity detection: on hears only the speech it finds, off
    /// the whole audio [default: the server's, on for audio over 30 s].
    #[arg(long, value_name = "on|off", value_parser = parse_on_off)]
    pub vad: Option<bool>,
}

impl JobOptions {
    /// The multipart fields of `POST /v1/jobs`.
    pub fn form_fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = Vec::new();
        if let Some(model) = &self.model {
            fields.push(("model", model.clone()));
        }
        if let Some(language) = &self.language {
            fields.push(("language", language.clone()));
        }
        if self.word_timestamps {
            fields.push(("timestamp_granularities", "word".to_owned()));
        }
        if let Some(prompt) = &self.prompt {
            fields.push(("prompt", prompt.clone()));
        }
        if let Some(temperature) = self.temperature {
            fields.push(("temperature", temperature.to_string()));
        }
        if let Some(vad) = self.vad {
            fields.push(("vad", vad.to_string()));
        }
        fields
    }
}

fn parse_temperature(value: &str) -> std::result::Result<f32, String> {
    match value.parse::<f32>() {
        Ok(t) if (0.0..=1.0).contains(&t) => Ok(t),
        _ => Err("a number from 0 to 1".into()),
    }
}

fn parse_on_off(value: &str) -> std::result::Result<bool, String> {
    match value {
        "on" | "true" => Ok(true),
        "off" | "false" => Ok(false),
        _ => Err("on or off".into()),
    }
}

/// How one file ended.
enum Outcome {
    Written {
        job: Uuid,
        earlier: bool,
        outputs: Vec<PathBuf>,
    },
    Submitted {
        job: Uuid,
        earlier: bool,
    },
    Failed(String),
}

pub async fn run(client: &Client, mut args: TranscribeArgs) -> Result<()> {
    let mut seen = Vec::new();
    args.formats.retain(|f| {
        let new = !seen.contains(f);
        seen.push(*f);
        new
    });
    let found = discover::discover(&args.paths, args.hidden);
    let plans: Vec<Plan> = found
        .inputs
        .into_iter()
        .map(|input| Plan::new(input, &args.formats, args.out.as_deref()))
        .collect();
    let clashes = outputs::collisions(&plans);
    if !clashes.is_empty() {
        let list: Vec<String> = clashes.iter().map(|p| p.display().to_string()).collect();
        return Err(Error::Config(format!(
            "several files would write the same output (rename one, or transcribe them \
             separately): {}",
            list.join(", ")
        )));
    }
    for note in &found.notes {
        eprintln!("note: {note}");
    }
    let (done, todo): (Vec<Plan>, Vec<Plan>) = plans
        .into_iter()
        .partition(|plan| !args.force && plan.is_done());
    let total = done.len() + todo.len() + found.problems.len();
    let reporter = Reporter::new(todo.len());
    let mut failed = found.problems.len();
    for problem in &found.problems {
        reporter.line(&format!("failed    {problem}"), false);
    }
    for plan in &done {
        reporter.line(
            &format!("skipped   {} (outputs exist)", plan.input.path.display()),
            false,
        );
    }
    let fields = args.job.form_fields();
    let options = serde_json::to_value(&args.job).map_err(|e| Error::Protocol(e.to_string()))?;
    let settings = Settings {
        fields: &fields,
        options: &options,
        wait: (!args.no_wait).then(|| Duration::from_secs(args.timeout)),
    };
    let settings = &settings;
    let mut results = futures::stream::iter(todo.iter())
        .map(|plan| async move {
            let outcome = process(client, plan, settings)
                .await
                .unwrap_or_else(|e| Outcome::Failed(e.chain()));
            (plan, outcome)
        })
        .buffer_unordered(usize::from(args.concurrency));
    let mut succeeded = 0;
    while let Some((plan, outcome)) = results.next().await {
        let path = plan.input.path.display();
        match outcome {
            Outcome::Written {
                job,
                earlier,
                outputs,
            } => {
                succeeded += 1;
                let names: Vec<String> = outputs.iter().map(|p| p.display().to_string()).collect();
                reporter.line(
                    &format!(
                        "done      {path} → {} (job {job}{})",
                        names.join(", "),
                        earlier_note(earlier)
                    ),
                    true,
                );
            }
            Outcome::Submitted { job, earlier } => {
                succeeded += 1;
                println!("{job}\t{path}");
                reporter.line(
                    &format!("submitted {path} (job {job}{})", earlier_note(earlier)),
                    true,
                );
            }
            Outcome::Failed(why) => {
                failed += 1;
                reporter.status(format!("{failed} failed"));
                reporter.line(&format!("failed    {path}: {why}"), true);
            }
        }
    }
    reporter.finish();
    eprintln!(
        "{succeeded} {}, {} skipped, {failed} failed",
        if args.no_wait {
            "submitted"
        } else {
            "transcribed"
        },
        done.len(),
    );
    if failed > 0 {
        return Err(Error::Partial { failed, total });
    }
    Ok(())
}

fn earlier_note(earlier: bool) -> &'static str {
    if earlier {
        ", submitted earlier"
    } else {
        ""
    }
}

/// What every file of a run is sent with.
struct Settings<'a> {
    fields: &'a [(&'static str, String)],
    options: &'a serde_json::Value,
    /// `None` with --no-wait.
    wait: Option<Duration>,
}

async fn process(client: &Client, plan: &Plan, settings: &Settings<'_>) -> Result<Outcome> {
    let path = plan.input.path.clone();
    let options = settings.options.clone();
    // Reading and hashing a large file is blocking work.
    let digest = tokio::task::spawn_blocking(move || fingerprint::digest(&path, &options))
        .await
        .map_err(|e| Error::Other(e.into()))??;
    let (job, earlier) = submit(client, plan, settings, &digest).await?;
    let Some(timeout) = settings.wait else {
        return Ok(Outcome::Submitted { job, earlier });
    };
    let view = client.wait_for_end(job, timeout).await?;
    match (view.status, view.result) {
        (JobStatus::Succeeded, Some(result)) => {
            let plan = plan.clone();
            tokio::task::spawn_blocking(move || {
                plan.write(&result)?;
                Ok(Outcome::Written {
                    job,
                    earlier,
                    outputs: plan.outputs.into_iter().map(|(_, path)| path).collect(),
                })
            })
            .await
            .map_err(|e| Error::Other(e.into()))?
        }
        (JobStatus::Succeeded, None) => Ok(Outcome::Failed(format!(
            "job {job} succeeded but its result was deleted; run again to submit it anew"
        ))),
        (status, _) => {
            let why = view
                .error
                .map(|e| format!("{} ({})", e.message, e.code))
                .unwrap_or_else(|| status.as_str().to_owned());
            Ok(Outcome::Failed(format!(
                "job {job} {}: {why}",
                status.as_str()
            )))
        }
    }
}

/// Submits under the file's key, moving to the next generation's key
/// while the API replays a job that can no longer give a transcript.
/// Returns the job and whether it was submitted by an earlier run.
async fn submit(
    client: &Client,
    plan: &Plan,
    settings: &Settings<'_>,
    digest: &[u8; 32],
) -> Result<(Uuid, bool)> {
    for generation in 1..=MAX_GENERATIONS {
        let key = fingerprint::key(digest, generation);
        let submitted = client
            .submit_file(&plan.input.path, settings.fields, Some(&key))
            .await?;
        if !submitted.replayed {
            return Ok((submitted.id, false));
        }
        let job = client.job(submitted.id).await?;
        let spent = matches!(job.status, JobStatus::Failed | JobStatus::Cancelled)
            || job.data_deleted_at.is_some();
        if !spent {
            return Ok((submitted.id, true));
        }
    }
    Err(Error::Config(format!(
        "{} was submitted {MAX_GENERATIONS} times with these options and never succeeded",
        plan.input.path.display()
    )))
}
