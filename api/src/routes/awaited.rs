//! Requests that wait for their job's result, as the OpenAI- and
//! LibreTranslate-compatible routes do. The job is admitted like any other
//! (the same authentication, quotas, queue and workers) and then waited
//! for, up to `VOXQ_RESULT_WAIT`.
//!
//! Without an `Idempotency-Key` from the client, the key is derived from
//! the request's content: the same request sent again (an SDK retrying
//! after a timeout, a user running a script twice) waits on the same job
//! rather than paying for a second one. A job that cannot answer any more
//! (cancelled, failed, its data deleted) is forgotten and a new one made.

use std::time::Duration;

use axum::response::Response;
use tokio::sync::OwnedSemaphorePermit;
use uuid::Uuid;
use voxq_shared::job::{JobStatus, JobView};

use super::jobs::read::wait_for_end;
use crate::error::{ApiError, Result};
use crate::http::principal::{Principal, RequestMeta};
use crate::state::AppState;
use crate::submission::admission::admit;
use crate::submission::idempotency::{self, Fingerprint};
use crate::submission::Submission;

/// The idempotency key a waiting request is admitted under.
pub struct Keyed {
    key: String,
    fingerprint: [u8; 32],
    /// Derived from the content, not sent by the client.
    derived: bool,
}

impl Keyed {
    /// The client's `Idempotency-Key`, or one derived from what the
    /// request means (`route` keeps the routes' keys apart).
    pub fn new(
        headers: &axum::http::HeaderMap,
        route: &str,
        fingerprint: Fingerprint,
    ) -> Result<Self> {
        let fingerprint = fingerprint.finish();
        Ok(match idempotency::key(headers)? {
            Some(key) => Self {
                key,
                fingerprint,
                derived: false,
            },
            None => Self {
                key: format!("{route}:{}", hex::encode(fingerprint)),
                fingerprint,
                derived: true,
            },
        })
    }
}

/// Admits the job `submission` makes (called again if a replayed job
/// cannot answer) and waits for it to end. `copying` is the upload's turn
/// to be copied into Postgres (`spool::Copies`), given back once it is.
pub async fn run<'a>(
    state: &AppState,
    principal: &Principal,
    meta: &RequestMeta,
    keyed: Keyed,
    mut copying: Option<OwnedSemaphorePermit>,
    submission: impl Fn() -> Submission<'a>,
) -> Result<JobView> {
    let mut retried = false;
    loop {
        let keys = Some((keyed.key.clone(), keyed.fingerprint));
        let response = admit(state, principal, meta, keys, submission()).await?;
        // The upload is in Postgres: others may copy theirs while this waits.
        copying.take();
        let replayed = idempotency::replayed(&response);
        let id = job_id(response).await?;
        let view = wait(state, principal.account_id, id).await?;
        let answers = view.data_deleted_at.is_none()
            && !matches!(view.status, JobStatus::Cancelled | JobStatus::Failed);
        if answers || !replayed || !keyed.derived || retried {
            return Ok(view);
        }
        idempotency::forget(state, principal, &keyed.key, id).await;
        retried = true;
    }
}

/// The job's id in an admission's answer (new or replayed).
async fn job_id(response: Response) -> Result<Uuid> {
    #[derive(serde::Deserialize)]
    struct Accepted {
        id: Uuid,
    }
    let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("reading an admission: {e}")))?;
    let accepted: Accepted = serde_json::from_slice(&body)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("an admission without an id: {e}")))?;
    Ok(accepted.id)
}

/// The job once it has ended; `504 job_pending`, naming it, past the wait.
async fn wait(state: &AppState, account_id: Uuid, id: Uuid) -> Result<JobView> {
    let _waiting = state.waiters.enter(account_id)?;
    let limit = state.config.result_wait;
    let view = wait_for_end(state, account_id, id, Duration::from_secs(limit)).await?;
    if !view.status.is_terminal() {
        return Err(ApiError::Pending {
            id,
            status: view.status.as_str(),
            waited: limit,
        });
    }
    Ok(view)
}

/// A job that did not succeed, as an error of the waiting request.
pub fn unsuccessful(view: &JobView) -> ApiError {
    if let Some(at) = view.data_deleted_at {
        return ApiError::Gone {
            code: "data_deleted",
            message: format!("job {}'s result was deleted at {at}", view.id),
        };
    }
    match (&view.status, &view.error) {
        (JobStatus::Cancelled, _) => ApiError::Unprocessable {
            code: "job_cancelled",
            message: format!("job {} was cancelled", view.id),
        },
        (_, Some(error)) => ApiError::Unprocessable {
            code: "job_failed",
            message: format!("job {} failed ({}): {}", view.id, error.code, error.message),
        },
        _ => ApiError::Unprocessable {
            code: "job_failed",
            message: format!("job {} failed", view.id),
        },
    }
}
