//! Request rate limits: GCRA (a leaky bucket kept as one timestamp per
//! client) in a Redis script, so every API instance shares each bucket and
//! a check is a single atomic round trip.
//!
//! Answers carry the IETF `RateLimit-Policy` and `RateLimit` fields
//! (draft-ietf-httpapi-ratelimit-headers): `q` requests per `w` seconds,
//! `r` remaining now, `t` seconds until the bucket is full again.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use redis::aio::ConnectionManager;
use redis::Script;

use crate::error::ApiError;

pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

const GCRA: &str = r#"
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - interval * burst
if allow_at > now then
  return {0, 0, allow_at - now, tat - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.max(1, new_tat - now))
return {1, math.floor((now - allow_at) / interval), 0, new_tat - now}
"#;

/// One limit: `per_minute` sustained, `burst` at once.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub name: &'static str,
    pub per_minute: u64,
    pub burst: u64,
}

#[derive(Debug, Clone, Copy)]
pub struct Decision {
    pub policy: Policy,
    pub allowed: bool,
    pub remaining: u64,
    /// Milliseconds until a denied request may be retried.
    pub retry_after_ms: u64,
    /// Milliseconds until the bucket is full again.
    pub reset_ms: u64,
}

impl Decision {
    /// The 429 for a denied request.
    pub fn error(&self) -> ApiError {
        ApiError::TooManyRequests {
            code: "rate_limited",
            message: format!(
                "rate limit {:?} exceeded: {} requests per minute, bursts of {}",
                self.policy.name, self.policy.per_minute, self.policy.burst
            ),
            limit: format!("{}_requests_per_minute", self.policy.name),
            retry_after: self.retry_after_ms.div_ceil(1000).max(1),
        }
    }

    /// The full 429 answer: error body, `Retry-After` and the rate-limit
    /// fields.
    pub fn rejection(&self) -> Response {
        let mut response = self.error().into_response();
        self.write_headers(response.headers_mut());
        response
    }

    pub fn write_headers(&self, headers: &mut HeaderMap) {
        let p = self.policy;
        let policy = format!("\"{}\";q={};w=60", p.name, p.per_minute);
        let state = format!(
            "\"{}\";r={};t={}",
            p.name,
            self.remaining,
            self.reset_ms.div_ceil(1000)
        );
        if let (Ok(policy), Ok(state)) = (
            HeaderValue::from_str(&policy),
            HeaderValue::from_str(&state),
        ) {
            headers.insert(RATELIMIT_POLICY, policy);
            headers.insert(RATELIMIT, state);
        }
    }
}

#[derive(Clone)]
pub struct RateLimiter {
    redis: ConnectionManager,
    prefix: String,
}

impl RateLimiter {
    pub fn new(redis: ConnectionManager, namespace: &str) -> Self {
        Self {
            redis,
            prefix: format!("{namespace}:rl:"),
        }
    }

    /// Takes one request from `subject`'s bucket under `policy`.
    pub async fn check(&self, subject: &str, policy: Policy) -> redis::RedisResult<Decision> {
        let interval_ms = (60_000 / policy.per_minute.max(1)).max(1);
        let (allowed, remaining, retry_after_ms, reset_ms): (i64, i64, i64, i64) =
            Script::new(GCRA)
                .key(format!("{}{}:{subject}", self.prefix, policy.name))
                .arg(interval_ms)
                .arg(policy.burst.max(1))
                .invoke_async(&mut self.redis.clone())
                .await?;
        let non_negative = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(Decision {
            policy,
            allowed: allowed == 1,
            remaining: non_negative(remaining),
            retry_after_ms: non_negative(retry_after_ms),
            reset_ms: non_negative(reset_ms),
        })
    }
}
