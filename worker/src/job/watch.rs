//! While a batch's engine call runs: its jobs' cancellations, the stop of
//! a worker whose grace period is over, and the progress of long audio
//! (cache, events, sparse webhooks).

use std::sync::Arc;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use voxq_shared::cache::JobCache;
use voxq_shared::db::{jobs, webhooks};
use voxq_shared::events::{Events, JobEvent, Progress};
use voxq_shared::job::JobStatus;

use super::claimed::{Input, Prepared};
use crate::engine::JobControl;

/// A running job as its watcher sees it.
pub(super) struct Watched {
    job_id: Uuid,
    account_id: Uuid,
    seconds_total: f64,
    control: Arc<JobControl>,
}

impl Watched {
    pub(super) fn of(job: &Prepared) -> Self {
        let seconds_total = match &job.input {
            Input::Audio { seconds, .. } => *seconds,
            Input::Text(_) => 0.0,
        };
        Self {
            job_id: job.message.job_id,
            account_id: job.message.account_id,
            seconds_total,
            control: job.control.clone(),
        }
    }
}

/// How often a running batch's watcher looks for cancellations and
/// reports progress.
const WATCH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// While a batch runs: stops the jobs that were cancelled (or all of
/// them once the worker's grace period is over) and publishes the
/// progress of long audio. Aborted when the batch's engine call returns.
pub(super) async fn watch(
    db: PgPool,
    events: Events,
    cache: JobCache,
    interrupt: CancellationToken,
    watched: Vec<Watched>,
) {
    let ids: Vec<Uuid> = watched.iter().map(|j| j.job_id).collect();
    let mut reported: Vec<f64> = vec![0.0; watched.len()];
    let mut hooked: Vec<f64> = vec![0.0; watched.len()];
    let mut tick = tokio::time::interval(WATCH_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = interrupt.cancelled() => {
                watched.iter().for_each(|j| j.control.stop());
                return;
            }
        }
        match jobs::cancelled(&db, &ids).await {
            Ok(cancelled) => watched
                .iter()
                .filter(|j| cancelled.contains(&j.job_id))
                .for_each(|j| j.control.stop()),
            Err(e) => tracing::warn!(error = %e, "checking for cancellations"),
        }
        for ((job, last), hooked) in watched.iter().zip(&mut reported).zip(&mut hooked) {
            let done = job.control.seconds_done();
            if done <= *last || job.seconds_total <= 0.0 {
                continue;
            }
            *last = done;
            let progress = Progress {
                seconds_done: done,
                seconds_total: job.seconds_total,
            };
            if let Err(e) = cache.put_progress(job.job_id, progress).await {
                tracing::warn!(error = %e, "storing job progress");
            }
            events
                .publish(&JobEvent {
                    job_id: job.job_id,
                    account_id: job.account_id,
                    status: JobStatus::Running,
                    progress: Some(progress),
                })
                .await;
            // Webhooks are sparser: every tenth of the audio, at least 30 s.
            if done - *hooked >= (job.seconds_total / 10.0).max(30.0) {
                *hooked = done;
                let data = serde_json::json!({
                    "id": job.job_id,
                    "status": JobStatus::Running,
                    "url": format!("/v1/jobs/{}", job.job_id),
                    "progress": progress,
                });
                if let Err(e) = webhooks::enqueue_progress(&db, job.job_id, &data).await {
                    tracing::warn!(error = %e, "queueing a progress webhook");
                }
            }
        }
    }
}
