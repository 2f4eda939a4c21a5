//! Everything a handler needs, built once by `App::build`.

use std::sync::Arc;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use voxq_shared::auth::limits::TierLimits;
use voxq_shared::cache::JobCache;
use voxq_shared::db::audit::{self, AuditEvent};
use voxq_shared::events::{EventHub, Events};
use voxq_shared::queue::Publisher;
use voxq_shared::quota::Quotas;

use crate::background::outbox::Relay;
use crate::catalog::Catalog;
use crate::config::ApiConfig;
use crate::http::rate_limit::RateLimiter;
use crate::http::tokens::TokenKeys;
use crate::metrics::Metrics;

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub redis: redis::aio::ConnectionManager,
    pub cache: JobCache,
    pub quotas: Quotas,
    pub limiter: RateLimiter,
    pub tokens: Arc<TokenKeys>,
    pub tiers: Arc<TierLimits>,
    pub publisher: Arc<Publisher>,
    pub relay: Relay,
    /// Publishes job events (cancellations).
    pub events: Events,
    /// Wakes long-polls and event streams.
    pub hub: EventHub,
    /// Cancelled when the API begins to stop: event streams end so the
    /// server can drain.
    pub stopping: CancellationToken,
    /// Caps on long-polls and event streams.
    pub waiters: crate::http::waiters::Waiters,
    /// Turns for streaming spooled uploads into Postgres.
    pub copies: crate::submission::spool::Copies,
    pub catalog: Catalog,
    pub config: Arc<ApiConfig>,
    pub metrics: Arc<Metrics>,
    /// Verified against when a login names no user, to take the same time.
    pub dummy_password_hash: Arc<String>,
}

impl AppState {
    /// Writes an audit entry; a failure is logged, never shown to the client.
    pub async fn audit(&self, event: AuditEvent) {
        if let Err(e) = audit::record(&self.db, &event).await {
            tracing::error!(error = %e, action = event.action, "writing the audit log");
        }
    }
}
