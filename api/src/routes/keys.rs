//! API keys of the caller's account: create (shown once), list, rotate,
//! revoke. All need the `keys:manage` scope.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::{Json, Router};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;
use voxq_shared::auth::scope::{Scope, Scopes};
use voxq_shared::db::api_keys::{self, CreatedKey, KeySpec};

use super::json::ApiJson;
use crate::error::{ApiError, Result};
use crate::principal::{Principal, RequestMeta};
use crate::state::AppState;

/// A rotation's old key may live on for at most a week.
const MAX_GRACE_SECONDS: i64 = 7 * 24 * 3600;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/keys", post(create).get(list))
        .route("/v1/keys/{id}", delete(revoke).get(show))
        .route("/v1/keys/{id}/rotate", post(rotate))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateKey {
    #[serde(default)]
    name: String,
    /// Defaults to the caller's own scopes.
    #[serde(default)]
    scopes: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateKey {
    /// Seconds the old key keeps working; 0 (default) ends it now.
    #[serde(default)]
    grace_seconds: i64,
}

/// The key's id in the path; malformed ids name nothing, like unknown ones.
fn key_id(id: &str) -> Result<Uuid> {
    Uuid::parse_str(id).map_err(|_| ApiError::NotFound)
}

fn created_body(created: &CreatedKey) -> serde_json::Value {
    let mut body = serde_json::to_value(&created.info).unwrap_or_default();
    body["key"] = json!(created.key.plaintext.expose_secret());
    body
}

async fn create(
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
            created_by_user: principal.user_id(),
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
    Ok((StatusCode::CREATED, Json(created_body(&created))).into_response())
}

async fn list(State(state): State<AppState>, principal: Principal) -> Result<Response> {
    principal.require(Scope::KeysManage)?;
    let keys = api_keys::list(&state.db, principal.account_id).await?;
    Ok(Json(json!({ "keys": keys })).into_response())
}

async fn show(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Response> {
    principal.require(Scope::KeysManage)?;
    let id = key_id(&id)?;
    let key = api_keys::list(&state.db, principal.account_id)
        .await?
        .into_iter()
        .find(|k| k.id == id)
        .ok_or(ApiError::NotFound)?;
    Ok(Json(key).into_response())
}

async fn rotate(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
    body: Option<ApiJson<RotateKey>>,
) -> Result<Response> {
    principal.require(Scope::KeysManage)?;
    let id = key_id(&id)?;
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
    let mut body = created_body(&created);
    body["replaces"] = serde_json::to_value(&old).unwrap_or_default();
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn revoke(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    Path(id): Path<String>,
) -> Result<Response> {
    principal.require(Scope::KeysManage)?;
    let id = key_id(&id)?;
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
