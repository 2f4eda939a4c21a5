//! RabbitMQ topology and the confirmed publisher.
//!
//! One durable quorum queue per job kind behind a direct exchange, and a
//! dead-letter exchange with its queue for messages that exhaust their
//! delivery limit. Names carry the namespace so deployments and tests that
//! share a broker never see each other's messages.

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::publisher_confirm::Confirmation;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::Mutex;

use crate::job::{JobKind, JobMessage};
use crate::{Error, Result};

/// How many times a message may be delivered before the broker dead-letters
/// it: the guard against a message that crashes every worker it reaches.
pub const DELIVERY_LIMIT: i64 = 5;

#[derive(Debug, Clone)]
pub struct Topology {
    pub exchange: String,
    pub dead_letter_exchange: String,
    pub dead_letter_queue: String,
    namespace: String,
}

impl Topology {
    pub fn new(namespace: &str) -> Self {
        Self {
            exchange: format!("{namespace}.jobs"),
            dead_letter_exchange: format!("{namespace}.jobs.dlx"),
            dead_letter_queue: format!("{namespace}.jobs.dead"),
            namespace: namespace.to_owned(),
        }
    }

    pub fn queue(&self, kind: JobKind) -> String {
        format!("{}.jobs.{}", self.namespace, kind.as_str())
    }

    /// Declares everything; idempotent, so every process runs it at start.
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
        channel
            .queue_declare(&self.dead_letter_queue, durable_queue, dead_args)
            .await?;
        channel
            .queue_bind(
                &self.dead_letter_queue,
                &self.dead_letter_exchange,
                "",
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        for kind in JobKind::ALL {
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
            let queue = self.queue(kind);
            channel.queue_declare(&queue, durable_queue, args).await?;
            channel
                .queue_bind(
                    &queue,
                    &self.exchange,
                    kind.as_str(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
        Ok(())
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
    live: Mutex<Option<(Connection, Channel)>>,
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

    /// A connected channel with confirms on and the topology declared.
    pub async fn channel(&self) -> Result<Channel> {
        let mut live = self.live.lock().await;
        if let Some((conn, channel)) = live.as_ref() {
            if conn.status().connected() && channel.status().connected() {
                return Ok(channel.clone());
            }
        }
        *live = None;
        let conn = connect(&self.url).await?;
        let channel = conn.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        self.topology.declare(&channel).await?;
        *live = Some((conn, channel.clone()));
        Ok(channel)
    }

    /// Returns once the broker has confirmed that the message is stored in
    /// its queue. An unroutable message (returned under `mandatory`) or a
    /// nack is an error, never a success.
    pub async fn publish(&self, message: &JobMessage) -> Result<()> {
        let payload = serde_json::to_vec(message)?;
        let channel = self.channel().await?;
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type(ShortString::from("application/json"))
            .with_message_id(ShortString::from(message.job_id.to_string()));
        let confirm = channel
            .basic_publish(
                &self.topology.exchange,
                message.kind.as_str(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                &payload,
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
    }
}
