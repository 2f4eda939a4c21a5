//! Operator endpoints (`admin` scope): accounts, tiers, per-account limit
//! overrides, suspension and users.
//!
//! Longer than most files: its routes are one resource, an account and its
//! users, and creating an account can create its first user in the same
//! transaction, so the user checks (`prepare_user`, `insert_user`) serve
//! both; a third of the file is request bodies and OpenAPI annotations.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;
use voxq_shared::auth::limits::{LimitsOverride, Tier};
use voxq_shared::auth::password;
use voxq_shared::auth::scope::{Role, Scope};
use voxq_shared::db::accounts::{self, Account, AccountChanges, ResultCachePolicy};
use voxq_shared::db::users;

use crate::error::{ApiError, ErrorBody, Result};
use crate::http::extract::{ApiJson, ApiQuery, PathId};
use crate::http::principal::{Principal, RequestMeta};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/admin/accounts",
            post(create_account).get(list_accounts),
        )
        .route(
            "/v1/admin/accounts/{id}",
            get(show_account).patch(update_account),
        )
        .route("/v1/admin/accounts/{id}/users", post(create_user))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    email: String,
    password: String,
    #[serde(default)]
    role: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    name: String,
    #[serde(default)]
    tier: Option<String>,
    #[serde(default)]
    limits: Option<LimitsOverride>,
    /// The account's first user.
    #[serde(default)]
    owner: Option<NewUser>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountPatch {
    #[serde(default)]
    tier: Option<String>,
    /// Replaces the account's overrides; `{}` clears them.
    #[serde(default)]
    limits: Option<LimitsOverride>,
    #[serde(default)]
    suspended: Option<bool>,
    /// `bill` (default), `free`, or `off` to opt out of the result cache.
    #[serde(default)]
    result_cache: Option<ResultCachePolicy>,
    /// Days the account's inputs are kept after their job ends (1 to
    /// 3650); 0 keeps them for good.
    #[serde(default)]
    input_retention_days: Option<i32>,
    /// Days the account's results are kept after their job ends (1 to
    /// 3650); 0 keeps them for good.
    #[serde(default)]
    result_retention_days: Option<i32>,
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// Cursor: the last id of the previous page.
    after: Option<Uuid>,
    limit: Option<i64>,
}

fn parse_tier(value: &str) -> Result<Tier> {
    Tier::parse(value).ok_or_else(|| {
        ApiError::unprocessable(
            "invalid_tier",
            format!("unknown tier {value:?}: use free, basic, pro or enterprise"),
        )
    })
}

fn check_limits(limits: &LimitsOverride) -> Result<()> {
    limits
        .validate()
        .map_err(|e| ApiError::unprocessable("invalid_limits", e))
}

/// A new account, with its first user if one was asked for.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct AccountCreated {
    #[serde(flatten)]
    pub account: Account,
    pub owner: Option<users::User>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct AccountList {
    pub accounts: Vec<Account>,
    /// Pass as `after` for the next page; absent on the last one.
    pub next_after: Option<Uuid>,
}

/// Create an account, optionally with its first user.
#[utoipa::path(
    post,
    path = "/v1/admin/accounts",
    tag = "admin",
    security(("bearer" = ["admin"])),
    request_body = NewAccount,
    responses((status = 201, body = AccountCreated), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody))
)]
pub async fn create_account(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    ApiJson(request): ApiJson<NewAccount>,
) -> Result<Response> {
    principal.require(Scope::Admin)?;
    let name = request.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::unprocessable(
            "invalid_name",
            "`name` must be 1 to 200 characters",
        ));
    }
    let tier = request
        .tier
        .as_deref()
        .map(parse_tier)
        .transpose()?
        .unwrap_or(Tier::Free);
    if let Some(limits) = &request.limits {
        check_limits(limits)?;
    }
    // Check the owner before creating anything, so a bad password leaves
    // no orphan account behind.
    let owner = match &request.owner {
        Some(owner) => Some(prepare_user(&state, owner, name).await?),
        None => None,
    };
    // One transaction: an owner whose email is taken leaves no account.
    let mut tx = state.db.begin().await?;
    let mut account = accounts::create(&mut *tx, name, tier).await?;
    if let Some(limits) = request.limits {
        let changes = AccountChanges {
            limits_override: Some(limits),
            ..AccountChanges::default()
        };
        account = accounts::update(&mut *tx, account.id, &changes)
            .await?
            .ok_or(ApiError::NotFound)?;
    }
    let owner = match owner {
        Some(prepared) => Some(insert_user(&mut tx, account.id, prepared).await?),
        None => None,
    };
    tx.commit().await?;
    state
        .audit(meta.audit(
            &principal,
            "account.created",
            format!("account:{}", account.id),
            json!({ "tier": account.tier, "owner": owner.as_ref().map(|u| u.id) }),
        ))
        .await;
    Ok((StatusCode::CREATED, Json(AccountCreated { account, owner })).into_response())
}

/// Accounts in creation order, a page at a time.
#[utoipa::path(
    get,
    path = "/v1/admin/accounts",
    tag = "admin",
    security(("bearer" = ["admin"])),
    params(ListQuery),
    responses((status = 200, body = AccountList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody))
)]
pub async fn list_accounts(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Response> {
    principal.require(Scope::Admin)?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let accounts = accounts::list(&state.db, query.after, limit).await?;
    let next = (accounts.len() as i64 == limit)
        .then(|| accounts.last().map(|a| a.id))
        .flatten();
    Ok(Json(AccountList {
        accounts,
        next_after: next,
    })
    .into_response())
}

/// One account.
#[utoipa::path(
    get,
    path = "/v1/admin/accounts/{id}",
    tag = "admin",
    security(("bearer" = ["admin"])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Account), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody))
)]
pub async fn show_account(
    State(state): State<AppState>,
    principal: Principal,
    PathId(id): PathId,
) -> Result<Response> {
    principal.require(Scope::Admin)?;
    let account = accounts::get(&state.db, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(account).into_response())
}

/// Change an account's tier, limit overrides or suspension.
#[utoipa::path(
    patch,
    path = "/v1/admin/accounts/{id}",
    tag = "admin",
    security(("bearer" = ["admin"])),
    params(("id" = Uuid, Path)),
    request_body = AccountPatch,
    responses((status = 200, body = Account), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 422, body = ErrorBody))
)]
pub async fn update_account(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    PathId(id): PathId,
    ApiJson(patch): ApiJson<AccountPatch>,
) -> Result<Response> {
    principal.require(Scope::Admin)?;
    if let Some(limits) = &patch.limits {
        check_limits(limits)?;
    }
    let changes = AccountChanges {
        tier: patch.tier.as_deref().map(parse_tier).transpose()?,
        limits_override: patch.limits,
        suspended: patch.suspended,
        result_cache: patch.result_cache,
        input_retention_days: retention_days(patch.input_retention_days)?,
        result_retention_days: retention_days(patch.result_retention_days)?,
    };
    let account = accounts::update(&state.db, id, &changes)
        .await?
        .ok_or(ApiError::NotFound)?;
    let action = match changes.suspended {
        Some(true) => "account.suspended",
        Some(false) => "account.unsuspended",
        None => "account.updated",
    };
    state
        .audit(meta.audit(
            &principal,
            action,
            format!("account:{id}"),
            json!({
                "tier": changes.tier,
                "limits": changes.limits_override,
                "suspended": changes.suspended,
                "result_cache": changes.result_cache,
                "input_retention_days": changes.input_retention_days,
                "result_retention_days": changes.result_retention_days,
            }),
        ))
        .await;
    Ok(Json(account).into_response())
}

/// Add a user to an account.
#[utoipa::path(
    post,
    path = "/v1/admin/accounts/{id}/users",
    tag = "admin",
    security(("bearer" = ["admin"])),
    params(("id" = Uuid, Path)),
    request_body = NewUser,
    responses((status = 201, body = users::User), (status = 401, body = ErrorBody),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, description = "`email_taken`", body = ErrorBody),
              (status = 422, body = ErrorBody))
)]
pub async fn create_user(
    State(state): State<AppState>,
    principal: Principal,
    meta: RequestMeta,
    PathId(id): PathId,
    ApiJson(request): ApiJson<NewUser>,
) -> Result<Response> {
    principal.require(Scope::Admin)?;
    let account = accounts::get(&state.db, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let prepared = prepare_user(&state, &request, &account.name).await?;
    let mut conn = state.db.acquire().await?;
    let user = insert_user(&mut conn, account.id, prepared).await?;
    state
        .audit(meta.audit(
            &principal,
            "user.created",
            format!("user:{}", user.id),
            json!({ "account": account.id, "role": user.role }),
        ))
        .await;
    Ok((StatusCode::CREATED, Json(user)).into_response())
}

/// A user that passed validation, with its password already hashed.
struct PreparedUser {
    email: String,
    role: Role,
    password_hash: String,
}

async fn prepare_user(
    state: &AppState,
    user: &NewUser,
    account_name: &str,
) -> Result<PreparedUser> {
    let email = user.email.trim().to_owned();
    let valid_email = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !email.chars().any(char::is_whitespace);
    if !valid_email {
        return Err(ApiError::unprocessable(
            "invalid_email",
            "`email` is not an email address",
        ));
    }
    let role = match user.role.as_deref() {
        None => Role::Member,
        Some(r) => Role::parse(r).ok_or_else(|| {
            ApiError::unprocessable(
                "invalid_role",
                format!("unknown role {r:?}: use member or admin"),
            )
        })?,
    };
    let local = email.split('@').next().unwrap_or_default();
    password::check_policy(
        &user.password,
        state.config.password_min_length,
        &[&email, local, account_name],
    )
    .map_err(|e| ApiError::unprocessable("weak_password", e))?;
    let plain = user.password.clone();
    let password_hash = tokio::task::spawn_blocking(move || password::hash(&plain))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("hashing a password: {e}")))?;
    Ok(PreparedUser {
        email,
        role,
        password_hash,
    })
}

async fn insert_user(
    conn: &mut sqlx::PgConnection,
    account: Uuid,
    user: PreparedUser,
) -> Result<users::User> {
    users::create(conn, account, &user.email, &user.password_hash, user.role)
        .await
        .map_err(|e| {
            if users::is_duplicate_email(&e) {
                ApiError::Conflict {
                    code: "email_taken",
                    message: "a user with this email already exists".into(),
                }
            } else {
                e.into()
            }
        })
}

/// At most ten years; 0 means "keep".
fn retention_days(days: Option<i32>) -> Result<Option<i32>> {
    match days {
        Some(d) if !(0..=3650).contains(&d) => Err(ApiError::unprocessable(
            "invalid_retention",
            "retention is 0 (keep) to 3650 days",
        )),
        other => Ok(other),
    }
}
