use std::sync::Arc;

use sqlx::PgPool;
use voxq_shared::cache::JobCache;
use voxq_shared::queue::Publisher;

use crate::config::ApiConfig;
use crate::metrics::Metrics;

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub redis: redis::aio::ConnectionManager,
    pub cache: JobCache,
    pub publisher: Arc<Publisher>,
    pub config: Arc<ApiConfig>,
    pub metrics: Arc<Metrics>,
}
