//! Job state changes on Redis pub/sub: what wakes long-polls and
//! server-sent event streams on every API instance. Best effort by
//! design: Postgres holds the state, an event only says "look again", and
//! a listener that may have missed some (a Redis reconnect) is told so.

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::job::JobStatus;
pub use crate::job::Progress;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobEvent {
    pub job_id: Uuid,
    pub account_id: Uuid,
    pub status: JobStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
}

/// What a listener receives.
#[derive(Debug, Clone)]
pub enum Signal {
    Job(JobEvent),
    /// Events may have been lost (Redis reconnected, or the listener fell
    /// behind): read the state again.
    Resync,
}

fn channel(namespace: &str) -> String {
    format!("{namespace}:events")
}

/// Publishes job events.
#[derive(Clone)]
pub struct Events {
    redis: redis::aio::ConnectionManager,
    channel: String,
}

impl Events {
    pub fn new(redis: redis::aio::ConnectionManager, namespace: &str) -> Self {
        Self {
            redis,
            channel: channel(namespace),
        }
    }

    /// Publishes; a failure is logged, never the caller's problem (the
    /// state is in Postgres, and waiters time out and read it).
    pub async fn publish(&self, event: &JobEvent) {
        let Ok(payload) = serde_json::to_string(event) else {
            return;
        };
        let sent: redis::RedisResult<i64> = redis::cmd("PUBLISH")
            .arg(&self.channel)
            .arg(payload)
            .query_async(&mut self.redis.clone())
            .await;
        if let Err(e) = sent {
            tracing::warn!(job_id = %event.job_id, error = %e, "publishing a job event");
        }
    }
}

/// One Redis subscription per process, fanned out to every listener.
#[derive(Clone)]
pub struct EventHub {
    sender: broadcast::Sender<Signal>,
}

impl EventHub {
    /// Subscribes in the background, reconnecting forever.
    pub fn start(redis_url: &str, namespace: &str) -> redis::RedisResult<Self> {
        let client = redis::Client::open(redis_url)?;
        let (sender, _) = broadcast::channel(4096);
        let hub = Self { sender };
        let forward = hub.sender.clone();
        let channel = channel(namespace);
        tokio::spawn(async move {
            let mut backoff = std::time::Duration::from_millis(200);
            loop {
                match listen(&client, &channel, &forward).await {
                    Ok(()) => backoff = std::time::Duration::from_millis(200),
                    Err(e) => tracing::warn!(error = %e, "job event subscription lost"),
                }
                let _ = forward.send(Signal::Resync);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(std::time::Duration::from_secs(5));
            }
        });
        Ok(hub)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Signal> {
        self.sender.subscribe()
    }
}

async fn listen(
    client: &redis::Client,
    channel: &str,
    forward: &broadcast::Sender<Signal>,
) -> redis::RedisResult<()> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    // Anything published before the subscription took effect was missed.
    let _ = forward.send(Signal::Resync);
    let mut messages = pubsub.on_message();
    while let Some(message) = messages.next().await {
        let payload: String = message.get_payload()?;
        match serde_json::from_str::<JobEvent>(&payload) {
            Ok(event) => {
                let _ = forward.send(Signal::Job(event));
            }
            Err(e) => tracing::warn!(error = %e, "malformed job event"),
        }
    }
    Ok(())
}

/// Waits for the next signal about `job_id`: its event, or a resync
/// (which also covers a listener that fell behind). `None` when the hub
/// is gone.
pub async fn next_for(receiver: &mut broadcast::Receiver<Signal>, job_id: Uuid) -> Option<Signal> {
    loop {
        match receiver.recv().await {
            Ok(Signal::Job(event)) if event.job_id == job_id => return Some(Signal::Job(event)),
            Ok(Signal::Job(_)) => {}
            Ok(Signal::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => {
                return Some(Signal::Resync)
            }
            Err(broadcast::error::RecvError::Closed) => return None,
        }
    }
}
