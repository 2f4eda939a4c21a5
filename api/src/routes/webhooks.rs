//! Webhook endpoints of the caller's account (Standard Webhooks), their
//! delivery logs, manual redelivery, and the secret that signs per-job
//! `webhook_url` deliveries. Managing needs `webhooks:manage`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use voxq_shared::auth::scope::Scope;
use voxq_shared::db::webhooks::{self as repo, DeliveryView, Endpoint};
use voxq_shared::webhooks::{new_secret, EVENT_TYPES};

use crate::error::{ApiError, ErrorBody, Result};
use crate::http::extract::{ApiJson, PathId};
use crate::http::principal::{Principal, RequestMeta};
use crate::state::AppState;

/// How long a rotated-out secret keeps signing.
const ROTATION_GRACE_HOURS: i32 = 24;
/// Deliveries shown per log page.
const LOG_LIMIT: i64 = 100;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/webhooks", post(create).get(list))
        .route("/v1/webhooks/{id}", get(show).patch(update).delete(remove))
        .route("/v1/webhooks/{id}/rotate-secret", post(rotate))
        .route("/v1/webhooks/{id}/deliveries", get(endpoint_deliveries))
        .route("/v1/webhooks/deliveries/{id}/redeliver", post(redeliver))
        .route("/v1/webhooks/job-secret", get(job_secret))
        .route("/v1/jobs/{id}/webhooks", get(job_deliveries))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpoint {
    /// https (or http where the operator allows it); must resolve to
    /// public addresses only.
    url: String,
    /// `job.started`, `job.progress`, `job.succeeded`, `job.failed`,
    /// `job.cancelled`; empty or absent: all.
    #[serde(default)]
    event_types: Vec<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateEndpoint {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    event_types: Option<Vec<String>>,
    /// `true` re-enables a disabled endpoint; `false` disables it.
    #[serde(default)]
    enabled: Option<bool>,
}

/// A new endpoint with its signing secret.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedEndpoint {
    #[serde(flatten)]
    endpoint: Endpoint,
    /// `whsec_…`: verify `webhook-signature` with it.
    secret: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SecretBody {
    secret: String,
}

fn validate_types(types: &[String]) -> Result<Vec<String>> {
    let mut valid: Vec<String> = Vec::new();
    for t in types {
        if !EVENT_TYPES.contains(&t.as_str()) {
            return Err(ApiError::unprocessable(
                "invalid_event_type",
                format!("unknown event type {t:?}; use one of {EVENT_TYPES:?}"),
            ));
        }
        if !valid.contains(t) {
            valid.push(t.clone());
        }
    }
    Ok(valid)
}

/// Checks a webhook URL at registration: form, scheme, and every address
/// its host resolves to (the dispatcher checks again at each send).
pub async fn check_url(state: &AppState, url: &str) -> Result<String> {
    crate::outbound::webhook(&state.config, url)
        .await
        .map_err(|e| ApiError::unprocessable("invalid_webhook_url", e.0))
}

/// Subscribe an endpoint to job events.
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks",
    security(("bearer" = ["webhooks:manage"])), request_body = CreateEndpoint,
    responses((status = 201, body = CreatedEndpoint),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, description = "`invalid_webhook_url` (not https, internal address, \
            unresolvable) or `invalid_event_type`", body = ErrorBody),
        (status = 409, description = "`too_many_endpoints`: the account has as many \
            endpoints as it may register", body = ErrorBody)))]
pub async fn create(
    principal: Principal,
    meta: RequestMeta,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateEndpoint>,
) -> Result<Response> {
    principal.require(Scope::WebhooksManage)?;
    let url = check_url(&state, &body.url).await?;
    let types = validate_types(&body.event_types)?;
    let secret = new_secret();
    let max = state.config.webhooks.max_endpoints;
    let endpoint = repo::create_endpoint(
        &state.db,
        principal.account_id,
        &url,
        &types,
        &secret,
        i64::from(max),
    )
    .await?
    .ok_or_else(|| ApiError::Conflict {
        code: "too_many_endpoints",
        message: format!(
            "an account may register at most {max} webhook endpoints; delete one first"
        ),
    })?;
    state
        .audit(meta.audit(
            &principal,
            "webhook.create",
            format!("webhook:{}", endpoint.id),
            serde_json::json!({ "url": url }),
        ))
        .await;
    Ok((
        StatusCode::CREATED,
        Json(CreatedEndpoint { endpoint, secret }),
    )
        .into_response())
}

/// The account's endpoints (secrets are not shown again).
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks",
    security(("bearer" = ["webhooks:manage"])),
    responses((status = 200, body = [Endpoint]), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn list(
    principal: Principal,
    State(state): State<AppState>,
) -> Result<Json<Vec<Endpoint>>> {
    principal.require(Scope::WebhooksManage)?;
    Ok(Json(
        repo::list_endpoints(&state.db, principal.account_id).await?,
    ))
}

/// One endpoint, with why it is disabled if it is.
#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = "webhooks",
    security(("bearer" = ["webhooks:manage"])), params(("id" = Uuid, Path)),
    responses((status = 200, body = Endpoint), (status = 404, body = ErrorBody)))]
pub async fn show(
    principal: Principal,
    State(state): State<AppState>,
    PathId(id): PathId,
) -> Result<Json<Endpoint>> {
    principal.require(Scope::WebhooksManage)?;
    repo::get_endpoint(&state.db, principal.account_id, id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound)
}

/// Change the URL or event types; enable or disable.
#[utoipa::path(patch, path = "/v1/webhooks/{id}", tag = "webhooks",
    security(("bearer" = ["webhooks:manage"])), params(("id" = Uuid, Path)),
    request_body = UpdateEndpoint,
    responses((status = 200, body = Endpoint), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn update(
    principal: Principal,
    State(state): State<AppState>,
    PathId(id): PathId,
    ApiJson(body): ApiJson<UpdateEndpoint>,
) -> Result<Json<Endpoint>> {
    principal.require(Scope::WebhooksManage)?;
    let url = match &body.url {
        Some(url) => Some(check_url(&state, url).await?),
        None => None,
    };
    let types = body
        .event_types
        .as_deref()
        .map(validate_types)
        .transpose()?;
    repo::update_endpoint(
        &state.db,
        principal.account_id,
        id,
        url.as_deref(),
        types.as_deref(),
        body.enabled,
    )
    .await?
    .map(Json)
    .ok_or(ApiError::NotFound)
}

/// Unsubscribe; pending deliveries to it are dropped.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks",
    security(("bearer" = ["webhooks:manage"])), params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn remove(
    principal: Principal,
    State(state): State<AppState>,
    PathId(id): PathId,
) -> Result<StatusCode> {
    principal.require(Scope::WebhooksManage)?;
    if repo::delete_endpoint(&state.db, principal.account_id, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}

/// A new signing secret; the old one keeps signing (a second signature in
/// `webhook-signature`) for 24 hours, so receivers can switch over.
#[utoipa::path(post, path = "/v1/webhooks/{id}/rotate-secret", tag = "webhooks",
    security(("bearer" = ["webhooks:manage"])), params(("id" = Uuid, Path)),
    responses((status = 200, body = SecretBody), (status = 404, body = ErrorBody)))]
pub async fn rotate(
    principal: Principal,
    State(state): State<AppState>,
    PathId(id): PathId,
) -> Result<Json<SecretBody>> {
    principal.require(Scope::WebhooksManage)?;
    let secret = new_secret();
    if repo::rotate_secret(
        &state.db,
        principal.account_id,
        id,
        &secret,
        ROTATION_GRACE_HOURS,
    )
    .await?
    {
        Ok(Json(SecretBody { secret }))
    } else {
        Err(ApiError::NotFound)
    }
}

/// The secret that signs deliveries to per-job `webhook_url`s.
#[utoipa::path(get, path = "/v1/webhooks/job-secret", tag = "webhooks",
    security(("bearer" = ["webhooks:manage"])),
    responses((status = 200, body = SecretBody), (status = 403, body = ErrorBody)))]
pub async fn job_secret(
    principal: Principal,
    State(state): State<AppState>,
) -> Result<Json<SecretBody>> {
    principal.require(Scope::WebhooksManage)?;
    let secret = repo::job_secret(&state.db, principal.account_id, &new_secret()).await?;
    Ok(Json(SecretBody { secret }))
}

/// The endpoint's newest deliveries, each attempt with its status,
/// latency and the start of the receiver's answer.
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks",
    security(("bearer" = ["webhooks:manage"])), params(("id" = Uuid, Path)),
    responses((status = 200, body = [DeliveryView]), (status = 404, body = ErrorBody)))]
pub async fn endpoint_deliveries(
    principal: Principal,
    State(state): State<AppState>,
    PathId(id): PathId,
) -> Result<Json<Vec<DeliveryView>>> {
    principal.require(Scope::WebhooksManage)?;
    repo::get_endpoint(&state.db, principal.account_id, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(
        repo::deliveries(&state.db, principal.account_id, Some(id), None, LOG_LIMIT).await?,
    ))
}

/// The webhook deliveries of one job's events (endpoints and its own
/// `webhook_url`).
#[utoipa::path(get, path = "/v1/jobs/{id}/webhooks", tag = "webhooks",
    security(("bearer" = ["jobs:read"])), params(("id" = Uuid, Path)),
    responses((status = 200, body = [DeliveryView]), (status = 404, body = ErrorBody)))]
pub async fn job_deliveries(
    principal: Principal,
    State(state): State<AppState>,
    PathId(id): PathId,
) -> Result<Json<Vec<DeliveryView>>> {
    principal.require(Scope::JobsRead)?;
    voxq_shared::db::jobs::find_for_account(&state.db, principal.account_id, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(
        repo::deliveries(&state.db, principal.account_id, None, Some(id), LOG_LIMIT).await?,
    ))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Redelivery {
    /// The new delivery (same event, same `webhook-id`).
    id: i64,
}

/// Send a delivery's event again, now.
#[utoipa::path(post, path = "/v1/webhooks/deliveries/{id}/redeliver", tag = "webhooks",
    security(("bearer" = ["webhooks:manage"])), params(("id" = i64, Path)),
    responses((status = 202, body = Redelivery), (status = 404, body = ErrorBody)))]
pub async fn redeliver(
    principal: Principal,
    State(state): State<AppState>,
    PathId(id): PathId<i64>,
) -> Result<Response> {
    principal.require(Scope::WebhooksManage)?;
    let new = repo::redeliver(&state.db, principal.account_id, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok((StatusCode::ACCEPTED, Json(Redelivery { id: new })).into_response())
}
