//! The RabbitMQ consumers: one channel and one inference slot per lane,
//! consuming that lane's queue of every served model; jobs of one model
//! that arrive within the batching window run as one call. Acks are manual
//! and sent only after each job's outcome is committed.
//!
//! lapin does not reconnect, and a consumer can stall without an error
//! after a broker restart, so [`supervise`] watches the connection and
//! starts over (new connection, topology declared again, new consumers)
//! with backoff. A delivery is only ever settled on the channel it came
//! from: a lane dies with its channel, and the broker redelivers what it
//! had not acknowledged.
//!
//! Each lane gathers and runs its batches in `lane`; what becomes of
//! each delivery after its job's outcome is in `settle`.

mod lane;
mod settle;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures::stream::SelectAll;
use lapin::options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::Channel;
use rand::Rng;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use voxq_shared::queue::{self, Lane, Topology};

use crate::job::Context;

/// How often the supervisor checks that the connection is still up.
const WATCHDOG: Duration = Duration::from_secs(2);
/// After the grace period, how long interrupted jobs get to reach a safe
/// point and be requeued before the lanes are dropped.
const INTERRUPT_GRACE: Duration = Duration::from_secs(15);
/// Reconnection backoff bounds.
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

pub struct Lanes {
    pub lanes: Vec<Lane>,
    pub batch_window: Duration,
    /// How long a stopping worker lets the batches in progress finish.
    pub shutdown_grace: Duration,
}

/// Consumes until `stop`, reconnecting whenever the connection or a
/// consumer fails.
pub async fn supervise(
    amqp_url: &str,
    topology: &Topology,
    ctx: Arc<Context>,
    lanes: Lanes,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let mut backoff = BACKOFF_MIN;
    loop {
        let started = tokio::time::Instant::now();
        match consume(amqp_url, topology, ctx.clone(), &lanes, &stop).await {
            Ok(()) => return Ok(()),
            Err(e) if stop.is_cancelled() => {
                tracing::warn!(error = format!("{e:#}"), "consumer ended while stopping");
                return Ok(());
            }
            Err(e) => {
                ctx.metrics.reconnects.inc();
                // A connection that lived a while earns a quick retry.
                if started.elapsed() > BACKOFF_MAX {
                    backoff = BACKOFF_MIN;
                }
                let jitter = rand::thread_rng().gen_range(0.5..1.0);
                let wait = backoff.mul_f64(jitter);
                tracing::warn!(
                    error = format!("{e:#}"),
                    retry_in_ms = wait.as_millis() as u64,
                    "RabbitMQ connection lost; reconnecting"
                );
                tokio::select! {
                    () = stop.cancelled() => return Ok(()),
                    () = tokio::time::sleep(wait) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// One connection's life: declare, consume every lane, and end with an
/// error when anything fails, or `Ok` once `stop` has been honoured.
async fn consume(
    amqp_url: &str,
    topology: &Topology,
    ctx: Arc<Context>,
    lanes: &Lanes,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    let connection = tokio::time::timeout(queue::PUBLISH_TIMEOUT, queue::connect(amqp_url))
        .await
        .context("connecting to RabbitMQ timed out")?
        .context("connecting to RabbitMQ")?;
    let setup = connection.create_channel().await?;
    topology.declare(&setup).await?;
    let mut models: Vec<&String> = ctx.models.keys().collect();
    models.sort();
    for model in &models {
        topology.declare_model(&setup, model).await?;
    }
    let _ = setup.close(200, "declared").await;
    let mut tasks = JoinSet::new();
    let mut channels: Vec<(Channel, Vec<String>)> = Vec::new();
    // Lanes stop taking deliveries on this token; it follows `stop`.
    let lanes_stop = stop.child_token();
    for &lane in &lanes.lanes {
        let channel = connection.create_channel().await?;
        let mut consumers = SelectAll::new();
        let mut tags = Vec::new();
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
            let tag = format!("voxq-worker-{}", uuid::Uuid::new_v4());
            let consumer = channel
                .basic_consume(
                    &topology.queue(model, lane),
                    &tag,
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            consumers.push(consumer);
            tags.push(tag);
        }
        tracing::info!(lane = lane.as_str(), ?models, "consuming");
        tasks.spawn(lane::run_lane(
            ctx.clone(),
            lane,
            consumers,
            lanes.batch_window,
            lanes_stop.clone(),
        ));
        channels.push((channel, tags));
    }
    // Jobs whose messages the broker dead-lettered; one at a time is plenty.
    let sweeping = connection.create_channel().await?;
    sweeping
        .basic_qos(1, BasicQosOptions { global: false })
        .await?;
    let sweep_tag = format!("voxq-worker-{}", uuid::Uuid::new_v4());
    let sweep = sweeping
        .basic_consume(
            &topology.dead_letter_sweep_queue,
            &sweep_tag,
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    tasks.spawn(crate::dead_letters::sweep(
        ctx.clone(),
        sweep,
        lanes_stop.clone(),
    ));
    channels.push((sweeping, vec![sweep_tag]));
    let mut watchdog = tokio::time::interval(WATCHDOG);
    let outcome = loop {
        tokio::select! {
            // Stopping first: idle lanes end the moment `stop` is cancelled,
            // and a lane's end seen first would read as a failure, skipping
            // the drain and leaving the busy lanes' jobs `running`.
            biased;
            () = stop.cancelled() => break Ok(()),
            ended = tasks.join_next() => break match ended {
                Some(Ok(Ok(()))) | None => Err(anyhow::anyhow!("a lane stopped")),
                Some(Ok(Err(e))) => Err(e),
                Some(Err(e)) => Err(anyhow::anyhow!("lane task crashed: {e}")),
            },
            _ = watchdog.tick() => {
                let channels_up = channels.iter().all(|(c, _)| c.status().connected());
                if !connection.status().connected() || !channels_up {
                    break Err(anyhow::anyhow!("the connection or a channel closed"));
                }
            }
        }
    };
    if outcome.is_ok() {
        drain(&ctx, &channels, tasks, lanes.shutdown_grace).await;
    } else {
        // The channels are gone: nothing the lanes settle could reach the
        // broker. Their jobs go back in line now rather than wait out a
        // lease; short ones' deliveries return with the connection.
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        ctx.held.hand_back(&ctx.db).await;
    }
    for (channel, _) in &channels {
        let _ = channel.close(200, "closing").await;
    }
    let _ = connection.close(200, "closing").await;
    outcome
}

/// Graceful stop: no new deliveries, the batches in progress finish (up
/// to `grace`); whatever is left unacknowledged goes back to the queue when
/// the channels close.
async fn drain(
    ctx: &Context,
    channels: &[(Channel, Vec<String>)],
    mut tasks: JoinSet<anyhow::Result<()>>,
    grace: Duration,
) {
    tracing::info!(
        grace_s = grace.as_secs(),
        "stopping: finishing the jobs in progress"
    );
    for (channel, tags) in channels {
        for tag in tags {
            if let Err(e) = channel
                .basic_cancel(tag, BasicCancelOptions::default())
                .await
            {
                tracing::warn!(error = %e, "cancelling a consumer");
            }
        }
    }
    let mut finished = tokio::time::timeout(grace, join_all(&mut tasks)).await;
    if finished.is_err() {
        // Engines stop at their next window and the lanes requeue the jobs
        // they were running; give them a moment to say so.
        tracing::warn!("grace period over; returning the unfinished jobs to the queue");
        ctx.interrupt.cancel();
        finished = tokio::time::timeout(INTERRUPT_GRACE, join_all(&mut tasks)).await;
    }
    if finished.is_err() {
        // Unacknowledged, they return to the queue when the channels close;
        // the jobs themselves are put back in line before the process
        // exits, so none waits out a lease or counts the run as an attempt.
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        ctx.held.hand_back(&ctx.db).await;
    }
}

async fn join_all(tasks: &mut JoinSet<anyhow::Result<()>>) {
    while let Some(ended) = tasks.join_next().await {
        if let Ok(Err(e)) = ended {
            tracing::warn!(
                error = format!("{e:#}"),
                "lane ended with an error while stopping"
            );
        }
    }
}
