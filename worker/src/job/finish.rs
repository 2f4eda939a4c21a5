//! Ending a job: the commit of a success (result, usage billed per the
//! cache policy, status in one transaction) or of a failure, and what
//! follows either: the quota reservation settled, the finished view
//! cached, the end announced, a fresh result kept in the result cache.

use uuid::Uuid;
use voxq_shared::db::accounts::ResultCachePolicy;
use voxq_shared::db::jobs;
use voxq_shared::db::result_cache;
use voxq_shared::events::JobEvent;
use voxq_shared::job::{JobError, JobMessage, JobStatus, JobView, UsageMetric};
use voxq_shared::quota::{Amounts, Reservation};

use super::claimed::Prepared;
use super::context::Context;

/// Commits a success: result, usage (per the cache policy for a cache
/// hit), status; then settles the quota, caches the view and, for a fresh
/// result, stores it in the result cache. An error means nothing was
/// committed: the job is worth another try.
pub(super) async fn finish(
    ctx: &Context,
    job: &Prepared,
    result: serde_json::Value,
    inference: f64,
    cache_hit: bool,
) -> Result<(), sqlx::Error> {
    let message = &job.message;
    let processing = if cache_hit {
        0.0
    } else {
        // Decoding and loading, plus this job's share of the engine call.
        (job.started.elapsed().as_secs_f64()).max(inference)
    };
    let (metric, quantity) = job.billed();
    let usage: Vec<(UsageMetric, f64)> = if cache_hit && job.cache_policy == ResultCachePolicy::Free
    {
        Vec::new()
    } else {
        vec![
            (metric, quantity),
            (UsageMetric::ProcessingSeconds, processing),
        ]
    };
    let succeeded = jobs::succeed(
        &ctx.db,
        message.job_id,
        &result,
        &usage,
        cache_hit,
        &job.cache_key,
    );
    let Some(ended) = succeeded.await? else {
        ctx.metrics
            .skipped
            .with_label_values(&[message.kind.as_str()])
            .inc();
        redo_after_end(ctx, message).await;
        return Ok(());
    };
    #[cfg(feature = "chaos")]
    ctx.faults.after_commit(message.job_id);
    ctx.metrics
        .processed
        .with_label_values(&[message.kind.as_str()])
        .inc();
    tracing::info!(job_id = %message.job_id, cache_hit, processing, "job succeeded");
    settle(ctx, &ended.reservation, Amounts::from_usage(&usage)).await;
    cache(ctx, message.account_id, &ended.view).await;
    announce_end(ctx, message, JobStatus::Succeeded).await;
    if !cache_hit && job.cache_policy != ResultCachePolicy::Off {
        if let Err(e) = result_cache::put(&ctx.db, &job.cache_key, &message.model, &result).await {
            tracing::warn!(error = %e, "storing the result in the result cache");
        }
    }
    Ok(())
}

/// Ends the job failed unless it already ended, releasing its quota
/// reservation and telling its watchers; whether it was still open.
pub(crate) async fn end_failed(
    ctx: &Context,
    message: &JobMessage,
    error: &JobError,
) -> Result<bool, sqlx::Error> {
    tracing::warn!(job_id = %message.job_id, code = %error.code, reason = %error.message, "job failed");
    let Some(ended) = jobs::fail(&ctx.db, message.job_id, error).await? else {
        redo_after_end(ctx, message).await;
        return Ok(false);
    };
    ctx.metrics
        .failed
        .with_label_values(&[message.kind.as_str(), &error.code])
        .inc();
    settle(ctx, &ended.reservation, Amounts::default()).await;
    cache(ctx, message.account_id, &ended.view).await;
    announce_end(ctx, message, JobStatus::Failed).await;
    Ok(true)
}

/// Does again what follows the end of a job that a delivery found already
/// ended: its worker may have died between the commit and settling its
/// quota (the message came back because that worker never acknowledged
/// it), which would leave its reservation held, and a concurrent-jobs slot
/// taken, for good. Settling is idempotent and the end's view and event
/// are the same each time, so this runs on every such redelivery.
pub(super) async fn redo_after_end(ctx: &Context, message: &JobMessage) {
    match jobs::already_ended(&ctx.db, message.job_id).await {
        Ok(Some((ended, used))) => {
            settle(ctx, &ended.reservation, used).await;
            cache(ctx, message.account_id, &ended.view).await;
            announce_end(ctx, message, ended.view.status).await;
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "reading the ended job to settle its quota"),
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

async fn announce_end(ctx: &Context, message: &JobMessage, status: JobStatus) {
    ctx.events
        .publish(&JobEvent {
            job_id: message.job_id,
            account_id: message.account_id,
            status,
            progress: None,
        })
        .await;
}
