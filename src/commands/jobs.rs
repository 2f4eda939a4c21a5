//! `voxq jobs …`: list the caller's jobs, show one, follow one's events,
//! cancel one.

use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use futures::StreamExt;
use serde_json::Value;
use uuid::Uuid;
use voxq_shared::job::{JobStatus, JobSummary};

use crate::client::{sse, Client};
use crate::error::{Error, Result};
use crate::output::{self, Table};

#[derive(Subcommand, Debug)]
pub enum JobsCommand {
    /// List your jobs, newest first (a page of --limit; --all for every one).
    List(ListArgs),
    /// Show a job: its status and result as JSON, or its transcript as
    /// text or subtitles.
    Get(GetArgs),
    /// Follow a job's events (status changes, progress) until it ends.
    /// Exits 0 if it succeeded, 1 if it failed or was cancelled.
    Watch(WatchArgs),
    /// Cancel a queued or running job: it is never billed, and its reserved
    /// quota is released. Cancelling a cancelled job is fine.
    Cancel(CancelArgs),
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only jobs in this status.
    #[arg(long, value_enum)]
    pub status: Option<StatusArg>,
    /// Jobs per page, 1 to 100.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub limit: u32,
    /// Only jobs older than this one: the cursor a previous page printed.
    #[arg(long, value_name = "JOB_ID")]
    pub before: Option<Uuid>,
    /// Every page, not just the first.
    #[arg(long)]
    pub all: bool,
    /// Print the API's JSON (`{"jobs": [...], "next_before": …}`).
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum StatusArg {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl From<StatusArg> for JobStatus {
    fn from(status: StatusArg) -> Self {
        match status {
            StatusArg::Queued => JobStatus::Queued,
            StatusArg::Running => JobStatus::Running,
            StatusArg::Succeeded => JobStatus::Succeeded,
            StatusArg::Failed => JobStatus::Failed,
            StatusArg::Cancelled => JobStatus::Cancelled,
        }
    }
}

#[derive(Args, Debug)]
pub struct GetArgs {
    pub id: Uuid,
    /// json (the job), verbose_json (the result alone), text, srt or vtt.
    #[arg(long, default_value = "json", value_parser = ["json", "verbose_json", "text", "srt", "vtt"])]
    pub format: String,
    /// Wait (long-polling) for the job to end first.
    #[arg(long)]
    pub wait: bool,
    /// Longest wait with --wait, in seconds.
    #[arg(long, default_value_t = 3600, value_name = "SECONDS")]
    pub timeout: u64,
}

#[derive(Args, Debug)]
pub struct WatchArgs {
    pub id: Uuid,
    /// Print each event's JSON data (`{"id", "status", "progress"}`) as a line.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct CancelArgs {
    pub id: Uuid,
    /// Print the cancelled job's JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(client: &Client, command: JobsCommand) -> Result<()> {
    match command {
        JobsCommand::List(args) => list(client, args).await,
        JobsCommand::Get(args) => get(client, args).await,
        JobsCommand::Watch(args) => watch(client, args).await,
        JobsCommand::Cancel(args) => {
            let job = client.cancel_job(args.id).await?;
            if args.json {
                output::json(&job);
            } else {
                println!("{} {}", job.id, job.status.as_str());
            }
            Ok(())
        }
    }
}

async fn list(client: &Client, args: ListArgs) -> Result<()> {
    let status = args.status.map(JobStatus::from);
    let mut jobs: Vec<JobSummary> = Vec::new();
    let mut before = args.before;
    let next = loop {
        let page = client.list_jobs(status, before, args.limit).await?;
        if args.json && !args.all {
            output::json(&page);
            return Ok(());
        }
        jobs.extend(page.jobs);
        match page.next_before {
            Some(next) if args.all => before = Some(next),
            next => break next,
        }
    };
    if args.json {
        output::json(&serde_json::json!({ "jobs": jobs }));
        return Ok(());
    }
    let mut table = Table::new(["ID", "STATUS", "KIND", "MODEL", "CREATED", "FINISHED"]);
    for job in &jobs {
        table.row(vec![
            job.id.to_string(),
            job.status.as_str().to_owned(),
            job.kind.as_str().to_owned(),
            job.params.model.clone().unwrap_or_else(|| "-".into()),
            output::time(&job.created_at),
            job.finished_at
                .as_ref()
                .map(output::time)
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    table.print();
    if let Some(next) = next {
        eprintln!("more: voxq jobs list --before {next} (or --all)");
    }
    Ok(())
}

async fn get(client: &Client, args: GetArgs) -> Result<()> {
    if args.wait {
        client
            .wait_for_end(args.id, Duration::from_secs(args.timeout))
            .await?;
    }
    let body = client.job_rendered(args.id, &args.format).await?;
    if args.format.ends_with("json") {
        let value: Value =
            serde_json::from_str(&body).map_err(|e| Error::Protocol(e.to_string()))?;
        output::json(&value);
    } else {
        print!("{body}");
    }
    Ok(())
}

/// Reconnections after a stream that ended before its job did (an API
/// restarting, a proxy's idle timeout); the first event after each says
/// where the job is, so nothing but intermediate progress is lost.
const MAX_RECONNECTS: u32 = 5;

async fn watch(client: &Client, args: WatchArgs) -> Result<()> {
    let mut reconnects = 0;
    loop {
        let response = client.job_events(args.id).await?;
        let mut events = std::pin::pin!(sse::events(response));
        while let Some(event) = events.next().await {
            let event = event?;
            if event.event != "status" {
                continue;
            }
            let data: Value =
                serde_json::from_str(&event.data).map_err(|e| Error::Protocol(e.to_string()))?;
            if args.json {
                println!("{}", event.data);
            } else {
                println!("{}", describe(&data));
            }
            let status = data.get("status").and_then(Value::as_str).unwrap_or("");
            match JobStatus::parse(status) {
                Some(JobStatus::Succeeded) => return Ok(()),
                Some(status) if status.is_terminal() => {
                    return Err(Error::JobUnsuccessful {
                        id: args.id,
                        status: status.as_str().to_owned(),
                    })
                }
                _ => {}
            }
        }
        reconnects += 1;
        if reconnects > MAX_RECONNECTS {
            return Err(Error::Protocol(format!(
                "the event stream of job {} kept ending before the job did",
                args.id
            )));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// `2026-01-02 10:00:00Z  running  12.0/40.0 s (30%)`.
fn describe(data: &Value) -> String {
    let now = output::time(&chrono::Utc::now());
    let status = data.get("status").and_then(Value::as_str).unwrap_or("?");
    let progress = data.get("progress").and_then(|p| {
        let done = p.get("seconds_done")?.as_f64()?;
        let total = p.get("seconds_total")?.as_f64()?;
        let percent = if total > 0.0 {
            done / total * 100.0
        } else {
            0.0
        };
        Some(format!("  {done:.1}/{total:.1} s ({percent:.0}%)"))
    });
    format!("{now}  {status}{}", progress.unwrap_or_default())
}
