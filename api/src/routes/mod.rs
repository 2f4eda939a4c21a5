//! The public routes, one module per resource, and the answers for an
//! unknown route and a panicking handler.

pub mod admin;
pub mod auth;
pub mod awaited;
pub mod docs;
pub mod health;
pub mod jobs;
pub mod keys;
pub mod libretranslate;
pub mod models;
pub mod openai;
pub mod usage;
pub mod webhooks;

use std::any::Any;

use axum::http::StatusCode;
use axum::response::Response;

use crate::error::error_response;

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
