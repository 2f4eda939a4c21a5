//! What every stage of a job reaches for: the stores, the models, the
//! worker's settings, and the jobs it holds.

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use voxq_shared::cache::JobCache;
use voxq_shared::db::jobs;
use voxq_shared::events::Events;
use voxq_shared::queue::Publisher;
use voxq_shared::quota::Quotas;
use voxq_shared::registry::Registry;

use super::fetch::Fetcher;
use crate::engine::vad::Vad;
use crate::metrics::Metrics;
use crate::models::Served;

pub struct Context {
    pub db: PgPool,
    pub cache: JobCache,
    pub quotas: Quotas,
    pub models: HashMap<String, Served>,
    /// Live workers and their models (where else a job could run).
    pub registry: Registry,
    pub metrics: Arc<Metrics>,
    pub max_attempts: i32,
    /// Publishes delayed retries.
    pub retries: Publisher,
    /// Publishes job events (running, progress, ended).
    pub events: Events,
    /// Cancelled when a stopping worker's grace period is over: the jobs
    /// still running stop at their next safe point and go back in line.
    pub interrupt: CancellationToken,
    /// How long a long job's lease lasts between renewals.
    pub lease_seconds: f64,
    /// Fetches `audio_url` inputs.
    pub fetcher: Fetcher,
    /// Longest audio an `audio_url` may hold, in seconds.
    pub max_audio_seconds: f64,
    /// Faults the chaos tests inject; absent from builds without the
    /// `chaos` feature (see `crate::chaos`).
    #[cfg(feature = "chaos")]
    pub faults: crate::chaos::Faults,
    /// Voice activity detection, when the worker has the model.
    pub vad: Option<Arc<Vad>>,
    /// Jobs that do not say `vad` get it above this many seconds.
    pub vad_auto_seconds: f64,
    /// The jobs of the batches in progress.
    pub held: Held,
}

/// The jobs this worker has claimed and not yet settled, with the attempt
/// number of each claim. Whatever is left when a lane is aborted (a
/// stopping worker that gave up waiting, a lost connection) is handed
/// back.
#[derive(Debug, Default)]
pub struct Held(std::sync::Mutex<HashMap<Uuid, i32>>);

impl Held {
    pub(super) fn claimed(&self, id: Uuid, attempts: i32) {
        if let Ok(mut held) = self.0.lock() {
            held.insert(id, attempts);
        }
    }

    pub(super) fn settled(&self, ids: &[Uuid]) {
        if let Ok(mut held) = self.0.lock() {
            for id in ids {
                held.remove(id);
            }
        }
    }

    /// Hands every job still held back to the queue, as it was: the run
    /// did not count as an attempt. A job that ended, or that another
    /// worker claimed since (its attempt number moved on), is left alone.
    pub async fn hand_back(&self, db: &PgPool) {
        let held = match self.0.lock() {
            Ok(mut held) => std::mem::take(&mut *held),
            Err(_) => return,
        };
        for (id, attempts) in held {
            match jobs::hand_back(db, id, attempts).await {
                Ok(true) => tracing::info!(job_id = %id, "interrupted job handed back"),
                Ok(false) => {}
                Err(e) => {
                    // Its lease (long jobs) or its unacknowledged message
                    // (short ones) still brings it back.
                    tracing::warn!(job_id = %id, error = %e, "handing an interrupted job back")
                }
            }
        }
    }
}
