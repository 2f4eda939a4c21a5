//! What becomes of a delivery once its job's outcome is known: ack,
//! requeue, dead-letter or a delayed retry, on the channel it came from;
//! and for long jobs, whose delivery was acknowledged early (`detach`), the
//! same through a new publish or the outbox.

use std::time::Duration;

use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions, BasicRejectOptions};
use voxq_shared::db::jobs;
use voxq_shared::job::JobMessage;

use crate::job::{Context, Outcome};

/// Wait before requeueing in place when even the delayed retry could not
/// be published, so an outage does not become a hot loop of redeliveries.
const FALLBACK_RETRY_DELAY: Duration = Duration::from_secs(2);

/// Acknowledges a long job's delivery once the job holds a lease in
/// Postgres: RabbitMQ's consumer timeout, counted from delivery, would
/// otherwise cut any job longer than it, and a worker that dies or hangs
/// is found by its lease running out instead. Returns whether it did.
pub(super) async fn detach(
    ctx: &Context,
    delivery: &Delivery,
    message: &JobMessage,
) -> anyhow::Result<bool> {
    match jobs::detach(&ctx.db, message.job_id, ctx.lease_seconds).await {
        Ok(_) => {
            delivery.acker.ack(BasicAckOptions::default()).await?;
            Ok(true)
        }
        Err(e) => {
            // Stays under the broker's watch, as a short job would.
            tracing::warn!(job_id = %message.job_id, error = %e, "leasing a long job");
            Ok(false)
        }
    }
}

/// What [`settle_delivery`] does, for a job whose delivery was already
/// acknowledged: its message is published again instead of requeued.
pub(super) async fn settle_detached(
    ctx: &Context,
    delivery: &Delivery,
    message: &JobMessage,
    outcome: Outcome,
) {
    let job_id = message.job_id;
    let routing_key = delivery.routing_key.as_str();
    let published = match outcome {
        Outcome::Ack => return,
        // Interrupted by a stopping worker: straight back in line.
        Outcome::Requeue => Ok(false),
        Outcome::DeadLetter => ctx
            .retries
            .publish_dead(routing_key, &delivery.data, job_id)
            .await
            .map(|()| true),
        Outcome::Retry { error, attempts } => {
            tracing::warn!(%job_id, error = %error, attempts, "retrying a long job later");
            ctx.retries
                .publish_retry(attempts, routing_key, &delivery.data, job_id)
                .await
                .map(|_| true)
        }
    };
    let published = published.unwrap_or_else(|e| {
        tracing::warn!(%job_id, error = %e, "republishing a long job");
        false
    });
    if !published {
        // Back in line through the outbox; the API's relay publishes it.
        if let Err(e) = jobs::requeue_detached(&ctx.db, job_id).await {
            tracing::error!(%job_id, error = %e, "requeueing a long job; its lease will");
        }
    }
}

pub(super) async fn requeue_now(delivery: Delivery) {
    let requeue = BasicNackOptions {
        requeue: true,
        ..Default::default()
    };
    if let Err(e) = delivery.acker.nack(requeue).await {
        tracing::warn!(error = %e, "requeueing a delivery");
    }
}

pub(super) async fn settle_delivery(
    ctx: &Context,
    delivery: Delivery,
    message: &JobMessage,
    outcome: Outcome,
) -> anyhow::Result<()> {
    match outcome {
        Outcome::Ack => delivery.acker.ack(BasicAckOptions::default()).await?,
        Outcome::Requeue => requeue_now(delivery).await,
        Outcome::DeadLetter => {
            // The queue's dead-letter exchange keeps a copy for operators.
            delivery
                .acker
                .reject(BasicRejectOptions { requeue: false })
                .await?
        }
        Outcome::Retry { error, attempts } => {
            let published = ctx
                .retries
                .publish_retry(
                    attempts,
                    delivery.routing_key.as_str(),
                    &delivery.data,
                    message.job_id,
                )
                .await;
            match published {
                Ok(delay_ms) => {
                    tracing::warn!(job_id = %message.job_id, error = %error, attempts, delay_ms, "retrying later");
                    delivery.acker.ack(BasicAckOptions::default()).await?;
                }
                Err(e) => {
                    tracing::warn!(job_id = %message.job_id, error = %e, "delayed retry unavailable; requeueing in place");
                    // Off the lane's path: the other jobs of the batch are
                    // not held.
                    tokio::spawn(async move {
                        tokio::time::sleep(FALLBACK_RETRY_DELAY).await;
                        requeue_now(delivery).await;
                    });
                }
            }
        }
    }
    Ok(())
}
