//! Edge hardening: security headers, CORS from configuration and a limit on
//! the total size of request headers.

use axum::extract::{Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, STRICT_TRANSPORT_SECURITY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::ApiConfig;
use crate::error::ApiError;
use crate::state::AppState;

/// Headers every answer carries. The API serves JSON and text only, so the
/// content security policy forbids everything a browser could load.
pub async fn headers(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // An answer that is a page (`/docs`) brings its own, looser policy.
    h.entry(CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'none'; frame-ancestors 'none'",
        ));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.entry(CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    if state.config.hsts {
        h.insert(
            STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        );
    }
    response
}

/// 431 when the request's headers add up to more than the configured size.
pub async fn header_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limit = state.config.max_header_bytes;
    let size: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if size > limit {
        return ApiError::HeadersTooLarge { limit }.into_response();
    }
    next.run(request).await
}

/// CORS for the configured origins only; `None` (no CORS headers, so
/// browsers refuse cross-origin calls) when none are configured.
pub fn cors(config: &ApiConfig) -> Option<CorsLayer> {
    let origins: Vec<&str> = config.cors_origins().collect();
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.contains(&"*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok()),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
            .allow_headers([
                axum::http::header::AUTHORIZATION,
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderName::from_static("idempotency-key"),
            ])
            .expose_headers([
                crate::http::rate_limit::RATELIMIT,
                crate::http::rate_limit::RATELIMIT_POLICY,
                axum::http::header::RETRY_AFTER,
                axum::http::header::LOCATION,
            ])
            .max_age(std::time::Duration::from_secs(600)),
    )
}
