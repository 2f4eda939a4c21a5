//! One job, from claim to committed result.

use std::sync::Arc;
use std::time::Instant;

use sqlx::PgPool;
use uuid::Uuid;
use voxq_shared::audio;
use voxq_shared::cache::JobCache;
use voxq_shared::db::jobs;
use voxq_shared::job::{JobError, JobMessage, JobView, UsageMetric};
use voxq_shared::quota::{Amounts, Quotas, Reservation};

use crate::engine::{Engine, TranscribeOptions};
use crate::metrics::Metrics;

pub struct Context {
    pub db: PgPool,
    pub cache: JobCache,
    pub quotas: Quotas,
    pub engine: Arc<dyn Engine>,
    pub metrics: Arc<Metrics>,
    pub max_attempts: i32,
}

/// What the consumer should do with the delivery.
#[derive(Debug)]
pub enum Outcome {
    /// Done, failed for good, or already ended: acknowledge.
    Ack,
    /// Worth another try: put the job back and requeue the message.
    Retry(anyhow::Error),
}

enum Failure {
    /// Retrying cannot help (bad input): fail now.
    Permanent(JobError),
    /// Retrying may help (a dependency hiccup, a crashed engine call).
    Transient(anyhow::Error),
}

fn permanent(code: &str, message: impl Into<String>) -> Failure {
    Failure::Permanent(JobError {
        code: code.into(),
        message: message.into(),
    })
}

#[tracing::instrument(skip_all, fields(job_id = %message.job_id, account_id = %message.account_id))]
pub async fn process(ctx: &Context, message: &JobMessage) -> Outcome {
    let kind = message.kind.as_str();
    let attempts = match jobs::start(&ctx.db, message.job_id).await {
        Ok(Some(attempts)) => attempts,
        Ok(None) => {
            tracing::info!("job already ended or unknown; acknowledging redelivery");
            ctx.metrics.skipped.with_label_values(&[kind]).inc();
            return Outcome::Ack;
        }
        Err(e) => return Outcome::Retry(e.into()),
    };
    match run(ctx, message).await {
        Ok(Some((ended, used))) => {
            ctx.metrics.processed.with_label_values(&[kind]).inc();
            settle(ctx, &ended.reservation, used).await;
            cache(ctx, message.account_id, &ended.view).await;
            Outcome::Ack
        }
        Ok(None) => {
            ctx.metrics.skipped.with_label_values(&[kind]).inc();
            Outcome::Ack
        }
        Err(Failure::Permanent(error)) => fail(ctx, message, error).await,
        Err(Failure::Transient(e)) if attempts >= ctx.max_attempts => {
            tracing::warn!(error = ?e, attempts, "giving up after the last attempt");
            let error = JobError {
                code: "attempts_exhausted".into(),
                message: format!("failed {attempts} times; last error: {e}"),
            };
            fail(ctx, message, error).await
        }
        Err(Failure::Transient(e)) => {
            tracing::warn!(error = ?e, attempts, "transient failure; will retry");
            if let Err(e) = jobs::requeue(&ctx.db, message.job_id).await {
                tracing::warn!(error = %e, "marking job queued again");
            }
            Outcome::Retry(e)
        }
    }
}

async fn fail(ctx: &Context, message: &JobMessage, error: JobError) -> Outcome {
    tracing::warn!(code = %error.code, reason = %error.message, "job failed");
    match jobs::fail(&ctx.db, message.job_id, &error).await {
        Ok(view) => {
            ctx.metrics
                .failed
                .with_label_values(&[message.kind.as_str(), &error.code])
                .inc();
            if let Some(ended) = view {
                settle(ctx, &ended.reservation, Amounts::default()).await;
                cache(ctx, message.account_id, &ended.view).await;
            }
            Outcome::Ack
        }
        Err(e) => Outcome::Retry(e.into()),
    }
}

/// Swaps the job's quota reservation for what it used. Postgres already
/// holds the usage; if Redis misses this, a rebuild from Postgres corrects
/// the counters.
async fn settle(ctx: &Context, reservation: &Reservation, used: Amounts) {
    if let Err(e) = ctx.quotas.settle(reservation, used).await {
        tracing::warn!(error = %e, "settling the quota reservation");
    }
}

async fn cache(ctx: &Context, account_id: Uuid, view: &JobView) {
    // Postgres holds the truth; a missed cache write only costs a slower poll.
    if let Err(e) = ctx.cache.put_terminal(account_id, view).await {
        tracing::warn!(error = %e, "caching finished job");
    }
}

/// The ended job and the usage it recorded; `None` if another delivery
/// ended it first.
async fn run(
    ctx: &Context,
    message: &JobMessage,
) -> Result<Option<(jobs::Ended, Amounts)>, Failure> {
    let input = jobs::load_input(&ctx.db, message.job_id)
        .await
        .map_err(|e| Failure::Transient(e.into()))?
        .ok_or_else(|| permanent("missing_input", "the job has no stored input"))?;
    let started = Instant::now();
    let samples = tokio::task::spawn_blocking(move || audio::decode_to_mono_16k(input.data.into()))
        .await
        .map_err(|e| permanent("invalid_audio", format!("the decoder crashed: {e}")))?
        .map_err(|e| permanent("invalid_audio", e.to_string()))?;
    let audio_seconds = samples.len() as f64 / f64::from(audio::TARGET_RATE);

    let engine = ctx.engine.clone();
    let options = TranscribeOptions {
        language: message.params.language.clone(),
    };
    let inference_started = Instant::now();
    // A panic inside the engine fails this job's attempt, not the worker.
    let transcript = tokio::task::spawn_blocking(move || engine.transcribe(&samples, &options))
        .await
        .map_err(|e| Failure::Transient(anyhow::anyhow!("inference crashed: {e}")))?
        .map_err(Failure::Transient)?;
    let inference = inference_started.elapsed().as_secs_f64();
    let model = ctx.engine.model_name();
    ctx.metrics
        .inference_seconds
        .with_label_values(&[message.kind.as_str(), model])
        .observe(inference);
    if audio_seconds > 0.0 {
        ctx.metrics
            .real_time_factor
            .with_label_values(&[model])
            .observe(inference / audio_seconds);
    }
    let processing = started.elapsed().as_secs_f64();
    let result = serde_json::to_value(&transcript).map_err(|e| Failure::Transient(e.into()))?;
    let usage = [
        (UsageMetric::AudioSeconds, input.duration_seconds),
        (UsageMetric::ProcessingSeconds, processing),
    ];
    tracing::info!(audio_seconds, inference, "job transcribed");
    let ended = jobs::succeed(&ctx.db, message.job_id, &result, &usage)
        .await
        .map_err(|e| Failure::Transient(e.into()))?;
    Ok(ended.map(|e| (e, Amounts::from_usage(&usage))))
}
