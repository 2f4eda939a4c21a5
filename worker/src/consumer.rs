//! The RabbitMQ consumers: one channel and one inference slot per lane,
//! consuming that lane's queue of every served model; jobs of one model
//! that arrive within the batching window run as one call. Acks are manual
//! and sent only after each job's outcome is committed.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures::stream::{SelectAll, StreamExt};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, BasicRejectOptions,
};
use lapin::types::FieldTable;
use lapin::Consumer;
use voxq_shared::job::JobMessage;
use voxq_shared::queue::{self, Lane, Topology};

use crate::process::{process_batch, Context, Outcome};

/// Wait before requeueing a transient failure, so a dependency outage does
/// not become a hot loop of redeliveries.
const RETRY_DELAY: Duration = Duration::from_secs(2);

pub struct Lanes {
    pub lanes: Vec<Lane>,
    pub batch_window: Duration,
}

pub async fn consume(
    amqp_url: &str,
    topology: &Topology,
    ctx: Arc<Context>,
    lanes: Lanes,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let connection = queue::connect(amqp_url)
        .await
        .context("connecting to RabbitMQ")?;
    let setup = connection.create_channel().await?;
    topology.declare(&setup).await?;
    let mut models: Vec<&String> = ctx.models.keys().collect();
    models.sort();
    for model in &models {
        topology.declare_model(&setup, model).await?;
    }
    let mut tasks = tokio::task::JoinSet::new();
    let mut channels = Vec::new();
    for &lane in &lanes.lanes {
        let channel = connection.create_channel().await?;
        let mut consumers = SelectAll::new();
        for model in &models {
            // Unacked deliveries wait for this lane's slot; holding more than
            // one batch of a model would only keep them from other workers.
            // Quorum queues refuse channel-wide (global) prefetch, so the
            // limit is per consumer, set before each one starts.
            let batch_size = ctx.models.get(*model).map_or(1, |s| s.batch_size);
            channel
                .basic_qos(
                    u16::try_from(batch_size).unwrap_or(u16::MAX),
                    BasicQosOptions { global: false },
                )
                .await?;
            let queue_name = topology.queue(model, lane);
            let consumer = channel
                .basic_consume(
                    &queue_name,
                    &format!("voxq-worker-{}", uuid::Uuid::new_v4()),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            consumers.push(consumer);
        }
        tracing::info!(lane = lane.as_str(), ?models, "consuming");
        tasks.spawn(run_lane(ctx.clone(), lane, consumers, lanes.batch_window));
        channels.push(channel);
    }
    let outcome = tokio::select! {
        () = shutdown => Ok(()),
        ended = tasks.join_next() => match ended {
            Some(Ok(res)) => res,
            Some(Err(e)) => Err(anyhow::anyhow!("lane task crashed: {e}")),
            None => Ok(()),
        },
    };
    tracing::info!("consumers stopping");
    // A lane stopped mid-batch leaves its deliveries unacked: the broker
    // redelivers them to another worker when this connection closes.
    tasks.abort_all();
    for channel in channels {
        let _ = channel.close(200, "shutdown").await;
    }
    let _ = connection.close(200, "shutdown").await;
    outcome
}

/// One lane: take a delivery, gather more of the same model for the
/// batching window, run them together, acknowledge each.
async fn run_lane(
    ctx: Arc<Context>,
    lane: Lane,
    mut consumers: SelectAll<Consumer>,
    window: Duration,
) -> anyhow::Result<()> {
    // A delivery of another model that arrived while a batch was gathered.
    let mut held: Option<(Delivery, JobMessage)> = None;
    loop {
        let first = match held.take() {
            Some(first) => first,
            None => match next_job(&mut consumers).await? {
                Some(job) => job,
                None => continue,
            },
        };
        let batch_size = ctx.models.get(&first.1.model).map_or(1, |s| s.batch_size);
        let mut batch = vec![first];
        if batch_size > 1 {
            let deadline = tokio::time::Instant::now() + window;
            while batch.len() < batch_size {
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
        let messages: Vec<JobMessage> = batch.iter().map(|(_, m)| m.clone()).collect();
        tracing::debug!(lane = lane.as_str(), jobs = messages.len(), "running batch");
        let outcomes = process_batch(&ctx, &messages).await;
        for ((delivery, message), outcome) in batch.into_iter().zip(outcomes) {
            settle_delivery(delivery, &message, outcome).await?;
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

async fn settle_delivery(
    delivery: Delivery,
    message: &JobMessage,
    outcome: Outcome,
) -> anyhow::Result<()> {
    match outcome {
        Outcome::Ack => delivery.acker.ack(BasicAckOptions::default()).await?,
        Outcome::Retry(e) => {
            tracing::warn!(job_id = %message.job_id, error = %e, "requeueing");
            // Off the lane's path: the other jobs of the batch are not held.
            tokio::spawn(async move {
                tokio::time::sleep(RETRY_DELAY).await;
                let requeue = BasicNackOptions {
                    requeue: true,
                    ..Default::default()
                };
                if let Err(e) = delivery.acker.nack(requeue).await {
                    tracing::warn!(error = %e, "requeueing a delivery");
                }
            });
        }
    }
    Ok(())
}
