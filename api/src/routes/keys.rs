//! API keys of the caller's account: create (shown once), list, rotate,
//! revoke. All need the `keys:manage` scope, and a credential only sees and
//! acts on keys whose scopes it holds itself: a weaker key can never mint,
//! read, rotate or revoke a stronger one.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::{Json, Router};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;
use voxq_shared::auth::scope::{Scope, Scopes};
use voxq_shared::db::api_keys::{self, CreatedKey, KeyInfo, KeySpec};

use crate::error::{ApiError, ErrorBody, Result};
use crate::http::extract::{ApiJson, PathId};
use crate::http::principal::{Principal, RequestMeta};
use crate::state::AppState;

/// A rotation's old key may live on for at most a week.
const MAX_GRACE_SECONDS: i64 = 7 * 24 * 3600;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/keys", post(create).get(list))
        .route("/v1/keys/{id}", delete(revoke).get(show))
        .route("/v1/keys/{id}/rotate", post(rotate))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    #[serde(default)]
    name: String,
    /// Defaults to the caller's own scopes.
    #[serde(default)]
    scopes: Option<Vec<String>>,
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKey {
    /// Seconds the old key keeps working; 0 (default) ends it now.
    #[serde(default)]
    grace_seconds: i64,
}

/// A new key: shown this once, never again.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedKeyBody {
    #[serde(flatten)]
    pub info: KeyInfo,
    /// The whole key (`voxq_…`).
    pub key: String,
    /// Rotation only: the key this one replaces, with its expiry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaces: Option<KeyInfo>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct KeyList {
    pub keys: Vec<KeyInfo>,
}

fn created_body(created: CreatedKey, replaces: Option<KeyInfo>) -> CreatedKeyBody {
    CreatedKeyBody {
        key: created.key.plaintext.expose_secret().to_owned(),
        info: created.info,
        replaces,
    }
}

/// Create an API key; the key is in this answer only.
#[utoipa::path(
    post,
    path = "/v1/keys",
    tag = "keys",
    security(("bearer" = ["keys:manage"])),
    request_body = CreateKey,
    responses(
        (status = 201, body = CreatedKeyBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "`insufficient_scope`, also for scopes the creator lacks", body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    ApiJson(request): ApiJson<CreateKey>,
) -> Result<Response> {
    principal.require(Scope::KeysManage)?;
    if request.name.chars().count() > 200 {
        return Err(ApiError::unprocessable(
            "invalid_name",
            "`name` is at most 200 characters",
        ));
    }
    let scopes = match request.scopes {
        None => principal.scopes.clone(),
        Some(names) => Scopes::parse(names.iter().map(String::as_str)).map_err(|unknown| {
            ApiError::unprocessable("invalid_scope", format!("unknown scope {unknown:?}"))
        })?,
    };
    if scopes.is_empty() {
        return Err(ApiError::unprocessable(
            "invalid_scope",
            "a key needs at least one scope",
        ));
    }
    // A key can never do more than whoever made it.
    if !scopes.is_subset_of(&principal.scopes) {
        return Err(ApiError::forbidden(
            "insufficient_scope",
            "a key cannot have scopes its creator lacks",
        ));
    }
    let created = api_keys::create(
        &state.db,
        &state.config.common.key_pepper,
        &KeySpec {
            account_id: principal.account_id,
            name: &request.name,
            scopes: &scopes,
            created_by_user: principal.authority_user(),
        },
    )
    .await?;
    state
        .audit(meta.audit(
            &principal,
            "key.created",
            format!("key:{}", created.info.id),
            json!({ "scopes": scopes.names() }),
        ))
        .await;
    Ok((StatusCode::CREATED, Json(created_body(created, None))).into_response())
}

/// The account's keys, revoked ones included, except keys with scopes the
/// caller lacks; never a secret.
#[utoipa::path(
    get,
    path = "/v1/keys",
    tag = "keys",
    security(("bearer" = ["keys:manage"])),
    responses((status = 200, body = KeyList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody))
)]
pub async fn list(State(state): State<AppState>, principal: Principal) -> Result<Json<KeyList>> {
    principal.require(Scope::KeysManage)?;
    let keys = api_keys::list(&state.db, principal.account_id)
        .await?
        .into_iter()
        .filter(|key| within_reach(&principal, key))
        .collect();
    Ok(Json(KeyList { keys }))
}

/// One key of the account.
#[utoipa::path(
    get,
    path = "/v1/keys/{id}",
    tag = "keys",
    security(("bearer" = ["keys:manage"])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = KeyInfo), (status = 401, body = ErrorBody),
               (status = 403, description = "`insufficient_scope`, also for a key with scopes the caller lacks", body = ErrorBody),
               (status = 404, body = ErrorBody))
)]
pub async fn show(
    State(state): State<AppState>,
    principal: Principal,
    PathId(id): PathId,
) -> Result<Response> {
    let key = reachable_key(&state, &principal, id).await?;
    Ok(Json(key).into_response())
}

/// Whether the key's scopes are all the caller's own.
fn within_reach(principal: &Principal, key: &KeyInfo) -> bool {
    Scopes::from_stored(&key.scopes).is_subset_of(&principal.scopes)
}

/// The account's key named in the path, if the caller may act on it: 404
/// when there is no such key, 403 when it is stronger than the caller.
/// A key's scopes never change (rotation makes a new key), so checking here
/// before acting cannot race with a change of the key.
async fn reachable_key(state: &AppState, principal: &Principal, id: Uuid) -> Result<KeyInfo> {
    principal.require(Scope::KeysManage)?;
    let key = api_keys::get(&state.db, principal.account_id, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if !within_reach(principal, &key) {
        return Err(ApiError::forbidden(
            "insufficient_scope",
            "this key has scopes your credential lacks",
        ));
    }
    Ok(key)
}

/// Replace a key with a new one of the same name and scopes.
#[utoipa::path(
    post,
    path = "/v1/keys/{id}/rotate",
    tag = "keys",
    security(("bearer" = ["keys:manage"])),
    params(("id" = Uuid, Path)),
    request_body(content = Option<RotateKey>),
    responses((status = 201, body = CreatedKeyBody), (status = 401, body = ErrorBody),
               (status = 403, description = "`insufficient_scope`, also for a key with scopes the caller lacks", body = ErrorBody),
               (status = 404, description = "No such live, unrotated key", body = ErrorBody),
               (status = 422, body = ErrorBody))
)]
pub async fn rotate(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    PathId(id): PathId,
    body: Option<ApiJson<RotateKey>>,
) -> Result<Response> {
    let id = reachable_key(&state, &principal, id).await?.id;
    let grace = body.map(|ApiJson(b)| b.grace_seconds).unwrap_or(0);
    if !(0..=MAX_GRACE_SECONDS).contains(&grace) {
        return Err(ApiError::unprocessable(
            "invalid_grace",
            format!("`grace_seconds` must be between 0 and {MAX_GRACE_SECONDS}"),
        ));
    }
    let (created, old) = api_keys::rotate(
        &state.db,
        &state.config.common.key_pepper,
        principal.account_id,
        id,
        chrono::Duration::seconds(grace),
    )
    .await?
    .ok_or(ApiError::NotFound)?;
    state
        .audit(meta.audit(
            &principal,
            "key.rotated",
            format!("key:{id}"),
            json!({ "new_key": created.info.id, "grace_seconds": grace }),
        ))
        .await;
    Ok((StatusCode::CREATED, Json(created_body(created, Some(old)))).into_response())
}

/// Revoke a key at once, on every API instance.
#[utoipa::path(
    delete,
    path = "/v1/keys/{id}",
    tag = "keys",
    security(("bearer" = ["keys:manage"])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = KeyInfo), (status = 401, body = ErrorBody),
               (status = 403, description = "`insufficient_scope`, also for a key with scopes the caller lacks", body = ErrorBody),
               (status = 404, body = ErrorBody))
)]
pub async fn revoke(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    PathId(id): PathId,
) -> Result<Response> {
    let id = reachable_key(&state, &principal, id).await?.id;
    let key = api_keys::revoke(&state.db, principal.account_id, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    state
        .audit(meta.audit(
            &principal,
            "key.revoked",
            format!("key:{id}"),
            serde_json::Value::Null,
        ))
        .await;
    Ok(Json(key).into_response())
}
