//! The models a worker serves: each loaded off the executor, retried a few
//! times, and reported rather than fatal when it still fails.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use voxq_shared::registry::ModelFailure;

use crate::config::{EngineKind, ModelSpec, WorkerConfig};
use crate::engine::ct2_translate::Ct2Translate;
use crate::engine::ct2_whisper::Ct2Whisper;
use crate::engine::vad::Vad;
use crate::engine::whisper_cpp::WhisperCpp;
use crate::engine::Engine;

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
                    tracing::info!(
                        model = %spec.name,
                        engine = ?spec.engine,
                        threads_per_call = spec.threads(),
                        "model loaded"
                    );
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
