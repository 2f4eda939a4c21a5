//! Jobs, from claim to committed result: claim, load the input, answer
//! from the result cache or run the engine (several jobs of one model in
//! one call), then one transaction for result, usage and status.
//!
//! One stage per module, each using only those below it:
//! `prepare` (claim, fetch, cache, decode) → `infer` (the engine call) →
//! `finish` (the commit); `failure` sorts what went wrong; `lease` and
//! `watch` run beside the batch. This module runs a batch through them.

mod claimed;
mod context;
mod failure;
pub mod fetch;
mod finish;
mod infer;
mod lease;
mod prepare;
mod watch;

use std::time::Instant;

use uuid::Uuid;
use voxq_shared::job::JobMessage;

pub use context::{Context, Held};
pub use failure::{Failure, Outcome};
pub(crate) use finish::end_failed;

use crate::metrics::Phase;
use claimed::Prepared;
use watch::Watched;

/// Runs `messages` (all for one model) and says what to do with each
/// delivery, in order.
pub async fn process_batch(ctx: &Context, messages: &[JobMessage]) -> Vec<Outcome> {
    // Leases are renewed from the claim to the last commit, whatever the
    // jobs are doing: fetching, decoding, or inference that reports no
    // progress.
    let ids: Vec<Uuid> = messages.iter().map(|m| m.job_id).collect();
    let _held = InProgress::count(ctx, messages);
    let heartbeat = Companion(tokio::spawn(lease::heartbeat(
        ctx.db.clone(),
        ids.clone(),
        ctx.lease_seconds,
    )));
    let outcomes = run_batch(ctx, messages).await;
    drop(heartbeat);
    ctx.held.settled(&ids);
    outcomes
}

/// The batch's jobs counted in `jobs_in_progress` for as long as it lives,
/// aborted or not.
struct InProgress {
    gauge: prometheus::IntGauge,
    jobs: i64,
}

impl InProgress {
    fn count(ctx: &Context, messages: &[JobMessage]) -> Option<Self> {
        let model = &messages.first()?.model;
        let gauge = ctx.metrics.in_progress.with_label_values(&[model]);
        let jobs = i64::try_from(messages.len()).unwrap_or(i64::MAX);
        gauge.add(jobs);
        Some(Self { gauge, jobs })
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        self.gauge.sub(self.jobs);
    }
}

/// A task that lives only as long as the batch it serves. Dropped with the
/// batch's future, it is aborted too: a lane aborted mid-batch must not
/// leave a heartbeat renewing its jobs' leases for the life of the process
/// (they would never come back), nor a watcher polling for them.
struct Companion(tokio::task::JoinHandle<()>);

impl Drop for Companion {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn run_batch(ctx: &Context, messages: &[JobMessage]) -> Vec<Outcome> {
    let mut outcomes: Vec<Option<Outcome>> = messages.iter().map(|_| None).collect();
    let mut ready: Vec<(usize, Prepared)> = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        match prepare::prepare(ctx, message).await {
            Ok(Some(prepared)) => ready.push((i, prepared)),
            Ok(None) => outcomes[i] = Some(Outcome::Ack),
            Err((attempts, failure)) => {
                outcomes[i] = Some(failure::handle(ctx, message, attempts, failure).await)
            }
        }
    }
    if !ready.is_empty() {
        let (indices, mut prepared): (Vec<usize>, Vec<Prepared>) = ready.into_iter().unzip();
        let watcher = Companion(tokio::spawn(watch::watch(
            ctx.db.clone(),
            ctx.events.clone(),
            ctx.cache.clone(),
            ctx.interrupt.clone(),
            prepared.iter().map(Watched::of).collect(),
        )));
        let inferring = Instant::now();
        let results = infer::infer(ctx, &mut prepared).await;
        let inference = inferring.elapsed().as_secs_f64();
        drop(watcher);
        for ((i, job), (result, processing)) in indices.into_iter().zip(prepared).zip(results) {
            let (kind, model) = (job.message.kind.as_str(), job.message.model.as_str());
            let outcome = match result {
                Ok(value) => {
                    ctx.metrics.phase(kind, model, Phase::Inference, inference);
                    let writing = Instant::now();
                    let outcome = match finish::finish(ctx, &job, value, processing, false).await {
                        Ok(()) => Outcome::Ack,
                        Err(e) => Outcome::Retry {
                            error: e.into(),
                            attempts: job.attempts,
                        },
                    };
                    let written = writing.elapsed().as_secs_f64();
                    ctx.metrics.phase(kind, model, Phase::Write, written);
                    outcome
                }
                Err(failure) => failure::handle(ctx, &job.message, job.attempts, failure).await,
            };
            outcomes[i] = Some(outcome);
        }
    }
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or(Outcome::Ack))
        .collect()
}
