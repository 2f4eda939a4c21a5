//! Housekeeping that every API instance runs (the work is idempotent, so
//! several at once only repeat a cheap query): long jobs whose lease ran
//! out back in line, the quota reservations of ended long jobs settled,
//! account retention of inputs and results, and idempotency keys past
//! their 24 hours.

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use voxq_shared::cache::JobCache;
use voxq_shared::db::{idempotency, jobs};
use voxq_shared::quota::Quotas;

/// Jobs whose results are dropped, or whose leases are forgotten, per pass.
const BATCH: i64 = 1000;

pub struct Janitor {
    pub db: PgPool,
    pub cache: JobCache,
    pub quotas: Quotas,
    /// Between passes.
    pub every: Duration,
}

impl Janitor {
    pub async fn run(self, stop: CancellationToken) {
        let Self {
            db,
            cache,
            quotas,
            every,
        } = self;
        pass_until(&db, &cache, &quotas, every, stop).await;
    }
}

async fn pass_until(
    db: &PgPool,
    cache: &JobCache,
    quotas: &Quotas,
    every: Duration,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        match jobs::apply_retention(db, BATCH).await {
            Ok(expired) => {
                for (id, _) in &expired {
                    if let Err(e) = cache.forget(*id).await {
                        tracing::warn!(job_id = %id, error = %e, "evicting an expired result");
                    }
                }
                if !expired.is_empty() {
                    tracing::info!(results = expired.len(), "retention: results deleted");
                }
            }
            Err(e) => tracing::warn!(error = %e, "applying retention"),
        }
        match jobs::requeue_expired_leases(db).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                jobs = n,
                "long jobs whose worker stopped renewing their lease are back in line"
            ),
            Err(e) => tracing::warn!(error = %e, "requeueing expired leases"),
        }
        if let Err(e) = settle_ended_leases(db, quotas).await {
            tracing::warn!(error = %e, "settling the reservations of ended long jobs");
        }
        if let Err(e) = idempotency::purge_expired(db).await {
            tracing::warn!(error = %e, "purging idempotency keys");
        }
    }
}

/// Settles again the quota reservations of long jobs that ended detached
/// (see [`jobs::ended_with_lease`]), then forgets their leases; a
/// reservation Redis did not take stays for the next pass.
async fn settle_ended_leases(db: &PgPool, quotas: &Quotas) -> Result<(), sqlx::Error> {
    let ended = jobs::ended_with_lease(db, BATCH).await?;
    let mut settled = Vec::with_capacity(ended.len());
    for (reservation, used) in ended {
        match quotas.settle(&reservation, used).await {
            Ok(()) => settled.push(reservation.job_id),
            Err(e) => {
                tracing::warn!(job_id = %reservation.job_id, error = %e, "settling an ended long job");
            }
        }
    }
    if !settled.is_empty() {
        jobs::forget_ended_leases(db, &settled).await?;
    }
    Ok(())
}
