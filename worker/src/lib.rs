//! voxq's inference worker: RabbitMQ consumer, audio decoding and the
//! inference engines. The binary runs [`entry::main`], which parses the
//! configuration and calls [`Worker::build`] and [`Worker::run`] (or a
//! benchmark command, in [`bench`]).

pub mod bench;
pub mod chaos;
pub mod config;
pub mod consumer;
pub mod cpu_backend;
pub mod dead_letters;
pub mod engine;
pub mod entry;
pub mod job;
pub mod metrics;
pub mod models;
pub mod presence;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use voxq_shared::cache::JobCache;
use voxq_shared::events::Events;
use voxq_shared::queue::{Publisher, Topology};
use voxq_shared::quota::Quotas;
use voxq_shared::registry::{Registry, WorkerStatus};

use crate::config::WorkerConfig;
use crate::metrics::Metrics;

/// A worker with its models loaded, its stores connected and its metrics
/// listener bound, ready to [`run`](Worker::run).
pub struct Worker {
    ctx: Arc<job::Context>,
    status: WorkerStatus,
    listener: TcpListener,
    amqp_url: String,
    topology: Topology,
    lanes: consumer::Lanes,
}

impl Worker {
    /// Loads the models (a model that fails is reported, not fatal, unless
    /// none loads), connects to Postgres and Redis and binds the metrics
    /// listener. RabbitMQ is reached in [`run`](Worker::run), whose
    /// consumers reconnect by themselves.
    pub async fn build(config: WorkerConfig) -> anyhow::Result<Self> {
        // Before loading models: a chaos setting this build cannot honour
        // is refused at once.
        config.chaos.check()?;
        let models = models::load_models(&config).await?;
        let db = voxq_shared::db::connect(&config.common.database_url, 4)
            .await
            .context("connecting to Postgres")?;
        let redis = voxq_shared::cache::connect(&config.common.redis_url)
            .await
            .context("connecting to Redis")?;
        let metrics = Arc::new(Metrics::new()?);
        let namespace = &config.common.namespace;
        let topology = Topology::new(namespace);
        let status = presence::status(&models);
        let listener = TcpListener::bind(config.metrics_bind)
            .await
            .with_context(|| format!("binding {}", config.metrics_bind))?;
        let ctx = Arc::new(job::Context {
            db,
            cache: JobCache::new(redis.clone(), namespace, config.result_cache_ttl),
            quotas: Quotas::new(redis.clone(), namespace),
            models: models.served,
            vad: models.vad,
            vad_auto_seconds: config.vad_auto_seconds,
            registry: Registry::new(redis.clone(), namespace),
            metrics,
            max_attempts: config.max_attempts.max(1),
            retries: Publisher::new(&config.common.amqp_url, topology.clone()),
            events: Events::new(redis.clone(), namespace),
            interrupt: CancellationToken::new(),
            lease_seconds: config.lease_seconds.max(1) as f64,
            fetcher: job::fetch::Fetcher {
                guard: config.fetch.guard(),
                timeout: Duration::from_secs(config.fetch_timeout),
                max_bytes: config.max_upload_bytes,
            },
            max_audio_seconds: config.max_audio_seconds,
            #[cfg(feature = "chaos")]
            faults: config.chaos.faults(),
            held: job::Held::default(),
        });
        Ok(Self {
            ctx,
            status,
            listener,
            amqp_url: config.common.amqp_url.clone(),
            topology,
            lanes: consumer::Lanes {
                lanes: config.lanes.clone(),
                batch_window: Duration::from_millis(config.batch_window_ms),
                shutdown_grace: Duration::from_secs(config.shutdown_grace),
            },
        })
    }

    /// The port of the metrics listener (`/metrics`, `/health/live`).
    pub fn metrics_port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Announces the worker, serves the metrics listener and consumes jobs
    /// until `shutdown` resolves or a task fails; reports which one ended.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let Self {
            ctx,
            status,
            listener,
            amqp_url,
            topology,
            lanes,
        } = self;
        let metrics = ctx.metrics.clone();
        let registry = ctx.registry.clone();
        // Announced before the listener logs its address: once a worker says
        // it listens, the API accepts jobs for its models.
        for model in &status.models {
            metrics
                .model_loaded
                .with_label_values(&[&model.name, &model.engine])
                .set(1);
        }
        presence::announce(&registry, &status, &metrics).await?;
        let heartbeat = presence::heartbeat(registry.clone(), status.clone(), metrics.clone());
        let addr = listener.local_addr()?;
        tracing::info!(%addr, models = ?ctx.models.keys().collect::<Vec<_>>(), "voxq-worker metrics listening");
        let http = axum::serve(
            listener,
            metrics::router(metrics.clone(), Arc::new(status.clone())),
        );
        let stop = CancellationToken::new();
        let consume = consumer::supervise(&amqp_url, &topology, ctx, lanes, stop.clone());
        let signal = async {
            shutdown.await;
            stop.cancel();
            std::future::pending::<()>().await
        };
        // The consumers end only when stopped (they reconnect by themselves);
        // the listener and heartbeat keep the worker visible while it drains.
        let outcome = tokio::select! {
            res = consume => res.context("consumer ended"),
            res = http => res.context("metrics listener ended"),
            res = heartbeat => res.context("heartbeat ended"),
            () = signal => Ok(()),
        };
        if let Err(e) = registry.withdraw(&status.id).await {
            tracing::warn!(error = %e, "withdrawing from the worker registry");
        }
        outcome
    }
}
