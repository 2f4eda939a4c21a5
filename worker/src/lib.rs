//! voxq's inference worker: RabbitMQ consumer, audio decoding and the
//! inference engines.

pub mod config;
pub mod consumer;
pub mod engine;
pub mod metrics;
pub mod process;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context as _;
use voxq_shared::cache::JobCache;
use voxq_shared::queue::Topology;
use voxq_shared::quota::Quotas;

use crate::config::{ModelConfig, WorkerConfig};
use crate::engine::ct2_whisper::{Ct2Whisper, Ct2WhisperConfig};
use crate::engine::Engine;
use crate::metrics::Metrics;

pub fn load_engine(model: &ModelConfig) -> anyhow::Result<Arc<dyn Engine>> {
    let engine = Ct2Whisper::load(Ct2WhisperConfig {
        name: &model.model_name,
        path: &model.model_dir,
        device: model.device.into(),
        compute_type: model.compute_type.into(),
        threads: model.threads(),
        beam_size: model.beam_size,
    })?;
    Ok(Arc::new(engine))
}

/// Serves the metrics listener and consumes jobs until `shutdown` resolves
/// or either task fails; reports which one ended.
pub async fn run(
    config: WorkerConfig,
    engine: Arc<dyn Engine>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let db = voxq_shared::db::connect(&config.common.database_url, 4)
        .await
        .context("connecting to Postgres")?;
    let redis = voxq_shared::cache::connect(&config.common.redis_url)
        .await
        .context("connecting to Redis")?;
    let metrics = Arc::new(Metrics::new()?);
    let listener = tokio::net::TcpListener::bind(config.metrics_bind)
        .await
        .with_context(|| format!("binding {}", config.metrics_bind))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, model = engine.model_name(), "voxq-worker metrics listening");
    let http = axum::serve(
        listener,
        metrics::router(metrics.clone(), engine.model_name().to_owned()),
    );
    let ctx = process::Context {
        db,
        cache: JobCache::new(
            redis.clone(),
            &config.common.namespace,
            config.result_cache_ttl,
        ),
        quotas: Quotas::new(redis, &config.common.namespace),
        engine,
        metrics,
        max_attempts: config.max_attempts.max(1),
    };
    let topology = Topology::new(&config.common.namespace);
    let consume = consumer::consume(&config.common.amqp_url, &topology, &ctx, shutdown);
    tokio::select! {
        res = consume => res.context("consumer ended"),
        res = http => res.context("metrics listener ended"),
    }
}
