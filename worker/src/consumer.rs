//! The RabbitMQ consumer loop: manual acks, sent only after the job's
//! outcome is committed.

use std::future::Future;
use std::time::Duration;

use anyhow::Context as _;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, BasicRejectOptions,
};
use lapin::types::FieldTable;
use voxq_shared::job::{JobKind, JobMessage};
use voxq_shared::queue::{self, Topology};

use crate::process::{process, Context, Outcome};

/// Wait before requeueing a transient failure, so a dependency outage does
/// not become a hot loop of redeliveries.
const RETRY_DELAY: Duration = Duration::from_secs(2);

pub async fn consume(
    amqp_url: &str,
    topology: &Topology,
    ctx: &Context,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let connection = queue::connect(amqp_url)
        .await
        .context("connecting to RabbitMQ")?;
    let channel = connection.create_channel().await?;
    topology.declare(&channel).await?;
    // One message at a time: inference already uses every core it is given,
    // and unacked prefetched messages would wait behind it for nothing.
    channel.basic_qos(1, BasicQosOptions::default()).await?;
    let queue_name = topology.queue(JobKind::Transcribe);
    let mut consumer = channel
        .basic_consume(
            &queue_name,
            &format!("voxq-worker-{}", uuid::Uuid::new_v4()),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    tracing::info!(queue = %queue_name, "consuming");
    tokio::pin!(shutdown);
    loop {
        let delivery = tokio::select! {
            () = &mut shutdown => break,
            next = consumer.next() => match next {
                Some(delivery) => delivery.context("receiving a delivery")?,
                None => anyhow::bail!("the broker closed the consumer"),
            },
        };
        let message: JobMessage = match serde_json::from_slice(&delivery.data) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "malformed job message; dead-lettering it");
                delivery
                    .acker
                    .reject(BasicRejectOptions { requeue: false })
                    .await?;
                continue;
            }
        };
        match process(ctx, &message).await {
            Outcome::Ack => delivery.acker.ack(BasicAckOptions::default()).await?,
            Outcome::Retry(e) => {
                tracing::warn!(job_id = %message.job_id, error = %e, "requeueing");
                tokio::time::sleep(RETRY_DELAY).await;
                delivery
                    .acker
                    .nack(BasicNackOptions {
                        requeue: true,
                        ..Default::default()
                    })
                    .await?;
            }
        }
    }
    tracing::info!("consumer stopping");
    let _ = channel.close(200, "shutdown").await;
    let _ = connection.close(200, "shutdown").await;
    Ok(())
}
