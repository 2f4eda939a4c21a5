//! The HTTP stack around the routes, outermost last: request ids, the
//! trace span, hidden credentials, panics caught, CORS, security headers
//! and header limits, metrics, then per-route timeouts, authentication and
//! body limits (and the compatible APIs' error shapes).

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, Request};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use super::{drain, principal, reshape, security};
use crate::state::AppState;
use crate::{error, metrics, openapi, routes};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The timeout layer answers with an empty body; give it the one error
/// shape.
async fn timeout_body(response: axum::response::Response) -> axum::response::Response {
    if response.status() == axum::http::StatusCode::REQUEST_TIMEOUT
        && !response.headers().contains_key(header::CONTENT_TYPE)
    {
        return error::error_response(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "the request took too long and was abandoned; a submission retried with the same \
             Idempotency-Key tells whether it was accepted",
        );
    }
    response
}

pub fn router(state: AppState) -> Router {
    let timeout = Duration::from_secs(state.config.request_timeout);
    // Every /v1 route: credentials resolved, rate limits applied, JSON
    // bodies bounded (job submission sets its own, larger limit).
    let v1 = Router::new()
        .merge(routes::jobs::router(&state.config))
        .merge(routes::auth::router())
        .merge(routes::keys::router())
        .merge(routes::models::router())
        .merge(routes::usage::router())
        .merge(routes::webhooks::router())
        .merge(routes::admin::router())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            principal::authenticate,
        ))
        .layer(DefaultBodyLimit::max(state.config.max_json_bytes));
    let timed = Router::new()
        .merge(v1)
        .merge(routes::health::router())
        .merge(openapi::router())
        .merge(routes::docs::router())
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(axum::middleware::map_response(timeout_body));
    // The compatible APIs' requests wait for their job's result, up to
    // VOXQ_RESULT_WAIT, on top of the usual time to upload; they answer
    // errors in their clients' shapes.
    let waiting = timeout + Duration::from_secs(state.config.result_wait);
    let upload_limit = routes::openai::body_limit(&state.config);
    let openai = Router::new()
        .merge(routes::openai::router(&state.config))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            principal::authenticate,
        ))
        .layer(DefaultBodyLimit::max(state.config.max_json_bytes))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            waiting,
        ))
        .layer(axum::middleware::map_response(timeout_body))
        .layer(axum::middleware::from_fn(|request, next| {
            reshape::errors(routes::openai::shape_keeping_status, request, next)
        }))
        .layer(axum::middleware::from_fn(move |request, next| {
            drain::unread_body(upload_limit, request, next)
        }));
    // LibreTranslate's fields are read (and its `api_key` lifted into
    // `Authorization`) before authentication looks for credentials.
    let text_limit = routes::libretranslate::body_limit(&state.config);
    let libretranslate = Router::new()
        .merge(routes::libretranslate::router())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            principal::authenticate,
        ))
        .route_layer(axum::middleware::from_fn(move |request, next| {
            routes::libretranslate::fields::read(text_limit, request, next)
        }))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            principal::limit_address_first,
        ))
        .layer(DefaultBodyLimit::max(text_limit))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            waiting,
        ))
        .layer(axum::middleware::map_response(timeout_body))
        .layer(axum::middleware::from_fn(|request, next| {
            reshape::errors(routes::libretranslate::shape, request, next)
        }));
    let router = Router::new()
        .merge(timed)
        .merge(openai)
        .merge(libretranslate)
        .route_layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track,
        ))
        .fallback(routes::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security::header_limit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security::headers,
        ));
    let router = match security::cors(&state.config) {
        Some(cors) => router.layer(cors),
        None => router,
    };
    router
        .layer(CatchPanicLayer::custom(routes::panic_response))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let request_id = request
                    .headers()
                    .get(&REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!(
                    "request",
                    request_id = %request_id,
                    method = %request.method(),
                    path = %request.uri().path(),
                    account_id = tracing::field::Empty,
                )
            }),
        )
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
        ]))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}
