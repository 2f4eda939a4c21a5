//! The models jobs can run on: live workers' heartbeats plus the standby
//! models of the configuration, read from Redis at most once a second per
//! API process (a model just announced is seen on the next read).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use voxq_shared::models::{self, ModelInfo, Registry, ServedModel};

/// How long one read of the registry is reused.
const FRESH_FOR: Duration = Duration::from_secs(1);

/// A read of the registry and when it was made.
type Snapshot = (Instant, Arc<Vec<ServedModel>>);

#[derive(Clone)]
pub struct Catalog {
    registry: Registry,
    standby: Arc<Vec<ModelInfo>>,
    last: Arc<Mutex<Option<Snapshot>>>,
}

impl Catalog {
    pub fn new(registry: Registry, standby: Vec<ModelInfo>) -> Self {
        Self {
            registry,
            standby: Arc::new(standby),
            last: Arc::new(Mutex::new(None)),
        }
    }

    /// The served models; `fresh` skips the reuse window (a lookup that
    /// missed must not be answered from a read older than the worker).
    pub async fn models(&self, fresh: bool) -> redis::RedisResult<Arc<Vec<ServedModel>>> {
        let mut last = self.last.lock().await;
        if let Some((at, models)) = last.as_ref() {
            if !fresh && at.elapsed() < FRESH_FOR {
                return Ok(models.clone());
            }
        }
        let workers = self.registry.workers().await?;
        let served = Arc::new(models::served(&workers, &self.standby));
        *last = Some((Instant::now(), served.clone()));
        Ok(served)
    }
}
