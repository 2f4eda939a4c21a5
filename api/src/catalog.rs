//! The models jobs can run on: live workers' heartbeats plus the standby
//! models of the configuration, read from Redis at most once a second per
//! API process (a model just announced is seen on the next read).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use voxq_shared::registry::{self, ModelInfo, Registry, ServedModel, WorkerStatus};

/// How long one read of the registry is reused.
const FRESH_FOR: Duration = Duration::from_secs(1);

/// A read of the registry and when it was made.
struct Snapshot {
    at: Instant,
    served: Arc<Vec<ServedModel>>,
    workers: Arc<Vec<WorkerStatus>>,
}

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
        Ok(self.read(fresh).await?.0)
    }

    /// Whether one live worker serves both models (speech translation
    /// runs both on the worker that takes the job); `None` when no live
    /// worker serves `first` (its jobs wait for one).
    pub async fn served_together(
        &self,
        first: &str,
        second: &str,
    ) -> redis::RedisResult<Option<bool>> {
        let (_, workers) = self.read(false).await?;
        Ok(registry::served_together(&workers, first, second))
    }

    async fn read(
        &self,
        fresh: bool,
    ) -> redis::RedisResult<(Arc<Vec<ServedModel>>, Arc<Vec<WorkerStatus>>)> {
        let mut last = self.last.lock().await;
        if let Some(snapshot) = last.as_ref() {
            if !fresh && snapshot.at.elapsed() < FRESH_FOR {
                return Ok((snapshot.served.clone(), snapshot.workers.clone()));
            }
        }
        let workers = Arc::new(self.registry.workers().await?);
        let served = Arc::new(registry::served(&workers, &self.standby));
        *last = Some(Snapshot {
            at: Instant::now(),
            served: served.clone(),
            workers: workers.clone(),
        });
        Ok((served, workers))
    }
}
