//! Why a job did not succeed, sorted by what to do next: fail it now,
//! fail it and dead-letter its message, put it back in line, hand it to
//! another worker, or retry it later; and what the consumer then does with
//! its delivery.

use voxq_shared::db::jobs;
use voxq_shared::job::{JobError, JobMessage};

use super::context::Context;
use super::fetch::FetchError;
use super::finish::end_failed;
use crate::engine::vad::NoVadModel;
use crate::engine::{Stopped, Unsupported};

/// What the consumer should do with the delivery.
#[derive(Debug)]
pub enum Outcome {
    /// Done, failed for good, or already ended: acknowledge.
    Ack,
    /// Worth another try, after a delay that grows with `attempts`.
    Retry { error: anyhow::Error, attempts: i32 },
    /// The job has failed after its last attempt, or crashed every worker
    /// that took it: reject the message into the dead-letter queue.
    DeadLetter,
    /// The worker is stopping: the job goes back in line as it was.
    Requeue,
}

/// Why a job stopped short of its result.
#[derive(Debug)]
pub enum Failure {
    /// Retrying cannot help (bad input): fail now.
    Permanent(JobError),
    /// The job crashed workers: fail now and dead-letter its message.
    Poison(JobError),
    /// The engine stopped at a safe point when asked (cancelled job, or a
    /// stopping worker).
    Stopped,
    /// Retrying may help (a dependency hiccup, a crashed engine call).
    Transient(anyhow::Error),
    /// Another worker can run the job and this one cannot: hand it back,
    /// not counted as an attempt.
    Elsewhere(String),
}

impl Failure {
    pub fn permanent(code: &str, message: impl Into<String>) -> Self {
        Failure::Permanent(JobError {
            code: code.into(),
            message: message.into(),
        })
    }

    /// An engine error: a request the model cannot serve is permanent,
    /// anything else may pass.
    pub fn engine(e: anyhow::Error) -> Self {
        if e.is::<Stopped>() {
            return Failure::Stopped;
        }
        if e.is::<NoVadModel>() {
            return Failure::permanent("vad_unavailable", e.to_string());
        }
        match e.downcast_ref::<Unsupported>() {
            Some(unsupported) => Failure::permanent("unsupported", unsupported.to_string()),
            None => Failure::Transient(e),
        }
    }

    /// An `audio_url` that could not be fetched: the server or the network
    /// may recover; a refused address or an oversized file will not.
    pub fn fetch(e: FetchError) -> Self {
        if e.is_transient() {
            return Failure::Transient(e.into());
        }
        let code = match e {
            FetchError::Refused(_) => "invalid_audio_url",
            FetchError::TooLarge(_) => "audio_too_large",
            _ => "fetch_failed",
        };
        Failure::permanent(code, e.to_string())
    }
}

/// Records what `failure` means for the job (ended failed, back in line,
/// released for another worker) and says what becomes of its delivery.
pub(super) async fn handle(
    ctx: &Context,
    message: &JobMessage,
    attempts: i32,
    failure: Failure,
) -> Outcome {
    match failure {
        Failure::Permanent(error) => fail(ctx, message, attempts, error, Outcome::Ack).await,
        Failure::Poison(error) => fail(ctx, message, attempts, error, Outcome::DeadLetter).await,
        Failure::Stopped if ctx.interrupt.is_cancelled() => {
            tracing::info!(job_id = %message.job_id, "worker stopping; returning the job to the queue");
            ctx.metrics.stopped.with_label_values(&["shutdown"]).inc();
            if let Err(e) = jobs::release_claim(&ctx.db, message.job_id).await {
                tracing::warn!(error = %e, "returning the job");
            }
            Outcome::Requeue
        }
        Failure::Elsewhere(reason) => {
            tracing::info!(job_id = %message.job_id, %reason, "handing the job to another worker");
            ctx.metrics.handed_back.inc();
            if let Err(e) = jobs::release_claim(&ctx.db, message.job_id).await {
                tracing::warn!(error = %e, "returning the job");
            }
            // Through the shortest retry delay: back in its queue within
            // two seconds, where the next consumer may be the right worker.
            Outcome::Retry {
                error: anyhow::anyhow!(reason),
                attempts: 0,
            }
        }
        Failure::Stopped => {
            tracing::info!(job_id = %message.job_id, "job cancelled while running; stopped");
            ctx.metrics.stopped.with_label_values(&["cancelled"]).inc();
            Outcome::Ack
        }
        Failure::Transient(e) if attempts >= ctx.max_attempts => {
            tracing::warn!(job_id = %message.job_id, error = ?e, attempts, "giving up after the last attempt");
            let error = JobError {
                code: "attempts_exhausted".into(),
                message: format!("failed {attempts} times; last error: {e}"),
            };
            fail(ctx, message, attempts, error, Outcome::DeadLetter).await
        }
        Failure::Transient(e) => {
            tracing::warn!(job_id = %message.job_id, error = ?e, attempts, "transient failure; will retry");
            if attempts > 0 {
                if let Err(e) = jobs::requeue(&ctx.db, message.job_id).await {
                    tracing::warn!(error = %e, "marking job queued again");
                }
            }
            Outcome::Retry { error: e, attempts }
        }
    }
}

/// Ends the job failed; `then` says what becomes of its message.
async fn fail(
    ctx: &Context,
    message: &JobMessage,
    attempts: i32,
    error: JobError,
    then: Outcome,
) -> Outcome {
    match end_failed(ctx, message, &error).await {
        Ok(_) => then,
        Err(e) => Outcome::Retry {
            error: e.into(),
            attempts,
        },
    }
}
