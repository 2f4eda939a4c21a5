//! `GET /v1/usage`: today's quotas (used, reserved, remaining, reset) and,
//! for a date range, daily rows from Postgres.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{json, Value};
use voxq_shared::auth::scope::Scope;
use voxq_shared::db::quotas as quota_repo;
use voxq_shared::quota::{self, Counters};

use crate::error::{ApiError, Result};
use crate::principal::Principal;
use crate::state::AppState;

const MAX_RANGE_DAYS: i64 = 366;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/usage", get(usage))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsageQuery {
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
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

fn resource(limit: u64, used: f64, reserved: f64) -> Value {
    json!({
        "limit": limit,
        "used": used,
        "reserved": reserved,
        "remaining": (limit as f64 - used - reserved).max(0.0),
    })
}

async fn usage(
    State(state): State<AppState>,
    principal: Principal,
    query: std::result::Result<Query<UsageQuery>, QueryRejection>,
) -> Result<Json<Value>> {
    principal.require(Scope::UsageRead)?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let day = quota::today();
    let c = counters(&state, &principal, day).await?;
    let l = principal.limits;
    let ms = |v: u64| v as f64 / 1000.0;
    let resets_at = day
        .succ_opt()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc());
    let mut body = json!({
        "day": day,
        "tier": principal.tier,
        "resets_at": resets_at,
        "resources": {
            "requests": resource(l.requests_per_day, c.requests as f64, 0.0),
            "audio_seconds": resource(l.audio_seconds_per_day, ms(c.used.audio_ms), ms(c.reserved.audio_ms)),
            "text_chars": resource(l.text_chars_per_day, c.used.text_chars as f64, c.reserved.text_chars as f64),
            "processing_seconds": resource(l.processing_seconds_per_day, ms(c.used.processing_ms), ms(c.reserved.processing_ms)),
            "concurrent_jobs": {
                "limit": l.concurrent_jobs,
                "used": c.inflight.len(),
                "remaining": l.concurrent_jobs.saturating_sub(c.inflight.len() as u64),
            },
        },
        "rate_limit": {
            "requests_per_minute": l.requests_per_minute,
            "burst": l.burst,
        },
    });
    if query.from.is_some() || query.to.is_some() {
        let to = query.to.unwrap_or(day);
        let from = query.from.unwrap_or(to);
        if from > to || (to - from).num_days() >= MAX_RANGE_DAYS {
            return Err(ApiError::BadRequest(format!(
                "`from` must not be after `to`, and the range at most {MAX_RANGE_DAYS} days"
            )));
        }
        let daily = quota_repo::daily(&state.db, principal.account_id, from, to).await?;
        body["daily"] = json!(daily);
        body["from"] = json!(from);
        body["to"] = json!(to);
    }
    Ok(Json(body))
}
