//! Quota reservations on the submit path: reserve in Redis and insert the
//! job in one transaction under the account's shared quota lock, rebuild
//! counters from Postgres when Redis lost them, release on failure, and
//! the 429 that explains an exhausted quota.

use serde_json::json;
use uuid::Uuid;
use voxq_shared::db::jobs::{self as job_repo, NewJobInput};
use voxq_shared::db::quotas as quota_repo;
use voxq_shared::job::{JobKind, JobParams, JobView};
use voxq_shared::queue::{Lane, Topology};
use voxq_shared::quota::{self, Amounts, Reservation, ReserveOutcome, Resource};

use crate::error::{ApiError, Result};
use crate::principal::{Principal, RequestMeta};
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
}

impl Reserved {
    /// Commits; the reservation is given back if the commit fails.
    pub async fn commit(self, state: &AppState, reservation: &Reservation) -> Result<JobView> {
        match self.tx.commit().await {
            Ok(()) => Ok(self.view),
            Err(e) => {
                release(state, reservation).await;
                Err(e.into())
            }
        }
    }
}

/// Reserve in Redis, then insert, inside one transaction that holds the
/// account's shared quota lock (see `voxq_shared::db::quotas`). Counters
/// missing from Redis are rebuilt from Postgres; a refusal is checked
/// once against Postgres (at most every few seconds per account), which
/// also heals counters left behind by a process that died mid-job. If the
/// caller drops the transaction instead of committing, it must
/// [`release`] the reservation. `lane_for` picks the job's lane from how
/// many of the account's jobs are in flight, this one included.
pub async fn reserve_and_insert(
    state: &AppState,
    principal: &Principal,
    meta: &RequestMeta,
    reservation: &Reservation,
    job: NewJob<'_>,
    lane_for: impl Fn(u64) -> Lane,
) -> Result<Reserved> {
    let NewJob {
        kind,
        params,
        input,
    } = job;
    let model = params.model.as_deref().unwrap_or_default();
    let account = principal.account_id;
    let mut rebuilt = false;
    loop {
        let mut tx = quota_repo::begin_submission(&state.db, account).await?;
        match state.quotas.reserve(reservation, &principal.limits).await? {
            ReserveOutcome::Reserved { in_flight } => {
                let lane = lane_for(in_flight);
                let queue = Topology::routing_key(model, lane);
                return match job_repo::insert(&mut tx, reservation, kind, params, &queue, input)
                    .await
                {
                    Ok(view) => Ok(Reserved { tx, view, lane }),
                    Err(e) => {
                        drop(tx);
                        release(state, reservation).await;
                        Err(e.into())
                    }
                };
            }
            outcome => {
                // Nothing of ours to keep; release the shared lock before
                // anything else touches the pool or waits for a rebuild.
                tx.rollback().await?;
                let missing = match outcome {
                    ReserveOutcome::NeedsRebuild if !rebuilt => true,
                    ReserveOutcome::Exceeded(_)
                        if !rebuilt && should_verify(state, account).await =>
                    {
                        false
                    }
                    ReserveOutcome::Exceeded(resource) => {
                        return Err(quota_exceeded(state, principal, meta, resource).await)
                    }
                    _ => return Err(ApiError::Unavailable("the quota store")),
                };
                quota_repo::rebuild(&state.db, &state.quotas, account, reservation.day, missing)
                    .await?;
                rebuilt = true;
            }
        }
    }
}

/// True at most once per account every few seconds.
async fn should_verify(state: &AppState, account: Uuid) -> bool {
    let key = format!("{}:q:{account}:verified", state.config.common.namespace);
    first_in(state, &key, 10).await
}

/// True for the first caller to set `key` in `ttl_seconds`; false for the
/// others and when Redis cannot answer.
async fn first_in(state: &AppState, key: &str, ttl_seconds: u64) -> bool {
    let set: redis::RedisResult<Option<String>> = redis::cmd("SET")
        .arg(key)
        .arg(1)
        .arg("NX")
        .arg("EX")
        .arg(ttl_seconds)
        .query_async(&mut state.redis.clone())
        .await;
    matches!(set, Ok(Some(_)))
}

/// Gives a reservation back; Postgres stays right if this fails, and the
/// next rebuild corrects Redis.
pub async fn release(state: &AppState, reservation: &Reservation) {
    if let Err(e) = state.quotas.settle(reservation, Amounts::default()).await {
        tracing::warn!(job_id = %reservation.job_id, error = %e, "releasing a quota reservation");
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
    let marker = format!(
        "{}:q:{}:audited:{day}:{}",
        state.config.common.namespace,
        principal.account_id,
        resource.as_str()
    );
    if first_in(state, &marker, 2 * 24 * 3600).await {
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
