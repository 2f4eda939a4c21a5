//! The leases of a batch's long jobs, renewed in Postgres while the batch
//! runs: a worker that dies or hangs is found by its jobs' leases running
//! out, and the API puts them back in line.

use sqlx::PgPool;
use uuid::Uuid;
use voxq_shared::db::jobs;

/// Renews the leases of the batch's detached jobs until aborted, a few
/// times per lease so that one slow round trip never lets one lapse.
pub(super) async fn heartbeat(db: PgPool, ids: Vec<Uuid>, lease_seconds: f64) {
    let every = std::time::Duration::from_secs_f64((lease_seconds / 4.0).clamp(0.1, 15.0));
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        if let Err(e) = jobs::renew_leases(&db, &ids, lease_seconds).await {
            tracing::warn!(error = %e, "renewing job leases");
        }
    }
}
