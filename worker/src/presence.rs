//! The worker in the Redis registry: what it serves (and failed to load),
//! announced at start, renewed every few seconds, withdrawn when it stops.
//! The API accepts jobs only for models a live worker announces.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use voxq_shared::registry::{Registry, WorkerStatus, HEARTBEAT_SECONDS};

use crate::metrics::Metrics;
use crate::models::Models;

/// A new worker's entry: a fresh id, its models sorted by name.
pub fn status(models: &Models) -> WorkerStatus {
    let mut infos: Vec<_> = models
        .served
        .values()
        .map(|s| s.engine.info().clone())
        .collect();
    infos.sort_by(|a, b| a.name.cmp(&b.name));
    WorkerStatus {
        id: format!("worker-{}", uuid::Uuid::new_v4()),
        models: infos,
        failed: models.failed.clone(),
        seen_at_ms: 0,
    }
}

pub async fn announce(
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
pub async fn heartbeat(
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
