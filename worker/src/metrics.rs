//! The worker's Prometheus metrics and its small HTTP listener.

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use serde_json::json;
use std::sync::Arc;

use voxq_shared::registry::WorkerStatus;

pub struct Metrics {
    registry: Registry,
    pub processed: IntCounterVec,
    pub failed: IntCounterVec,
    pub skipped: IntCounterVec,
    pub inference_seconds: HistogramVec,
    pub real_time_factor: HistogramVec,
    pub cache_hits: IntCounterVec,
    pub batch_jobs: HistogramVec,
    pub reconnects: IntCounter,
    pub stopped: IntCounterVec,
    pub handed_back: IntCounter,
    /// A job's time split: `queue_wait` (acceptance to claim), `prepare`
    /// (claim, load, fetch, decode), `inference`, `write` (result, usage,
    /// events).
    pub phase_seconds: HistogramVec,
    pub model_loaded: IntGaugeVec,
    pub in_progress: IntGaugeVec,
    pub heartbeat: Gauge,
}

/// The phases of [`Metrics::phase_seconds`].
#[derive(Debug, Clone, Copy)]
pub enum Phase {
    QueueWait,
    Prepare,
    Inference,
    Write,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Phase::QueueWait => "queue_wait",
            Phase::Prepare => "prepare",
            Phase::Inference => "inference",
            Phase::Write => "write",
        }
    }
}

impl Metrics {
    pub fn new() -> prometheus::Result<Self> {
        let registry = Registry::new_custom(Some("voxq_worker".into()), None)?;
        let processed = IntCounterVec::new(
            Opts::new("jobs_processed_total", "Jobs that succeeded, by kind"),
            &["kind"],
        )?;
        let failed = IntCounterVec::new(
            Opts::new(
                "jobs_failed_total",
                "Jobs that ended failed, by kind and reason",
            ),
            &["kind", "reason"],
        )?;
        let skipped = IntCounterVec::new(
            Opts::new(
                "jobs_skipped_total",
                "Deliveries acknowledged without work because the job had already ended",
            ),
            &["kind"],
        )?;
        let inference_seconds = HistogramVec::new(
            HistogramOpts::new("inference_seconds", "Wall time of one inference call").buckets(
                vec![
                    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
                ],
            ),
            &["kind", "model"],
        )?;
        let real_time_factor = HistogramVec::new(
            HistogramOpts::new(
                "real_time_factor",
                "Processing seconds per second of audio (below 1 is faster than real time)",
            )
            .buckets(vec![0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0]),
            &["model"],
        )?;
        for c in [&processed, &failed, &skipped] {
            registry.register(Box::new(c.clone()))?;
        }
        let cache_hits = IntCounterVec::new(
            Opts::new(
                "cache_hits_total",
                "Jobs answered from the result cache, by kind",
            ),
            &["kind"],
        )?;
        let batch_jobs = HistogramVec::new(
            HistogramOpts::new("batch_jobs", "Jobs per inference call")
                .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0]),
            &["model"],
        )?;
        registry.register(Box::new(cache_hits.clone()))?;
        registry.register(Box::new(batch_jobs.clone()))?;
        registry.register(Box::new(inference_seconds.clone()))?;
        registry.register(Box::new(real_time_factor.clone()))?;
        let reconnects = IntCounter::new(
            "rabbitmq_reconnects_total",
            "Times the consumers lost their RabbitMQ connection and started over",
        )?;
        registry.register(Box::new(reconnects.clone()))?;
        let stopped = IntCounterVec::new(
            Opts::new(
                "jobs_stopped_total",
                "Running jobs stopped at a safe point: cancelled, or handed back by a stopping worker",
            ),
            &["reason"],
        )?;
        registry.register(Box::new(stopped.clone()))?;
        let handed_back = IntCounter::new(
            "jobs_handed_back_total",
            "Jobs given back for another worker, which has a model this one lacks",
        )?;
        registry.register(Box::new(handed_back.clone()))?;
        let phase_seconds = HistogramVec::new(
            HistogramOpts::new(
                "job_phase_seconds",
                "A job's time by phase: queue_wait, prepare, inference, write",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
                1800.0, 7200.0,
            ]),
            &["kind", "model", "phase"],
        )?;
        registry.register(Box::new(phase_seconds.clone()))?;
        let model_loaded = IntGaugeVec::new(
            Opts::new("model_loaded", "1 for each model this worker serves"),
            &["model", "engine"],
        )?;
        registry.register(Box::new(model_loaded.clone()))?;
        let in_progress = IntGaugeVec::new(
            Opts::new("jobs_in_progress", "Jobs this worker holds now, by model"),
            &["model"],
        )?;
        registry.register(Box::new(in_progress.clone()))?;
        let heartbeat = Gauge::new(
            "heartbeat_timestamp_seconds",
            "Unix time of the worker's last announcement to the registry",
        )?;
        registry.register(Box::new(heartbeat.clone()))?;
        Ok(Self {
            phase_seconds,
            model_loaded,
            in_progress,
            heartbeat,
            registry,
            processed,
            failed,
            skipped,
            inference_seconds,
            real_time_factor,
            cache_hits,
            batch_jobs,
            reconnects,
            stopped,
            handed_back,
        })
    }

    pub fn phase(&self, kind: &str, model: &str, phase: Phase, seconds: f64) {
        self.phase_seconds
            .with_label_values(&[kind, model, phase.as_str()])
            .observe(seconds);
    }

    fn render(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "encoding metrics");
        }
        buf
    }
}

/// `/metrics`, and `/health/live` naming the models served and, when the
/// worker runs degraded, those it could not load.
pub fn router(metrics: Arc<Metrics>, status: Arc<WorkerStatus>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move {
                    ([(CONTENT_TYPE, prometheus::TEXT_FORMAT)], metrics.render()).into_response()
                }
            }),
        )
        .route(
            "/health/live",
            get(move || {
                let status = status.clone();
                async move {
                    let models: Vec<&str> = status.models.iter().map(|m| m.name.as_str()).collect();
                    Json(json!({
                        "status": if status.failed.is_empty() { "live" } else { "degraded" },
                        "worker": status.id,
                        "models": models,
                        "failed": status.failed,
                    }))
                }
            }),
        )
}
