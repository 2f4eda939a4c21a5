//! The outbox relay: publishes the job messages that the submit path could
//! not (broker down or slow, or the API killed between commit and
//! publish). Safe with several API instances: each batch is locked with
//! `skip locked`, so no two relays publish the same row at once.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use voxq_shared::db::outbox;
use voxq_shared::queue::Publisher;

/// Rows per transaction.
const BATCH: i64 = 100;
/// How long a fresh row is left to the submit path that wrote it: longer
/// than that path may wait for its publish to be confirmed, so the relay
/// never sends a second copy of a message whose first copy is still on its
/// way (two copies could put one job on two workers).
const GRACE_MS: i64 = 2 * voxq_shared::queue::PUBLISH_TIMEOUT.as_millis() as i64;
/// Between idle passes; a failed submit-path publish wakes the relay early.
const IDLE: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct Relay {
    db: PgPool,
    publisher: Arc<Publisher>,
    wake: Arc<Notify>,
}

impl Relay {
    pub fn new(db: PgPool, publisher: Arc<Publisher>) -> Self {
        Self {
            db,
            publisher,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Asks for a pass soon (a publish just failed).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Runs until `stop`, then drains: every row due now gets one more try
    /// (within `drain`), so a stopping API leaves nothing it could send.
    pub async fn run(self, stop: CancellationToken, drain: Duration) {
        loop {
            match self.pass(GRACE_MS).await {
                Ok(n) if n as i64 == BATCH => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "outbox relay pass failed"),
            }
            tokio::select! {
                () = stop.cancelled() => break,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(IDLE) => {}
            }
        }
        let drained = tokio::time::timeout(drain, async {
            loop {
                match self.pass(0).await {
                    Ok(n) if n as i64 == BATCH => {}
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "draining the outbox");
                        break;
                    }
                }
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!("outbox not drained before shutdown; another instance will relay it");
        }
    }

    /// Publishes one batch of due rows; returns how many were published.
    async fn pass(&self, grace_ms: i64) -> Result<usize, sqlx::Error> {
        let mut tx = self.db.begin().await?;
        let due = outbox::lock_due(&mut tx, grace_ms, BATCH).await?;
        if due.is_empty() {
            return Ok(0);
        }
        let mut sent = Vec::with_capacity(due.len());
        let mut failed = Vec::new();
        let mut last_error = String::new();
        for row in &due {
            // Once one publish fails the broker is most likely away: put
            // the rest off too instead of waiting out a timeout for each.
            if !failed.is_empty() {
                failed.push(row.id);
                continue;
            }
            match self
                .publisher
                .publish_raw(&row.model, &row.routing_key, &row.payload, row.job_id)
                .await
            {
                Ok(()) => sent.push(row.id),
                Err(e) => {
                    tracing::warn!(job_id = %row.job_id, attempts = row.attempts, error = %e, "relaying a job message failed");
                    last_error = e.to_string();
                    failed.push(row.id);
                }
            }
        }
        outbox::delete(&mut tx, &sent).await?;
        outbox::postpone(&mut tx, &failed, &last_error).await?;
        tx.commit().await?;
        if !sent.is_empty() {
            tracing::info!(published = sent.len(), "outbox relayed job messages");
        }
        Ok(sent.len())
    }
}
