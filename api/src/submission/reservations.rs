//! A submission's quota on the submit path: the job inserted in the
//! transaction that holds its reservation (the reserving itself is
//! `voxq_shared::quota::admission`'s), released on failure, and the 429
//! that explains an exhausted quota.

use serde_json::json;
use voxq_shared::db::jobs::{self as job_repo, NewJobInput};
use voxq_shared::job::{JobKind, JobParams, JobView};
use voxq_shared::queue::{Lane, Topology};
use voxq_shared::quota::admission::Admission;
use voxq_shared::quota::{self, Reservation, Resource};

use crate::error::{ApiError, Result};
use crate::http::principal::{Principal, RequestMeta};
use crate::state::AppState;

/// What the job is.
pub struct NewJob<'a> {
    pub kind: JobKind,
    pub params: &'a JobParams,
    pub input: NewJobInput<'a>,
}

/// A job inserted and its quota reserved, in a transaction still open:
/// the caller adds what must commit with the job (its outbox message, an
/// idempotency record), then calls [`Reserved::commit`].
pub struct Reserved {
    pub tx: sqlx::Transaction<'static, sqlx::Postgres>,
    pub view: JobView,
    /// The lane the job waits in.
    pub lane: Lane,
    /// Its queue's routing key.
    pub queue: String,
}

impl Reserved {
    /// Commits; the reservation is given back if the commit fails.
    pub async fn commit(self, state: &AppState, reservation: &Reservation) -> Result<JobView> {
        match self.tx.commit().await {
            Ok(()) => Ok(self.view),
            Err(e) => {
                state.quotas.release(reservation).await;
                Err(e.into())
            }
        }
    }
}

/// Reserves the job's quota (see [`quota::admission`]), then inserts the
/// job in the transaction that holds the account's quota lock. If the
/// caller drops the transaction instead of committing, it must [`Quotas::release`](voxq_shared::quota::Quotas::release)
/// the reservation. `lane_for` picks the job's lane from how many of the
/// account's jobs are in flight, this one included.
pub async fn reserve_and_insert(
    state: &AppState,
    principal: &Principal,
    meta: &RequestMeta,
    reservation: &Reservation,
    job: NewJob<'_>,
    lane_for: impl Fn(u64) -> Lane,
) -> Result<Reserved> {
    let admitted =
        quota::admission::reserve(&state.db, &state.quotas, reservation, &principal.limits).await?;
    let (mut tx, in_flight) = match admitted {
        Admission::Reserved { tx, in_flight } => (tx, in_flight),
        Admission::Exceeded(resource) => {
            return Err(quota_exceeded(state, principal, meta, resource).await)
        }
    };
    let lane = lane_for(in_flight);
    let queue = Topology::routing_key(job.params.model.as_deref().unwrap_or_default(), lane);
    match job_repo::insert(
        &mut tx,
        reservation,
        job.kind,
        job.params,
        &queue,
        job.input,
    )
    .await
    {
        Ok(view) => Ok(Reserved {
            tx,
            view,
            lane,
            queue,
        }),
        Err(e) => {
            drop(tx);
            state.quotas.release(reservation).await;
            Err(e.into())
        }
    }
}

/// The 429 for an exhausted quota, audited once per account, day and
/// resource.
async fn quota_exceeded(
    state: &AppState,
    principal: &Principal,
    meta: &RequestMeta,
    resource: Resource,
) -> ApiError {
    let day = quota::today();
    if state
        .quotas
        .first_refusal(principal.account_id, day, resource)
        .await
    {
        state
            .audit(meta.audit(
                principal,
                "quota.exhausted",
                format!("account:{}", principal.account_id),
                json!({ "resource": resource, "day": day }),
            ))
            .await;
    }
    if resource == Resource::ConcurrentJobs {
        return ApiError::TooManyRequests {
            code: "concurrency_limit",
            message: format!(
                "{} jobs are already queued or running, the most this account may have",
                principal.limits.concurrent_jobs
            ),
            limit: "concurrent_jobs".into(),
            retry_after: 5,
        };
    }
    ApiError::TooManyRequests {
        code: "quota_exceeded",
        message: format!(
            "the daily {} quota is used up (or this job would exceed it); it resets at 00:00 UTC",
            resource.as_str()
        ),
        limit: format!("{}_per_day", resource.as_str()),
        retry_after: quota::seconds_until_reset(),
    }
}
