//! Admitting a valid submission: under its idempotency key, its quota
//! reserved, the job committed with its queue message in one transaction,
//! then published.

use axum::http::header::{CONTENT_TYPE, LOCATION};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use uuid::Uuid;
use voxq_shared::db::idempotency as idempotency_repo;
use voxq_shared::db::outbox;
use voxq_shared::job::JobStatus;
use voxq_shared::queue::{Lane, Outgoing};
use voxq_shared::quota::{self, Reservation};

use super::idempotency::{self, Begin, Held};
use super::invalid::Invalid;
use super::reservations::{self, NewJob};
use super::Submission;
use crate::error::{ApiError, Result};
use crate::http::principal::{Principal, RequestMeta};
use crate::state::AppState;

/// The answer to an accepted job.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct JobAccepted {
    pub id: Uuid,
    pub status: JobStatus,
    /// Where to poll: `/v1/jobs/{id}`.
    pub url: String,
}

/// Runs `accept` under the request's idempotency key, if it has one:
/// replays a stored response, refuses a conflicting one, and forgets the
/// key if the submission fails.
pub async fn admit(
    state: &AppState,
    principal: &Principal,
    meta: &RequestMeta,
    keyed: Option<(String, [u8; 32])>,
    submission: Submission<'_>,
) -> Result<Response> {
    let Some((key, fingerprint)) = keyed else {
        return accept(state, principal, meta, submission, None).await;
    };
    let held = match idempotency::begin(state, principal, key, fingerprint).await? {
        Begin::Respond(response) => return Ok(response),
        Begin::Proceed(held) => held,
    };
    let accepted = accept(state, principal, meta, submission, Some(&held)).await;
    if accepted.is_err() {
        idempotency::abandon(state, principal, &held).await;
    }
    accepted
}

/// Reserves the job's quota, then commits the job with its input, its
/// reservation and its message (the outbox row) in one transaction, then
/// publishes with confirms. A 202 means the job is stored with its
/// message: if the broker cannot take it now, the outbox relay publishes
/// it when the broker is back, even if this process dies first.
async fn accept(
    state: &AppState,
    principal: &Principal,
    meta: &RequestMeta,
    submission: Submission<'_>,
    idempotency: Option<&Held>,
) -> Result<Response> {
    let reservation = Reservation {
        job_id: Uuid::now_v7(),
        account_id: principal.account_id,
        day: quota::today(),
        amounts: submission.amounts,
    };
    let kind = submission.kind;
    let audio_seconds = submission.amounts.audio_ms as f64 / 1000.0;
    let long = audio_seconds > state.config.long_audio_seconds;
    let fair_share = state.config.fair_share;
    let mut reserved = reservations::reserve_and_insert(
        state,
        principal,
        meta,
        &reservation,
        NewJob {
            kind: submission.kind,
            params: &submission.params,
            input: submission.input,
        },
        |in_flight| {
            if long {
                Lane::Long
            } else if in_flight > fair_share {
                Lane::Bulk
            } else {
                Lane::Interactive
            }
        },
    )
    .await?;
    let id = reserved.view.id;
    let lane = reserved.lane;
    let message = Outgoing::new(
        id,
        principal.account_id,
        kind,
        submission.params,
        reserved.queue.clone(),
    )
    .map_err(|e| ApiError::Internal(e.into()))?;
    if message.payload.len() > outbox::MAX_PAYLOAD_BYTES {
        drop(reserved);
        state.quotas.release(&reservation).await;
        return Err(Invalid::ParamsTooLarge.into());
    }
    let url = format!("/v1/jobs/{id}");
    let body = serde_json::to_vec(&JobAccepted {
        id,
        status: reserved.view.status,
        url: url.clone(),
    })
    .map_err(|e| ApiError::Internal(e.into()))?;
    // The message, and the response a retry will get, commit with the job.
    let mut stored = outbox::insert(&mut reserved.tx, &message).await;
    if let (Ok(()), Some(held)) = (&stored, idempotency) {
        let account = principal.account_id;
        stored =
            idempotency_repo::complete(&mut reserved.tx, account, &held.key, 202, &body, id).await;
    }
    if let Err(e) = stored {
        drop(reserved);
        state.quotas.release(&reservation).await;
        return Err(e.into());
    }
    reserved.commit(state, &reservation).await?;
    let published = state
        .publisher
        .publish_raw(&message.model, &message.routing_key, &message.payload, id)
        .await;
    match published {
        Ok(()) => {
            if let Err(e) = outbox::sent(&state.db, id).await {
                // Published twice at worst; the worker skips the copy.
                tracing::warn!(job_id = %id, error = %e, "clearing a published outbox row");
            }
        }
        Err(e) => {
            tracing::warn!(job_id = %id, error = %e, "publishing failed; the outbox relay will retry");
            if let Err(e) = outbox::hand_over(&state.db, id).await {
                // The relay still takes it, after its grace.
                tracing::warn!(job_id = %id, error = %e, "handing a message to the relay");
            }
            state.relay.wake();
        }
    }
    state
        .metrics
        .jobs_submitted
        .with_label_values(&[kind.as_str()])
        .inc();
    tracing::info!(job_id = %id, kind = kind.as_str(), lane = lane.as_str(), model = %message.model, "job accepted");
    Ok((
        StatusCode::ACCEPTED,
        [
            (LOCATION, url),
            (CONTENT_TYPE, "application/json".to_owned()),
        ],
        body,
    )
        .into_response())
}
