//! A lane's loop: its deliveries gathered into batches of one model, each
//! batch run, each delivery settled; long jobs detached from the broker
//! first.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures::stream::{SelectAll, StreamExt};
use lapin::message::Delivery;
use lapin::options::BasicRejectOptions;
use lapin::Consumer;
use tokio_util::sync::CancellationToken;
use voxq_shared::job::JobMessage;
use voxq_shared::queue::Lane;

use super::settle::{detach, requeue_now, settle_delivery, settle_detached};
use crate::job::{process_batch, Context};

/// One lane: take a delivery, gather more of the same model for the
/// batching window, run them together, settle each. Returns `Ok` when
/// `stop` is cancelled between batches.
pub(super) async fn run_lane(
    ctx: Arc<Context>,
    lane: Lane,
    mut consumers: SelectAll<Consumer>,
    window: Duration,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    // A delivery of another model that arrived while a batch was gathered.
    let mut held: Option<(Delivery, JobMessage)> = None;
    loop {
        let first = match held.take() {
            Some(first) => first,
            None => {
                let next = tokio::select! {
                    () = stop.cancelled() => return Ok(()),
                    next = next_job(&mut consumers) => next?,
                };
                match next {
                    Some(job) => job,
                    None => continue,
                }
            }
        };
        let batch_size = ctx.models.get(&first.1.model).map_or(1, |s| s.batch_size);
        let mut batch = vec![first];
        if batch_size > 1 {
            let deadline = tokio::time::Instant::now() + window;
            while batch.len() < batch_size && !stop.is_cancelled() {
                let Ok(next) = tokio::time::timeout_at(deadline, next_job(&mut consumers)).await
                else {
                    break;
                };
                match next? {
                    Some(job) if job.1.model == batch[0].1.model => batch.push(job),
                    Some(job) => {
                        held = Some(job);
                        break;
                    }
                    None => {}
                }
            }
        }
        // Long jobs leave the broker's watch: leased in Postgres, then
        // acknowledged (see `detach`).
        let mut detached = vec![false; batch.len()];
        if lane == Lane::Long {
            for ((delivery, message), detached) in batch.iter().zip(&mut detached) {
                *detached = detach(&ctx, delivery, message).await?;
            }
        }
        let messages: Vec<JobMessage> = batch.iter().map(|(_, m)| m.clone()).collect();
        tracing::debug!(lane = lane.as_str(), jobs = messages.len(), "running batch");
        let outcomes = process_batch(&ctx, &messages).await;
        for (((delivery, message), outcome), detached) in
            batch.into_iter().zip(outcomes).zip(detached)
        {
            if detached {
                settle_detached(&ctx, &delivery, &message, outcome).await;
            } else {
                settle_delivery(&ctx, delivery, &message, outcome).await?;
            }
        }
        if stop.is_cancelled() {
            if let Some((delivery, _)) = held.take() {
                requeue_now(delivery).await;
            }
            return Ok(());
        }
    }
}

/// The next delivery with its parsed message; `None` when the delivery
/// was malformed (and has been dead-lettered).
async fn next_job(
    consumers: &mut SelectAll<Consumer>,
) -> anyhow::Result<Option<(Delivery, JobMessage)>> {
    let delivery = match consumers.next().await {
        Some(delivery) => delivery.context("receiving a delivery")?,
        None => anyhow::bail!("the broker closed the consumers"),
    };
    match serde_json::from_slice::<JobMessage>(&delivery.data) {
        Ok(message) => Ok(Some((delivery, message))),
        Err(e) => {
            tracing::error!(error = %e, "malformed job message; dead-lettering it");
            delivery
                .acker
                .reject(BasicRejectOptions { requeue: false })
                .await?;
            Ok(None)
        }
    }
}
