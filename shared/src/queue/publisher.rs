//! The confirmed publisher: one connection and channel, reopened after the
//! broker goes away, publishing with confirms; and the queue depths read
//! from the broker's answers to idempotent declares.

use std::collections::HashSet;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::publisher_confirm::Confirmation;
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection};
use rand::Rng;
use tokio::sync::Mutex;

use super::{connect, retry_delay_ms, Lane, Topology, PUBLISH_TIMEOUT, RETRY_LEVELS};
use crate::{Error, Result};

/// One queue as the broker reports it when declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDepth {
    pub queue: String,
    pub model: String,
    pub lane: Lane,
    /// Messages waiting for a consumer (not those delivered and unacknowledged).
    pub ready: u32,
    /// Consumers attached: none means no live worker takes this queue.
    pub consumers: u32,
}

/// The queues of some models and the dead-letter queue, read at once.
#[derive(Debug, Clone, Default)]
pub struct Depths {
    pub queues: Vec<QueueDepth>,
    pub dead_letters: u32,
}

/// Publishes job messages with publisher confirms. The channel is opened on
/// first use and reopened after the broker goes away, so one outage does not
/// need an API restart.
pub struct Publisher {
    url: String,
    topology: Topology,
    live: Mutex<Option<Live>>,
}

struct Live {
    connection: Connection,
    channel: Channel,
    /// Models whose queues this channel's connection has declared.
    declared: HashSet<String>,
}

impl Publisher {
    pub fn new(url: &str, topology: Topology) -> Self {
        Self {
            url: url.to_owned(),
            topology,
            live: Mutex::new(None),
        }
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Closes the connection cleanly, so a stopping process leaves no
    /// "connection reset" behind in its own log or the broker's. Bounded:
    /// a broker that does not answer is left to notice on its own.
    pub async fn close(&self) {
        let Some(live) = self.live.lock().await.take() else {
            return;
        };
        let closing = live.connection.close(200, "voxq stopping");
        if let Ok(Err(e)) = tokio::time::timeout(PUBLISH_TIMEOUT, closing).await {
            tracing::debug!(error = %e, "closing the RabbitMQ connection");
        }
    }

    /// A connected channel with confirms on and the exchanges declared.
    pub async fn channel(&self) -> Result<Channel> {
        self.channel_with(None).await
    }

    /// As `channel`, with `model`'s queues declared too.
    async fn channel_with(&self, model: Option<&str>) -> Result<Channel> {
        let mut guard = self.live.lock().await;
        let live = self.reconnect(&mut guard).await?;
        if let Some(model) = model.filter(|m| !live.declared.contains(*m)) {
            // Workers declare their queues too; declaring here as well means
            // a job accepted while its workers are scaled to zero still has
            // a queue to wait in.
            self.topology.declare_model(&live.channel, model).await?;
            live.declared.insert(model.to_owned());
        }
        Ok(live.channel.clone())
    }

    /// The live connection and confirm channel, opened again when either
    /// has gone.
    async fn reconnect<'a>(&self, guard: &'a mut Option<Live>) -> Result<&'a mut Live> {
        let reusable = guard
            .as_ref()
            .is_some_and(|l| l.connection.status().connected() && l.channel.status().connected());
        if !reusable {
            *guard = None;
            let connection = connect(&self.url).await?;
            let channel = connection.create_channel().await?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            self.topology.declare(&channel).await?;
            *guard = Some(Live {
                connection,
                channel,
                declared: HashSet::new(),
            });
        }
        guard.as_mut().ok_or(Error::NotConfirmed)
    }

    /// How deep `models`' queues and the dead-letter queue are, read on a
    /// channel of its own (a slow or failed reading never disturbs a
    /// publish) and bounded by [`PUBLISH_TIMEOUT`] in all. Each reading
    /// declares the queues with their usual arguments: idempotent, and a
    /// missing queue is created, as the submit path would.
    pub async fn depths(&self, models: &[String]) -> Result<Depths> {
        let deadline = tokio::time::Instant::now() + PUBLISH_TIMEOUT;
        let timed_out = || Error::Timeout("the message broker");
        let open = async {
            let mut guard = self.live.lock().await;
            let live = self.reconnect(&mut guard).await?;
            Ok::<_, Error>(live.connection.create_channel().await?)
        };
        let channel = tokio::time::timeout_at(deadline, open)
            .await
            .unwrap_or_else(|_| Err(timed_out()))?;
        let read = tokio::time::timeout_at(deadline, self.read_depths(&channel, models))
            .await
            .unwrap_or_else(|_| Err(timed_out()));
        // Closed however the reading ended: a channel left open by each
        // failed scrape would pile up on the connection.
        let closing = channel.close(200, "read");
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), closing).await;
        read
    }

    async fn read_depths(&self, channel: &Channel, models: &[String]) -> Result<Depths> {
        let mut depths = Depths::default();
        for model in models {
            let queues = self.topology.declare_model(channel, model).await?;
            depths.queues.extend(queues);
        }
        let dead = channel
            .queue_declare(
                &self.topology.dead_letter_queue,
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        depths.dead_letters = dead.message_count();
        Ok(depths)
    }

    /// Publishes a serialised job message (the submit path's and the
    /// outbox relay's) and returns once the broker has confirmed that it is
    /// stored in its queue. An unroutable message (returned under
    /// `mandatory`) or a nack is an error, never a success.
    pub async fn publish_raw(
        &self,
        model: &str,
        routing_key: &str,
        payload: &[u8],
        job_id: uuid::Uuid,
    ) -> Result<()> {
        let exchange = self.topology.exchange.clone();
        self.send(Some(model), &exchange, routing_key, payload, job_id, None)
            .await
    }

    /// Publishes a job's message again for its next attempt, with
    /// exponential backoff and jitter: after attempt `attempts` (from 1) it
    /// waits between half and all of 2^(attempts-1) × the base delay in
    /// that level's retry queue, then goes back into the queue
    /// `routing_key` names. Returns the delay in milliseconds.
    pub async fn publish_retry(
        &self,
        attempts: i32,
        routing_key: &str,
        payload: &[u8],
        job_id: uuid::Uuid,
    ) -> Result<u64> {
        let level = usize::try_from(attempts.max(1) - 1)
            .unwrap_or(0)
            .min(RETRY_LEVELS - 1);
        let delay = (retry_delay_ms(level) as f64 * rand::thread_rng().gen_range(0.5..1.0)) as u64;
        let exchange = self.topology.retry_queue(level);
        self.send(None, &exchange, routing_key, payload, job_id, Some(delay))
            .await?;
        Ok(delay)
    }

    /// Puts a message in the dead-letter queue directly (for a job whose
    /// delivery was already acknowledged, so it cannot be rejected there).
    pub async fn publish_dead(
        &self,
        routing_key: &str,
        payload: &[u8],
        job_id: uuid::Uuid,
    ) -> Result<()> {
        let exchange = self.topology.dead_letter_exchange.clone();
        self.send(None, &exchange, routing_key, payload, job_id, None)
            .await
    }

    /// Publishes and waits for the confirm. Gives up after
    /// [`PUBLISH_TIMEOUT`]: a broker that accepts connections but never
    /// confirms must not hold the caller.
    async fn send(
        &self,
        model: Option<&str>,
        exchange: &str,
        routing_key: &str,
        payload: &[u8],
        job_id: uuid::Uuid,
        expiration_ms: Option<u64>,
    ) -> Result<()> {
        let publish = async {
            let channel = self.channel_with(model).await?;
            let mut properties = BasicProperties::default()
                .with_delivery_mode(2)
                .with_content_type(ShortString::from("application/json"))
                .with_message_id(ShortString::from(job_id.to_string()));
            if let Some(ms) = expiration_ms {
                properties = properties.with_expiration(ShortString::from(ms.to_string()));
            }
            let confirm = channel
                .basic_publish(
                    exchange,
                    routing_key,
                    BasicPublishOptions {
                        mandatory: true,
                        ..Default::default()
                    },
                    payload,
                    properties,
                )
                .await?
                .await?;
            match confirm {
                Confirmation::Ack(None) => Ok(()),
                // Returned as unroutable, refused, or confirms not on: not stored.
                Confirmation::Ack(Some(_)) | Confirmation::Nack(_) | Confirmation::NotRequested => {
                    Err(Error::NotConfirmed)
                }
            }
        };
        match tokio::time::timeout(PUBLISH_TIMEOUT, publish).await {
            Ok(result) => result,
            Err(_) => {
                // Whatever state the channel is in, start over next time.
                *self.live.lock().await = None;
                Err(Error::NotConfirmed)
            }
        }
    }
}
