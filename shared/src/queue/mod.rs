//! RabbitMQ topology: one queue per model and lane, the retry and
//! dead-letter exchanges, and the names that tie them together; the
//! confirmed [`publisher`] and the one builder of job [`message`]s.
//!
//! One durable quorum queue per served model and lane behind a direct
//! exchange, and a dead-letter exchange with its queue for messages that
//! exhaust their delivery limit. Names carry the namespace so deployments
//! and tests that share a broker never see each other's messages.
//!
//! Lanes are the scheduler: a worker consumes each lane with its own
//! inference slot, so an hour of audio on the `long` lane, or one account's
//! burst on the `bulk` lane, never holds a short interactive job behind it.

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};

use crate::Result;

pub mod message;
pub mod publisher;

pub use message::Outgoing;
pub use publisher::{Depths, Publisher, QueueDepth};

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
