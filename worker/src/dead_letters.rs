//! Jobs whose message the broker dead-lettered. When a message reaches its
//! delivery limit (or is rejected as unreadable) the broker moves it to the
//! dead-letter exchange, and nothing would ever run its job: it would stay
//! `queued` or `running` for good and keep its quota reserved. The exchange
//! copies each such message to a sweep queue that every worker consumes;
//! a job still open there is ended `failed` (`dead_lettered`) with its
//! reservation released. The operators' dead-letter queue keeps its copy.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use lapin::Consumer;
use tokio_util::sync::CancellationToken;
use voxq_shared::job::{JobError, JobMessage};
use voxq_shared::queue::DELIVERY_LIMIT;

use crate::job::{end_failed, Context};

/// Pause before a message whose job could not be ended is offered again.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// The error a dead-lettered job ends with.
pub fn error() -> JobError {
    JobError {
        code: "dead_lettered".into(),
        message: format!(
            "the queue gave up on this job after {DELIVERY_LIMIT} deliveries without a result \
             (workers crashed or stopped while holding it); it was not billed"
        ),
    }
}

/// Ends the jobs of the sweep queue's messages until `stop` or until the
/// consumer fails (the connection's supervisor then starts over).
pub async fn sweep(
    ctx: Arc<Context>,
    mut consumer: Consumer,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    loop {
        let delivery = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            next = consumer.next() => match next {
                Some(delivery) => delivery?,
                None => anyhow::bail!("the dead-letter sweep consumer ended"),
            },
        };
        // An unreadable message names no job; its copy stays in the
        // operators' queue.
        let ended = match serde_json::from_slice::<JobMessage>(&delivery.data) {
            Ok(message) => end_failed(&ctx, &message, &error()).await.map(|_| ()),
            Err(e) => {
                tracing::warn!(error = %e, "an unreadable dead-lettered message");
                Ok(())
            }
        };
        match ended {
            Ok(()) => delivery.acker.ack(BasicAckOptions::default()).await?,
            Err(e) => {
                tracing::warn!(error = %e, "ending a dead-lettered job; trying again");
                tokio::time::sleep(RETRY_PAUSE).await;
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
}
