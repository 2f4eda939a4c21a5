pub mod admin;
pub mod auth;
pub mod extract;
pub mod health;
pub mod job_lifecycle;
mod job_request;
pub mod jobs;
pub mod keys;
pub mod models;
pub mod usage;
pub mod webhooks;

use std::any::Any;

use axum::http::StatusCode;
use axum::response::Response;

use voxq_shared::net_guard::Guard;

use crate::error::{error_response, ApiError, Result};

/// Longest URL a client may give (`webhook_url`, `audio_url`, endpoints).
pub const MAX_URL_CHARS: usize = 2000;

/// A URL voxq will call out to (a webhook, audio to fetch), checked by the
/// SSRF guard at submission and normalised; refusals are 422 `code`. The
/// guard checks again when the URL is used: DNS can change in between.
pub async fn outbound_url(guard: &Guard, url: &str, code: &'static str) -> Result<String> {
    if url.chars().count() > MAX_URL_CHARS {
        return Err(ApiError::unprocessable(
            code,
            format!("URLs are at most {MAX_URL_CHARS} characters"),
        ));
    }
    guard
        .resolve(url)
        .await
        .map(|checked| checked.url.to_string())
        .map_err(|e| ApiError::unprocessable(code, e.to_string()))
}

pub async fn not_found() -> Response {
    error_response(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// A handler panic answers with the usual error shape and keeps the server up.
pub fn panic_response(_panic: Box<dyn Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal server error",
    )
}
