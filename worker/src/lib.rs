//! voxq's inference worker: RabbitMQ consumer, audio decoding and the
//! inference engines.

pub mod config;
pub mod consumer;
pub mod cpu_backend;
pub mod dead_letters;
pub mod engine;
pub mod job;
pub mod metrics;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use voxq_shared::cache::JobCache;
use voxq_shared::events::Events;
use voxq_shared::models::{ModelFailure, Registry, WorkerStatus, HEARTBEAT_SECONDS};
use voxq_shared::queue::{Publisher, Topology};
use voxq_shared::quota::Quotas;

use crate::config::{EngineKind, ModelSpec, WorkerConfig};
use crate::engine::ct2_translate::Ct2Translate;
use crate::engine::ct2_whisper::Ct2Whisper;
use crate::engine::vad::Vad;
use crate::engine::whisper_cpp::WhisperCpp;
use crate::engine::Engine;
use crate::metrics::Metrics;

/// A loaded model and how the worker batches its jobs.
#[derive(Clone)]
pub struct Served {
    pub engine: Arc<dyn Engine>,
    pub batch_size: usize,
}

/// What the worker could load; it runs degraded if `failed` is not empty.
pub struct Models {
    pub served: HashMap<String, Served>,
    pub failed: Vec<ModelFailure>,
    /// Voice activity detection, when `VOXQ_VAD_MODEL` is set.
    pub vad: Option<Arc<Vad>>,
}

pub fn load_engine(spec: &ModelSpec, replicas: usize) -> anyhow::Result<Arc<dyn Engine>> {
    let engine: Arc<dyn Engine> = match spec.engine {
        EngineKind::Ct2Whisper => Arc::new(Ct2Whisper::load(spec, replicas)?),
        EngineKind::WhisperCpp => Arc::new(WhisperCpp::load(spec)?),
        EngineKind::Ct2Translate => Arc::new(Ct2Translate::load(spec, replicas)?),
    };
    Ok(engine)
}

/// Loads every model, retrying each a few times with growing pauses; a
/// model that still fails is reported, not fatal, unless none loads.
pub async fn load_models(config: &WorkerConfig) -> anyhow::Result<Models> {
    let specs = config.model_specs()?;
    // One model copy per lane, so the lanes run side by side.
    let replicas = config.lanes.len().max(1);
    let vad = match config.vad_model.clone() {
        Some(path) => {
            let vad = tokio::task::spawn_blocking(move || Vad::load(&path))
                .await
                .map_err(|e| anyhow::anyhow!("loading the VAD model crashed: {e}"))??;
            tracing::info!("voice activity detection model loaded");
            Some(Arc::new(vad))
        }
        None => {
            tracing::warn!("no VOXQ_VAD_MODEL: jobs run without voice activity detection");
            None
        }
    };
    let mut models = Models {
        served: HashMap::new(),
        failed: Vec::new(),
        vad,
    };
    for spec in specs {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let job_spec = spec.clone();
            // Loading reads hundreds of megabytes: keep it off the executor.
            let loaded = tokio::task::spawn_blocking(move || load_engine(&job_spec, replicas))
                .await
                .map_err(|e| anyhow::anyhow!("loading crashed: {e}"))
                .and_then(|r| r);
            match loaded {
                Ok(engine) => {
                    tracing::info!(model = %spec.name, engine = ?spec.engine, "model loaded");
                    models.served.insert(
                        spec.name.clone(),
                        Served {
                            engine,
                            batch_size: spec.batch_size,
                        },
                    );
                    break;
                }
                Err(e) if attempt < config.model_load_attempts.max(1) => {
                    tracing::warn!(model = %spec.name, attempt, error = format!("{e:#}"), "loading model failed; retrying");
                    tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
                }
                Err(e) => {
                    tracing::error!(model = %spec.name, error = format!("{e:#}"), "model unavailable; running without it");
                    models.failed.push(ModelFailure {
                        name: spec.name.clone(),
                        error: format!("{e:#}"),
                    });
                    break;
                }
            }
        }
    }
    anyhow::ensure!(
        !models.served.is_empty(),
        "no model could be loaded: {:?}",
        models.failed
    );
    Ok(models)
}

/// Announces the worker, serves the metrics listener and consumes jobs
/// until `shutdown` resolves or a task fails; reports which one ended.
pub async fn run(
    config: WorkerConfig,
    models: Models,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let db = voxq_shared::db::connect(&config.common.database_url, 4)
        .await
        .context("connecting to Postgres")?;
    let redis = voxq_shared::cache::connect(&config.common.redis_url)
        .await
        .context("connecting to Redis")?;
    let metrics = Arc::new(Metrics::new()?);
    let topology = Topology::new(&config.common.namespace);
    let mut infos: Vec<_> = models
        .served
        .values()
        .map(|s| s.engine.info().clone())
        .collect();
    infos.sort_by(|a, b| a.name.cmp(&b.name));
    let status = WorkerStatus {
        id: format!("worker-{}", uuid::Uuid::new_v4()),
        models: infos,
        failed: models.failed.clone(),
        seen_at_ms: 0,
    };
    let registry = Registry::new(redis.clone(), &config.common.namespace);
    // Announced before the listener logs its address: once a worker says
    // it listens, the API accepts jobs for its models.
    for model in &status.models {
        metrics
            .model_loaded
            .with_label_values(&[&model.name, &model.engine])
            .set(1);
    }
    announce(&registry, &status, &metrics).await?;
    let heartbeat = heartbeat(registry.clone(), status.clone(), metrics.clone());

    let listener = tokio::net::TcpListener::bind(config.metrics_bind)
        .await
        .with_context(|| format!("binding {}", config.metrics_bind))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, models = ?models.served.keys().collect::<Vec<_>>(), "voxq-worker metrics listening");
    let http = axum::serve(
        listener,
        metrics::router(metrics.clone(), Arc::new(status.clone())),
    );
    let ctx = Arc::new(job::Context {
        db,
        cache: JobCache::new(
            redis.clone(),
            &config.common.namespace,
            config.result_cache_ttl,
        ),
        quotas: Quotas::new(redis.clone(), &config.common.namespace),
        models: models.served,
        vad: models.vad,
        vad_auto_seconds: config.vad_auto_seconds,
        registry: registry.clone(),
        metrics,
        max_attempts: config.max_attempts.max(1),
        retries: Publisher::new(&config.common.amqp_url, topology.clone()),
        events: Events::new(redis.clone(), &config.common.namespace),
        interrupt: CancellationToken::new(),
        lease_seconds: config.lease_seconds.max(1) as f64,
        fetcher: job::fetch::Fetcher {
            guard: config.fetch.guard(),
            timeout: Duration::from_secs(config.fetch_timeout),
            max_bytes: config.max_upload_bytes,
        },
        max_audio_seconds: config.max_audio_seconds,
        chaos_abort_on: config
            .chaos_abort_on
            .as_ref()
            .filter(|m| !m.is_empty())
            .map(|m| m.as_bytes().to_vec()),
        held: job::Held::default(),
    });
    let stop = CancellationToken::new();
    let consume = consumer::supervise(
        &config.common.amqp_url,
        &topology,
        ctx,
        consumer::Lanes {
            lanes: config.lanes.clone(),
            batch_window: Duration::from_millis(config.batch_window_ms),
            shutdown_grace: Duration::from_secs(config.shutdown_grace),
        },
        stop.clone(),
    );
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

async fn announce(
    registry: &Registry,
    status: &WorkerStatus,
    metrics: &Metrics,
) -> anyhow::Result<()> {
    let now = chrono::Utc::now();
    let status = WorkerStatus {
        seen_at_ms: now.timestamp_millis(),
        ..status.clone()
    };
    registry
        .announce(&status)
        .await
        .context("announcing the worker")?;
    metrics
        .heartbeat
        .set(now.timestamp_millis() as f64 / 1000.0);
    Ok(())
}

/// Re-announces the worker every few seconds; a Redis hiccup is logged and
/// retried, never fatal (the API falls back to standby models).
async fn heartbeat(
    registry: Registry,
    status: WorkerStatus,
    metrics: Arc<Metrics>,
) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval(Duration::from_secs(HEARTBEAT_SECONDS));
    loop {
        tick.tick().await;
        if let Err(e) = announce(&registry, &status, &metrics).await {
            tracing::warn!(error = format!("{e:#}"), "heartbeat");
        }
    }
}
