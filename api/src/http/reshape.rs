//! Error answers in another API's shape. Handlers and layers answer errors
//! in voxq's one shape (`crate::error`); a compatible router (OpenAI's,
//! LibreTranslate's) rewrites them at its edge into the shape its clients
//! parse, keeping the status and the headers (`Retry-After`,
//! `WWW-Authenticate`, `Location`, the rate-limit headers).

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

/// The parts of an error every shape is made of.
pub struct Failure {
    pub status: StatusCode,
    /// voxq's stable code (`unauthorized`, `quota_exceeded`, …).
    pub code: String,
    pub message: String,
}

/// Marks an answer already in the compatible shape (a route's own error
/// about a named parameter), for the layer to leave alone.
#[derive(Clone, Copy)]
pub struct Shaped;

/// Voxq's errors are small; anything larger is not one of them.
const MAX_ERROR_BYTES: usize = 64 * 1024;

/// An error's status and body in a compatible API's shape (its clients
/// may know fewer statuses than voxq answers).
pub type Shape = fn(&Failure) -> (StatusCode, serde_json::Value);

/// Runs the request, then rewrites an error answer with `shape`.
pub async fn errors(shape: Shape, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.extensions().get::<Shaped>().is_some()
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let json = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let bytes = axum::body::to_bytes(body, MAX_ERROR_BYTES)
        .await
        .unwrap_or_default();
    let failure = json
        .then(|| voxq_failure(status, &bytes))
        .flatten()
        .unwrap_or_else(|| Failure {
            status,
            code: status
                .canonical_reason()
                .unwrap_or("error")
                .to_ascii_lowercase()
                .replace(' ', "_"),
            // Layers outside the handlers answer in plain text, or not at all.
            message: match String::from_utf8_lossy(&bytes).trim() {
                "" => status.canonical_reason().unwrap_or("error").to_owned(),
                text => text.to_owned(),
            },
        });
    let (status, body) = shape(&failure);
    parts.status = status;
    let body = body.to_string();
    parts.headers.remove(CONTENT_LENGTH);
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, Body::from(body))
}

fn voxq_failure(status: StatusCode, bytes: &[u8]) -> Option<Failure> {
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let error = value.get("error")?;
    Some(Failure {
        status,
        code: error.get("code")?.as_str()?.to_owned(),
        message: error.get("message")?.as_str()?.to_owned(),
    })
}
