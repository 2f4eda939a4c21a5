//! Queue overhead benchmark (see `ops/bench/overhead.sh`, which starts the
//! API and a worker this talks to).
//!
//! For a tiny translation job, the time from submit to the client knowing
//! the result, minus the worker's own processing time for the job (its
//! `processing_seconds` usage record: loading, inference, recording):
//! what the queue, the stores and the notification path add. Measured
//! three ways in one run, jobs one after another: polling every 5 ms,
//! long-polling with `?wait=`, and a webhook to a local receiver. Prints
//! p50/p99 per way and each p50 as a ratio of polling's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use clap::Parser;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use uuid::Uuid;

#[derive(Parser)]
#[command(name = "voxq-bench-overhead")]
struct Args {
    /// Base URL of a running voxq-api.
    #[arg(long, env = "VOXQ_API_URL")]
    api_url: String,
    /// An API key of an account with the result cache off.
    #[arg(long, env = "VOXQ_BENCH_KEY")]
    key: String,
    /// The API's database, to read each job's processing time.
    #[arg(long, env = "VOXQ_DATABASE_URL")]
    database_url: String,
    /// Jobs per way.
    #[arg(long, default_value_t = 100)]
    jobs: usize,
}

/// Webhook arrivals: a job's waiter, or the arrival itself if it came
/// before the waiter was in place.
#[derive(Default)]
struct Arrivals {
    waiting: HashMap<String, oneshot::Sender<Instant>>,
    early: HashMap<String, Instant>,
}

type Waiters = Arc<Mutex<Arrivals>>;

#[derive(Clone, Copy, PartialEq)]
enum Way {
    Poll,
    LongPoll,
    Webhook,
}

impl Way {
    fn name(self) -> &'static str {
        match self {
            Way::Poll => "polling (5 ms)",
            Way::LongPoll => "long-poll (?wait=30)",
            Way::Webhook => "webhook",
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let http = reqwest::Client::new();
    let db = sqlx::PgPool::connect(&args.database_url).await?;

    // The webhook receiver: resolves the waiter of each job.succeeded.
    let waiters: Waiters = Arc::new(Mutex::new(Arrivals::default()));
    let app = axum::Router::new()
        .route("/hook", post(receive))
        .with_state(waiters.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let registered: Value = http
        .post(format!("{}/v1/webhooks", args.api_url))
        .bearer_auth(&args.key)
        .json(&json!({ "url": hook, "event_types": ["job.succeeded"] }))
        .send()
        .await?
        .error_for_status()
        .context("registering the webhook (the API must allow http to 127.0.0.1)")?
        .json()
        .await?;
    anyhow::ensure!(registered["id"].is_string(), "{registered}");

    // Warm-up: first-call costs are not what we measure.
    for i in 0..5 {
        one(&args, &http, &db, &waiters, Way::LongPoll, i).await?;
    }
    let mut medians = Vec::new();
    println!(
        "{:<22} {:>10} {:>10} {:>12} {:>12}",
        "way", "p50 ms", "p99 ms", "p50 total", "p50 worker"
    );
    for way in [Way::Poll, Way::LongPoll, Way::Webhook] {
        let mut overhead = Vec::with_capacity(args.jobs);
        let mut total = Vec::with_capacity(args.jobs);
        let mut worker = Vec::with_capacity(args.jobs);
        for i in 0..args.jobs {
            let (t, w) = one(&args, &http, &db, &waiters, way, 1000 + i).await?;
            overhead.push((t - w) * 1000.0);
            total.push(t * 1000.0);
            worker.push(w * 1000.0);
        }
        let p50 = percentile(&mut overhead, 0.50);
        println!(
            "{:<22} {:>10.1} {:>10.1} {:>12.1} {:>12.1}",
            way.name(),
            p50,
            percentile(&mut overhead, 0.99),
            percentile(&mut total, 0.50),
            percentile(&mut worker, 0.50),
        );
        medians.push((way, p50));
    }
    let poll = medians[0].1.max(f64::EPSILON);
    for (way, p50) in &medians {
        println!(
            "{:<22} overhead ratio to polling: {:.2}",
            way.name(),
            p50 / poll
        );
    }
    Ok(())
}

async fn receive(State(waiters): State<Waiters>, body: Bytes) -> &'static str {
    let arrived = Instant::now();
    if let Ok(event) = serde_json::from_slice::<Value>(&body) {
        if let (Some(id), Ok(mut arrivals)) = (event["data"]["id"].as_str(), waiters.lock()) {
            match arrivals.waiting.remove(id) {
                Some(waiter) => {
                    let _ = waiter.send(arrived);
                }
                None => {
                    arrivals.early.insert(id.to_owned(), arrived);
                }
            }
        }
    }
    "ok"
}

/// One job the given way: (seconds from submit to knowing the result,
/// the worker's processing seconds for it).
async fn one(
    args: &Args,
    http: &reqwest::Client,
    db: &sqlx::PgPool,
    waiters: &Waiters,
    way: Way,
    n: usize,
) -> anyhow::Result<(f64, f64)> {
    let started = Instant::now();
    let accepted: Value = http
        .post(format!("{}/v1/jobs", args.api_url))
        .bearer_auth(&args.key)
        .json(&json!({
            "kind": "translate",
            "text": format!("Sentence number {n} of the benchmark."),
            "target_language": "de",
        }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let id = accepted["id"].as_str().context("job id")?.to_owned();
    let done = match way {
        Way::Webhook => {
            let (tx, rx) = oneshot::channel();
            let early = {
                let mut arrivals = waiters.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                let early = arrivals.early.remove(&id);
                if early.is_none() {
                    arrivals.waiting.insert(id.clone(), tx);
                }
                early
            };
            match early {
                Some(arrived) => arrived,
                None => tokio::time::timeout(Duration::from_secs(60), rx)
                    .await
                    .context("no webhook within 60 s")??,
            }
        }
        Way::Poll | Way::LongPoll => loop {
            let query = if way == Way::LongPoll { "?wait=30" } else { "" };
            let job: Value = http
                .get(format!("{}/v1/jobs/{id}{query}", args.api_url))
                .bearer_auth(&args.key)
                .send()
                .await?
                .json()
                .await?;
            match job["status"].as_str() {
                Some("succeeded") => break Instant::now(),
                Some("failed") | Some("cancelled") => anyhow::bail!("job {id}: {job}"),
                _ if way == Way::Poll => tokio::time::sleep(Duration::from_millis(5)).await,
                _ => {}
            }
        },
    };
    let elapsed = done.duration_since(started).as_secs_f64();
    // Runtime-checked: benchmark-only SQL; voxq-bench has no offline query
    // data (.sqlx holds the shared crate's) and no build script for
    // ops/check-sqlx.sh.
    let worker: f64 = sqlx::query_scalar(
        "select quantity from usage_records where job_id = $1 and metric = 'processing_seconds'",
    )
    .bind(Uuid::parse_str(&id)?)
    .fetch_one(db)
    .await?;
    Ok((elapsed, worker))
}

fn percentile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    let i = ((values.len() as f64 - 1.0) * q).round() as usize;
    values.get(i).copied().unwrap_or(0.0)
}
