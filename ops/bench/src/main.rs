//! Submit throughput benchmark (see `ops/bench/submit.sh`, which starts the
//! API this talks to).
//!
//! In one run, for the same duration and concurrency:
//! 1. authenticated `POST /v1/jobs` of a small text job through the API
//!    (auth, rate limits, quota reservation, insert, confirmed publish);
//! 2. the machine's ceilings with the same payload: single-row Postgres
//!    inserts, and RabbitMQ publishes with confirms to a quorum queue.
//!
//! It prints jobs/s with p50/p99 latency, both ceilings, and the ratio of
//! the submit rate to the lower ceiling.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use futures::future::join_all;
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::BasicProperties;
use secrecy::ExposeSecret;
use uuid::Uuid;
use voxq_shared::auth::limits::{LimitsOverride, Tier};
use voxq_shared::auth::scope::{Scope, Scopes};
use voxq_shared::db::{accounts, api_keys};
use voxq_shared::job::{JobKind, JobMessage, JobParams};

#[derive(Parser)]
#[command(name = "voxq-bench-submit")]
struct Args {
    /// Base URL of a running voxq-api.
    #[arg(long, env = "VOXQ_API_URL")]
    api_url: String,
    /// The API's stores and pepper: an account and a scratch table are made
    /// in its database, a scratch queue under its namespace.
    #[command(flatten)]
    common: voxq_shared::config::CommonConfig,
    /// Concurrent connections (requests in flight) in every phase.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds each phase runs.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

const TEXT: &str = "The meeting starts at nine tomorrow morning.";

/// Runs `op` from `concurrency` tasks for `duration`; returns the latencies
/// of successful operations and the number of failures.
async fn drive<F, Fut>(concurrency: usize, duration: Duration, op: F) -> (Vec<Duration>, usize)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    let deadline = Instant::now() + duration;
    let tasks = (0..concurrency).map(|_| {
        let op = op.clone();
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0;
            while Instant::now() < deadline {
                let started = Instant::now();
                if op().await {
                    latencies.push(started.elapsed());
                } else {
                    failures += 1;
                }
            }
            (latencies, failures)
        })
    });
    let mut all = Vec::new();
    let mut failures = 0;
    for (latencies, f) in join_all(tasks).await.into_iter().flatten() {
        all.extend(latencies);
        failures += f;
    }
    all.sort();
    (all, failures)
}

struct Phase {
    name: &'static str,
    rate: f64,
    p50: Duration,
    p99: Duration,
    failures: usize,
}

fn summarise(name: &'static str, latencies: &[Duration], failures: usize, seconds: u64) -> Phase {
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Phase {
        name,
        rate: latencies.len() as f64 / seconds as f64,
        p50: at(0.50),
        p99: at(0.99),
        failures,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let duration = Duration::from_secs(args.seconds);
    // The API holds its own pool meanwhile: stay under Postgres's 100
    // connections.
    let db = voxq_shared::db::connect(&args.common.database_url, args.concurrency as u32)
        .await
        .context("connecting to Postgres")?;

    // An account no limit will stop during the run.
    let account = accounts::create(&db, "bench", Tier::Enterprise).await?;
    let unlimited = LimitsOverride {
        requests_per_day: Some(u64::MAX / 4),
        audio_seconds_per_day: Some(u64::MAX / 4_000),
        text_chars_per_day: Some(u64::MAX / 4),
        processing_seconds_per_day: Some(u64::MAX / 4_000),
        concurrent_jobs: Some(u64::MAX / 4),
        requests_per_minute: Some(60_000_000),
        burst: Some(1_000_000),
    };
    let changes = accounts::AccountChanges {
        limits_override: Some(unlimited),
        ..Default::default()
    };
    accounts::update(&db, account.id, &changes).await?;
    let key = api_keys::create(
        &db,
        &args.common.key_pepper,
        &api_keys::KeySpec {
            account_id: account.id,
            name: "bench",
            scopes: &Scopes::new([Scope::JobsWrite]),
            created_by_user: None,
        },
    )
    .await?
    .key
    .plaintext
    .expose_secret()
    .to_owned();

    // 1. Submits through the API.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let url = format!("{}/v1/jobs", args.api_url.trim_end_matches('/'));
    let body = serde_json::json!({ "kind": "translate", "text": TEXT, "target_language": "de" });
    let submit = {
        let (http, url, key, body) = (http.clone(), url.clone(), key.clone(), body.clone());
        move || {
            let request = http.post(&url).bearer_auth(&key).json(&body);
            async move { matches!(request.send().await, Ok(r) if r.status() == 202) }
        }
    };
    // A short warm-up fills connection pools on both sides.
    drive(args.concurrency, Duration::from_secs(1), submit.clone()).await;
    let (lat, failed) = drive(args.concurrency, duration, submit).await;
    let api = summarise(
        "voxq submit (HTTP, auth, quota, insert, publish)",
        &lat,
        failed,
        args.seconds,
    );

    // The same payload the queue carries for such a job.
    let payload = serde_json::to_vec(&JobMessage {
        job_id: Uuid::now_v7(),
        account_id: account.id,
        kind: JobKind::Translate,
        model: "translate-test".into(),
        params: JobParams {
            target_language: Some("de".into()),
            ..Default::default()
        },
    })?;

    // 2. Postgres: single-row inserts, one statement per transaction.
    // Runtime-checked (this and the two statements below): benchmark-only
    // SQL on a scratch table this run creates and drops, which is in no
    // migration; voxq-bench has no offline query data (.sqlx holds the
    // shared crate's) and no build script for ops/check-sqlx.sh.
    sqlx::query(
        "create table if not exists bench_ceiling (id uuid primary key, body jsonb not null)",
    )
    .execute(&db)
    .await?;
    let json_body: serde_json::Value = serde_json::from_slice(&payload)?;
    let insert = {
        let (db, json_body) = (db.clone(), json_body.clone());
        move || {
            let (db, json_body) = (db.clone(), json_body.clone());
            async move {
                // Runtime-checked: the scratch table again (see above).
                sqlx::query("insert into bench_ceiling (id, body) values ($1, $2)")
                    .bind(Uuid::now_v7())
                    .bind(json_body)
                    .execute(&db)
                    .await
                    .is_ok()
            }
        }
    };
    let (lat, failed) = drive(args.concurrency, duration, insert).await;
    let pg = summarise("Postgres single-row insert", &lat, failed, args.seconds);
    // Runtime-checked: the scratch table again (see above).
    sqlx::query("drop table bench_ceiling").execute(&db).await?;

    // 3. RabbitMQ: persistent, mandatory publishes with confirms to a
    //    quorum queue, concurrently on one channel (as the API does).
    let conn = voxq_shared::queue::connect(&args.common.amqp_url).await?;
    let channel = conn.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let queue = format!("{}.bench.ceiling", args.common.namespace);
    let mut queue_args = FieldTable::default();
    queue_args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    channel
        .queue_declare(
            &queue,
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            queue_args,
        )
        .await?;
    let publish = {
        let (channel, queue, payload) = (channel.clone(), queue.clone(), payload.clone());
        move || {
            let (channel, queue, payload) = (channel.clone(), queue.clone(), payload.clone());
            async move {
                let confirm = channel
                    .basic_publish(
                        "",
                        &queue,
                        BasicPublishOptions {
                            mandatory: true,
                            ..Default::default()
                        },
                        &payload,
                        BasicProperties::default().with_delivery_mode(2),
                    )
                    .await;
                match confirm {
                    Ok(c) => matches!(
                        c.await,
                        Ok(lapin::publisher_confirm::Confirmation::Ack(None))
                    ),
                    Err(_) => false,
                }
            }
        }
    };
    let (lat, failed) = drive(args.concurrency, duration, publish).await;
    let amqp = summarise("RabbitMQ confirmed publish", &lat, failed, args.seconds);
    channel
        .queue_delete(&queue, QueueDeleteOptions::default())
        .await?;

    println!(
        "concurrency {}, {} s per phase, payload {} bytes",
        args.concurrency,
        args.seconds,
        payload.len()
    );
    println!(
        "{:<52} {:>10} {:>10} {:>10} {:>8}",
        "phase", "per s", "p50 ms", "p99 ms", "failed"
    );
    for p in [&api, &pg, &amqp] {
        println!(
            "{:<52} {:>10.0} {:>10.2} {:>10.2} {:>8}",
            p.name,
            p.rate,
            p.p50.as_secs_f64() * 1000.0,
            p.p99.as_secs_f64() * 1000.0,
            p.failures
        );
    }
    let ceiling = pg.rate.min(amqp.rate);
    println!(
        "submit rate / lower ceiling ({:.0}/s) = {:.2}",
        ceiling,
        if ceiling > 0.0 {
            api.rate / ceiling
        } else {
            0.0
        }
    );
    Ok(())
}
