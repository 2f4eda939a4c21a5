//! `Idempotency-Key` on `POST /v1/jobs` (IETF httpapi idempotency-key
//! draft; Stripe semantics): a retried submission returns the first
//! response byte for byte and creates nothing; the same key with another
//! request is a 422; a duplicate of a request still in progress is a 409.
//! Requests that fail (validation, quota) are not remembered.

use axum::http::header::{CONTENT_TYPE, LOCATION};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use voxq_shared::db::idempotency::{self, Claim};

use super::invalid::Invalid;
use crate::error::{ApiError, Result};
use crate::http::principal::Principal;
use crate::state::AppState;

pub const HEADER: HeaderName = HeaderName::from_static("idempotency-key");
/// Set on a replayed response, as Stripe does.
const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
const MAX_KEY_CHARS: usize = 255;

/// The request's key, if it sent one. The draft defines it as a
/// structured-field string (quoted); the bare form most clients send is
/// accepted too.
pub fn key(headers: &HeaderMap) -> Result<Option<String>> {
    let mut values = headers.get_all(&HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::BadRequest(
            "send one Idempotency-Key header".into(),
        ));
    }
    let invalid = || {
        ApiError::BadRequest(format!(
            "Idempotency-Key must be 1 to {MAX_KEY_CHARS} printable ASCII characters"
        ))
    };
    let raw = value.to_str().map_err(|_| invalid())?.trim();
    let key = raw
        .strip_prefix('"')
        .and_then(|k| k.strip_suffix('"'))
        .unwrap_or(raw);
    let printable = key.bytes().all(|b| (0x20..0x7f).contains(&b));
    if key.is_empty() || key.len() > MAX_KEY_CHARS || !printable {
        return Err(invalid());
    }
    Ok(Some(key.to_owned()))
}

/// Accumulates what a submission means, field by field, so that two
/// encodings of one request (another multipart boundary, another JSON key
/// order) share a fingerprint and any change of content does not.
pub struct Fingerprint(Sha256);

impl Fingerprint {
    pub fn new(kind: &str) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(kind.as_bytes());
        Self(hasher)
    }

    pub fn field(&mut self, name: &str, value: &[u8]) {
        for part in [name.as_bytes(), value] {
            self.0.update((part.len() as u64).to_le_bytes());
            self.0.update(part);
        }
    }

    pub fn finish(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

/// A key this request holds until it stores its response or gives up.
pub struct Held {
    pub key: String,
}

/// What to do with a keyed submission.
pub enum Begin {
    /// Go on; store the response with the job.
    Proceed(Held),
    /// Answer this instead (a replay or a conflict).
    Respond(Response),
}

pub async fn begin(
    state: &AppState,
    principal: &Principal,
    key: String,
    fingerprint: [u8; 32],
) -> Result<Begin> {
    match idempotency::claim(&state.db, principal.account_id, &key, &fingerprint).await? {
        Claim::Acquired => Ok(Begin::Proceed(Held { key })),
        Claim::Replay {
            status,
            body,
            job_id,
        } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::ACCEPTED);
            let mut response = (status, body).into_response();
            let headers = response.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            headers.insert(REPLAYED, HeaderValue::from_static("true"));
            if let Some(location) =
                job_id.and_then(|id| HeaderValue::from_str(&format!("/v1/jobs/{id}")).ok())
            {
                headers.insert(LOCATION, location);
            }
            Ok(Begin::Respond(response))
        }
        Claim::InProgress => Err(ApiError::Conflict {
            code: "idempotency_in_progress",
            message: "a request with this Idempotency-Key is still in progress; retry shortly"
                .into(),
        }),
        Claim::Mismatch => Err(Invalid::IdempotencyKeyReused.into()),
    }
}

/// Forgets a claim whose request failed.
pub async fn abandon(state: &AppState, principal: &Principal, held: &Held) {
    if let Err(e) = idempotency::abandon(&state.db, principal.account_id, &held.key).await {
        // Its lock expires by itself; until then a retry gets a 409.
        tracing::warn!(error = %e, "releasing an idempotency key");
    }
}

/// Forgets a stored response whose job cannot answer a replay any more.
pub async fn forget(state: &AppState, principal: &Principal, key: &str, job_id: uuid::Uuid) {
    if let Err(e) = idempotency::forget(&state.db, principal.account_id, key, job_id).await {
        // The replay keeps answering with that job until the key expires.
        tracing::warn!(error = %e, "forgetting an idempotency key");
    }
}

/// Whether a response is a stored one replayed.
pub fn replayed(response: &Response) -> bool {
    response.headers().contains_key(&REPLAYED)
}
