//! `GET /v1/usage`: today's quotas (used, reserved, remaining, reset) and,
//! for a date range, daily rows from Postgres.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use voxq_shared::auth::limits::Tier;
use voxq_shared::auth::scope::Scope;
use voxq_shared::quota::ledger::{self as quota_repo, DailyUsage};
use voxq_shared::quota::{self, Counters};

use crate::error::{ApiError, ErrorBody, Result};
use crate::http::extract::ApiQuery;
use crate::http::principal::Principal;
use crate::state::AppState;

const MAX_RANGE_DAYS: i64 = 366;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/usage", get(usage))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    /// First day of the daily rows (`YYYY-MM-DD`, UTC).
    from: Option<NaiveDate>,
    /// Last day of the daily rows; defaults to today.
    to: Option<NaiveDate>,
}

/// One metered resource today. Seconds for time, characters for text.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ResourceUsage {
    pub limit: u64,
    /// Measured usage of finished jobs.
    pub used: f64,
    /// Held by queued and running jobs.
    pub reserved: f64,
    pub remaining: f64,
}

impl ResourceUsage {
    fn new(limit: u64, used: f64, reserved: f64) -> Self {
        Self {
            limit,
            used,
            reserved,
            remaining: (limit as f64 - used - reserved).max(0.0),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ConcurrencyUsage {
    pub limit: u64,
    /// Jobs queued or running now.
    pub used: u64,
    pub remaining: u64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Resources {
    pub requests: ResourceUsage,
    pub audio_seconds: ResourceUsage,
    pub text_chars: ResourceUsage,
    pub processing_seconds: ResourceUsage,
    pub concurrent_jobs: ConcurrencyUsage,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RateLimitInfo {
    pub requests_per_minute: u64,
    pub burst: u64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct UsageReport {
    /// Today (UTC).
    pub day: NaiveDate,
    pub tier: Tier,
    /// When the daily quotas reset: the next 00:00 UTC.
    pub resets_at: Option<DateTime<Utc>>,
    pub resources: Resources,
    pub rate_limit: RateLimitInfo,
    /// With `from`/`to`: one row per day with jobs or usage, from Postgres.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daily: Option<Vec<DailyUsage>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<NaiveDate>,
}

/// Today's counters, rebuilt from Postgres if Redis has lost them.
pub async fn counters(state: &AppState, principal: &Principal, day: NaiveDate) -> Result<Counters> {
    match state.quotas.read(principal.account_id, day).await? {
        Some(c) => Ok(c),
        None => Ok(
            quota_repo::rebuild(&state.db, &state.quotas, principal.account_id, day, true).await?,
        ),
    }
}

/// Today's quotas and, for a date range, daily usage.
#[utoipa::path(
    get,
    path = "/v1/usage",
    tag = "usage",
    security(("bearer" = ["usage:read"])),
    params(UsageQuery),
    responses((status = 200, body = UsageReport), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody), (status = 403, body = ErrorBody))
)]
pub async fn usage(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(query): ApiQuery<UsageQuery>,
) -> Result<Json<UsageReport>> {
    principal.require(Scope::UsageRead)?;
    let day = quota::today();
    let c = counters(&state, &principal, day).await?;
    let l = principal.limits;
    let ms = |v: u64| v as f64 / 1000.0;
    let inflight = c.inflight.len() as u64;
    let mut report = UsageReport {
        day,
        tier: principal.tier,
        resets_at: day
            .succ_opt()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc()),
        resources: Resources {
            requests: ResourceUsage::new(l.requests_per_day, c.requests as f64, 0.0),
            audio_seconds: ResourceUsage::new(
                l.audio_seconds_per_day,
                ms(c.used.audio_ms),
                ms(c.reserved.audio_ms),
            ),
            text_chars: ResourceUsage::new(
                l.text_chars_per_day,
                c.used.text_chars as f64,
                c.reserved.text_chars as f64,
            ),
            processing_seconds: ResourceUsage::new(
                l.processing_seconds_per_day,
                ms(c.used.processing_ms),
                ms(c.reserved.processing_ms),
            ),
            concurrent_jobs: ConcurrencyUsage {
                limit: l.concurrent_jobs,
                used: inflight,
                remaining: l.concurrent_jobs.saturating_sub(inflight),
            },
        },
        rate_limit: RateLimitInfo {
            requests_per_minute: l.requests_per_minute,
            burst: l.burst,
        },
        daily: None,
        from: None,
        to: None,
    };
    if query.from.is_some() || query.to.is_some() {
        let to = query.to.unwrap_or(day);
        let from = query.from.unwrap_or(to);
        if from > to || (to - from).num_days() >= MAX_RANGE_DAYS {
            return Err(ApiError::BadRequest(format!(
                "`from` must not be after `to`, and the range at most {MAX_RANGE_DAYS} days"
            )));
        }
        report.daily = Some(quota_repo::daily(&state.db, principal.account_id, from, to).await?);
        report.from = Some(from);
        report.to = Some(to);
    }
    Ok(Json(report))
}
