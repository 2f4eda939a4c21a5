//! RabbitMQ topology and the confirmed publisher.
//!
//! One durable quorum queue per served model and lane behind a direct
//! exchange, and a dead-letter exchange with its queue for messages that
//! exhaust their delivery limit. Names carry the namespace so deployments
//! and tests that share a broker never see each other's messages.
//!
//! Lanes are the scheduler: a worker consumes each lane with its own
//! inference slot, so an hour of audio on the `long` lane, or one account's
//! burst on the `bulk` lane, never holds a short interactive job behind it.

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::publisher_confirm::Confirmation;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use rand::Rng;
use tokio::sync::Mutex;

use std::collections::HashSet;

use crate::{Error, Result};

/// How many times a message may be delivered before the broker dead-letters
/// it: the guard against a message that crashes every worker it reaches.
pub const DELIVERY_LIMIT: i64 = 5;

/// Retry delays: level `n` waits `RETRY_BASE_MS * 2^n` at most (less by
/// up to half, as jitter), so levels run 2 s, 4 s … 64 s.
pub const RETRY_LEVELS: usize = 6;
pub const RETRY_BASE_MS: u64 = 2000;

/// The longest delay of a retry level (its queue's TTL).
pub fn retry_delay_ms(level: usize) -> u64 {
    RETRY_BASE_MS << level.min(RETRY_LEVELS - 1)
}

/// Longest wait for a connection, a channel and a publisher confirm.
pub const PUBLISH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct Topology {
    pub exchange: String,
    pub dead_letter_exchange: String,
    /// Every dead-lettered message, kept for operators to inspect.
    pub dead_letter_queue: String,
    /// A copy of every dead-lettered message, for workers to end the jobs
    /// the messages carried (see `voxq_worker::dead_letters`).
    pub dead_letter_sweep_queue: String,
    namespace: String,
}

impl Topology {
    pub fn new(namespace: &str) -> Self {
        Self {
            exchange: format!("{namespace}.jobs"),
            dead_letter_exchange: format!("{namespace}.jobs.dlx"),
            dead_letter_queue: format!("{namespace}.jobs.dead"),
            dead_letter_sweep_queue: format!("{namespace}.jobs.dead.sweep"),
            namespace: namespace.to_owned(),
        }
    }

    pub fn queue(&self, model: &str, lane: Lane) -> String {
        format!("{}.jobs.{}", self.namespace, Self::routing_key(model, lane))
    }

    pub fn routing_key(model: &str, lane: Lane) -> String {
        format!("{model}.{}", lane.as_str())
    }

    /// The exchange and queue where a retry waits out its delay at `level`
    /// (one name for both).
    pub fn retry_queue(&self, level: usize) -> String {
        format!("{}.jobs.retry.{level}", self.namespace)
    }

    /// Every retry queue and exchange name.
    pub fn retry_queues(&self) -> Vec<String> {
        (0..RETRY_LEVELS).map(|l| self.retry_queue(l)).collect()
    }

    /// Declares the exchanges and the dead-letter queue; idempotent, so
    /// every process runs it at start.
    pub async fn declare(&self, channel: &Channel) -> Result<()> {
        let durable_exchange = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        channel
            .exchange_declare(
                &self.exchange,
                ExchangeKind::Direct,
                durable_exchange,
                FieldTable::default(),
            )
            .await?;
        channel
            .exchange_declare(
                &self.dead_letter_exchange,
                ExchangeKind::Fanout,
                durable_exchange,
                FieldTable::default(),
            )
            .await?;
        let durable_queue = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        let mut dead_args = FieldTable::default();
        dead_args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
        // The exchange is a fanout: each queue gets every message.
        for queue in [&self.dead_letter_queue, &self.dead_letter_sweep_queue] {
            channel
                .queue_declare(queue, durable_queue, dead_args.clone())
                .await?;
            channel
                .queue_bind(
                    queue,
                    &self.dead_letter_exchange,
                    "",
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
        // Delayed requeue without a broker plugin: a retry waits in the
        // queue of its level until its TTL, then is dead-lettered back to
        // the jobs exchange under its own routing key, into its own queue.
        for level in 0..RETRY_LEVELS {
            let name = self.retry_queue(level);
            channel
                .exchange_declare(
                    &name,
                    ExchangeKind::Fanout,
                    durable_exchange,
                    FieldTable::default(),
                )
                .await?;
            let mut args = FieldTable::default();
            args.insert(
                "x-message-ttl".into(),
                AMQPValue::LongLongInt(retry_delay_ms(level) as i64),
            );
            args.insert(
                "x-dead-letter-exchange".into(),
                AMQPValue::LongString(self.exchange.as_str().into()),
            );
            channel.queue_declare(&name, durable_queue, args).await?;
            channel
                .queue_bind(
                    &name,
                    &name,
                    "",
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
        Ok(())
    }

    /// Declares and binds the lane queues of one model; idempotent. The
    /// broker's answers carry each queue's depth, returned for the metrics.
    pub async fn declare_model(&self, channel: &Channel, model: &str) -> Result<Vec<QueueDepth>> {
        let durable_queue = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        let mut depths = Vec::with_capacity(Lane::ALL.len());
        for lane in Lane::ALL {
            let mut args = FieldTable::default();
            args.insert(
                "x-queue-type".into(),
                AMQPValue::LongString("quorum".into()),
            );
            args.insert(
                "x-dead-letter-exchange".into(),
                AMQPValue::LongString(self.dead_letter_exchange.as_str().into()),
            );
            args.insert(
                "x-delivery-limit".into(),
                AMQPValue::LongLongInt(DELIVERY_LIMIT),
            );
            let queue = self.queue(model, lane);
            let declared = channel.queue_declare(&queue, durable_queue, args).await?;
            channel
                .queue_bind(
                    &queue,
                    &self.exchange,
                    &Self::routing_key(model, lane),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            depths.push(QueueDepth {
                queue,
                model: model.to_owned(),
                lane,
                ready: declared.message_count(),
                consumers: declared.consumer_count(),
            });
        }
        Ok(depths)
    }
}

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

/// Which of a model's queues a job waits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane {
    /// Short jobs of accounts within their fair share.
    Interactive,
    /// Jobs of an account that already has many in flight.
    Bulk,
    /// Long audio.
    Long,
}

impl Lane {
    pub const ALL: [Lane; 3] = [Lane::Interactive, Lane::Bulk, Lane::Long];

    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Interactive => "interactive",
            Lane::Bulk => "bulk",
            Lane::Long => "long",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str() == value)
    }
}

pub async fn connect(url: &str) -> Result<Connection> {
    let properties = ConnectionProperties::default()
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio);
    Ok(Connection::connect(url, properties).await?)
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
