//! Login sessions: `POST /v1/auth/login`, `/refresh`, `/logout`, and
//! `GET /v1/me`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use redis::AsyncCommands;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;
use voxq_shared::auth::limits::{Limits, Tier};
use voxq_shared::auth::password;
use voxq_shared::auth::scope::Scopes;
use voxq_shared::db::audit::AuditEvent;
use voxq_shared::db::sessions::{self, IssuedRefresh, Rotation};
use voxq_shared::db::users;

use crate::error::{ApiError, ErrorBody, Result};
use crate::http::extract::ApiJson;
use crate::http::login_throttle::LoginThrottle;
use crate::http::principal::{revoked_jti_key, Actor, Principal, RequestMeta};
use crate::http::rate_limit::Policy;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/auth/login", post(login))
        .route("/v1/auth/refresh", post(refresh))
        .route("/v1/auth/logout", post(logout))
        .route("/v1/me", get(me))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    email: String,
    password: String,
    /// The `device_token` of an earlier successful login with this email
    /// on this device: failed logins by others do not lock it out.
    #[serde(default)]
    device_token: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    refresh_token: String,
}

/// Optional: another refresh token of the same user whose session ends too.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogoutRequest {
    #[serde(default)]
    refresh_token: Option<String>,
}

/// A login session's tokens.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    /// HS256 JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// `Bearer`.
    pub token_type: &'static str,
    /// Seconds the access token lives.
    pub expires_in: i64,
    /// Space-separated scopes.
    pub scope: String,
    /// Single use: `POST /v1/auth/refresh` spends it for a new pair.
    pub refresh_token: String,
    pub refresh_token_expires_at: chrono::DateTime<chrono::Utc>,
    /// Login only: keep it on this device and send it with the next login
    /// (`device_token`), so others' failed guesses never lock this device
    /// out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_token: Option<String>,
}

/// What the presented credential is and may do.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Me {
    pub account_id: Uuid,
    /// `key:<id>` or `user:<id>`.
    pub actor: String,
    pub tier: Tier,
    pub scopes: Vec<String>,
    pub limits: Limits,
}

/// Log in with email and password. One answer for a wrong password and an
/// unknown email alike (same status, body and, through the dummy hash, the
/// same time).
#[utoipa::path(
    post,
    path = "/v1/auth/login",
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, description = "`invalid_credentials`", body = ErrorBody),
        (status = 403, description = "`account_suspended`", body = ErrorBody),
        (status = 429, description = "`rate_limited` or `login_locked`", body = ErrorBody),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    meta: RequestMeta,
    ApiJson(request): ApiJson<LoginRequest>,
) -> Result<Response> {
    let policy = Policy {
        name: "login",
        per_minute: state.config.login_rate_per_minute,
        burst: state.config.login_burst,
    };
    let address = meta.address_group(&state);
    let decision = state.limiter.check(&address, policy).await?;
    if !decision.allowed {
        return Ok(decision.rejection());
    }
    if request.email.len() > 254 || request.password.len() > 4 * password::MAX_LENGTH {
        return Err(ApiError::InvalidCredentials);
    }
    let throttle = LoginThrottle::new(
        &state,
        &request.email,
        &address,
        request.device_token.as_deref(),
    );
    if let Some(retry_after) = throttle.locked_for(&state).await? {
        audit_login(&state, &meta, "login.locked", None, &request.email).await;
        return Err(ApiError::TooManyRequests {
            code: "login_locked",
            message: "too many failed logins; try again later".into(),
            limit: "login_failures".into(),
            retry_after,
        });
    }
    let found = users::find_by_email(&state.db, request.email.trim()).await?;
    let stored = found
        .as_ref()
        .map(|c| c.password_hash.clone())
        .unwrap_or_else(|| state.dummy_password_hash.as_ref().clone());
    let presented = request.password.clone();
    let verified = tokio::task::spawn_blocking(move || password::verify(&presented, &stored))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    let Some(credentials) = found.filter(|_| verified) else {
        throttle.fail(&state).await?;
        audit_login(&state, &meta, "login.failed", None, &request.email).await;
        return Err(ApiError::InvalidCredentials);
    };
    let device_token = throttle.succeed(&state).await?;
    let user = credentials.user;
    let refresh = sessions::start(&state.db, user.id, refresh_ttl(&state)).await?;
    let response = session_response(&state, user.id, refresh, Some(device_token)).await?;
    audit_login(
        &state,
        &meta,
        "login.succeeded",
        Some(&user),
        &request.email,
    )
    .await;
    Ok(response)
}

async fn audit_login(
    state: &AppState,
    meta: &RequestMeta,
    action: &'static str,
    user: Option<&users::User>,
    email: &str,
) {
    let email: String = email.chars().take(254).collect();
    state
        .audit(AuditEvent {
            account_id: user.map(|u| u.account_id),
            actor: user.map_or("anonymous".into(), |u| format!("user:{}", u.id)),
            action,
            target: Some(format!("email:{email}")),
            ip: Some(meta.ip.to_string()),
            request_id: meta.request_id.clone(),
            details: serde_json::Value::Null,
        })
        .await;
}

fn refresh_ttl(state: &AppState) -> chrono::Duration {
    chrono::Duration::seconds(i64::try_from(state.config.refresh_token_ttl).unwrap_or(86_400))
}

/// Access token for the session's current state (403 for a suspended
/// account), plus the refresh token.
async fn session_response(
    state: &AppState,
    user_id: Uuid,
    refresh: IssuedRefresh,
    device_token: Option<String>,
) -> Result<Response> {
    let session = sessions::state(&state.db, user_id, refresh.family_id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    if session.suspended {
        sessions::revoke_family(&state.db, refresh.family_id, "account suspended").await?;
        return Err(ApiError::forbidden(
            "account_suspended",
            "this account is suspended; contact the operator",
        ));
    }
    let scopes = Scopes::for_role(session.role);
    let (token, claims) = state
        .tokens
        .issue(user_id, session.account_id, refresh.family_id, &scopes)
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(Json(TokenResponse {
        access_token: token,
        token_type: "Bearer",
        expires_in: state.tokens.ttl_seconds(),
        scope: claims.scope,
        refresh_token: refresh.token,
        refresh_token_expires_at: refresh.expires_at,
        device_token,
    })
    .into_response())
}

/// Spend a refresh token for a new pair. Presenting a spent token again
/// revokes the whole session.
#[utoipa::path(
    post,
    path = "/v1/auth/refresh",
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, body = ErrorBody),
        (status = 403, description = "`account_suspended`", body = ErrorBody),
    )
)]
pub async fn refresh(
    State(state): State<AppState>,
    meta: RequestMeta,
    ApiJson(request): ApiJson<RefreshRequest>,
) -> Result<Response> {
    match sessions::rotate(&state.db, &request.refresh_token, refresh_ttl(&state)).await? {
        Rotation::Rotated { user_id, refresh } => {
            session_response(&state, user_id, refresh, None).await
        }
        Rotation::ReuseDetected { user_id, family_id } => {
            tracing::warn!(%user_id, %family_id, "refresh token reuse; session revoked");
            let account_id = users::get(&state.db, user_id).await?.map(|u| u.account_id);
            state
                .audit(AuditEvent {
                    account_id,
                    actor: format!("user:{user_id}"),
                    action: "session.revoked",
                    target: Some(format!("session:{family_id}")),
                    ip: Some(meta.ip.to_string()),
                    request_id: meta.request_id,
                    details: json!({ "reason": "refresh token reuse" }),
                })
                .await;
            Err(ApiError::Unauthorized)
        }
        Rotation::Invalid => Err(ApiError::Unauthorized),
    }
}

/// End the caller's session: its refresh tokens and this access token stop
/// working at once, on every instance.
#[utoipa::path(
    post,
    path = "/v1/auth/logout",
    tag = "auth",
    security(("bearer" = [])),
    request_body(content = Option<LogoutRequest>),
    responses(
        (status = 204, description = "Session ended"),
        (status = 400, description = "An API key is not a session", body = ErrorBody),
        (status = 401, body = ErrorBody),
    )
)]
pub async fn logout(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    body: Option<ApiJson<LogoutRequest>>,
) -> Result<Response> {
    let Actor::User {
        user_id,
        jti,
        family_id,
        expires_at,
    } = principal.actor
    else {
        return Err(ApiError::BadRequest(
            "logout ends a login session; revoke API keys with DELETE /v1/keys/{id}".into(),
        ));
    };
    let mut families = vec![family_id];
    if let Some(ApiJson(LogoutRequest {
        refresh_token: Some(token),
    })) = body
    {
        if let Some((other, owner)) = sessions::family_of(&state.db, &token).await? {
            if owner == user_id {
                families.push(other);
            }
        }
    }
    for family in &families {
        sessions::revoke_family(&state.db, *family, "logout").await?;
    }
    let ttl = (expires_at - chrono::Utc::now().timestamp()).max(1) + 60;
    let _: () = state
        .redis
        .clone()
        .set_ex(
            revoked_jti_key(&state.config.common.namespace, jti),
            1,
            u64::try_from(ttl).unwrap_or(1),
        )
        .await?;
    state
        .audit(meta.audit(
            &principal,
            "logout",
            format!("session:{family_id}"),
            json!({ "sessions": families }),
        ))
        .await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// What the presented credential is and may do.
#[utoipa::path(
    get,
    path = "/v1/me",
    tag = "auth",
    security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody))
)]
pub async fn me(principal: Principal) -> Json<Me> {
    let actor = principal.actor_label();
    Json(Me {
        account_id: principal.account_id,
        actor,
        tier: principal.tier,
        scopes: principal.scopes.names(),
        limits: principal.limits,
    })
}
