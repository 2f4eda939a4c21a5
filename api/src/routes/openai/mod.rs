//! OpenAI's audio API, for the code and SDKs already written against it:
//! `POST /v1/audio/transcriptions` and `/v1/audio/translations`, answered
//! in OpenAI's shapes, errors included. The jobs go through the same
//! authentication, quotas, queue and workers as `/v1/jobs`; the request
//! waits for the result (`routes::awaited`). `GET /v1/models` answers in
//! OpenAI's list shape too (`routes::models`).

pub mod audio;
pub mod render;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;

use crate::config::ApiConfig;
use crate::error::ApiError;
use crate::http::reshape::{Failure, Shaped};
use crate::state::AppState;

/// Headroom over the upload limit for multipart framing and text fields.
const MULTIPART_OVERHEAD: usize = 64 * 1024;

/// The largest body these routes take: an upload and its form.
pub fn body_limit(config: &ApiConfig) -> usize {
    config.max_upload_bytes.saturating_add(MULTIPART_OVERHEAD)
}

pub fn router(config: &ApiConfig) -> Router<AppState> {
    let limit = DefaultBodyLimit::max(body_limit(config));
    Router::new()
        .route(
            "/v1/audio/transcriptions",
            post(audio::transcriptions).layer(limit),
        )
        .route(
            "/v1/audio/translations",
            post(audio::translations).layer(limit),
        )
}

/// An error as OpenAI answers it: `{"error": {"message", "type", "param",
/// "code"}}`, with the status its SDKs map to their exceptions (400
/// `BadRequestError`, 401 `AuthenticationError`, 403
/// `PermissionDeniedError`, 404 `NotFoundError`, 422
/// `UnprocessableEntityError`, 429 `RateLimitError`, 5xx
/// `InternalServerError`).
pub fn shape(failure: &Failure) -> serde_json::Value {
    body(failure.status, &failure.code, &failure.message, None)
}

/// [`shape`] with the status kept, for the router's edge.
pub fn shape_keeping_status(failure: &Failure) -> (StatusCode, serde_json::Value) {
    (failure.status, shape(failure))
}

fn body(status: StatusCode, code: &str, message: &str, param: Option<&str>) -> serde_json::Value {
    let (kind, code) = match (status.as_u16(), code) {
        (401, _) => ("invalid_request_error", "invalid_api_key"),
        (403, _) => ("permission_error", code),
        (404, _) => ("invalid_request_error", code),
        (429, "quota_exceeded") => ("insufficient_quota", "insufficient_quota"),
        (429, "rate_limited") => ("requests", "rate_limit_exceeded"),
        (429, _) => ("requests", code),
        (500.., _) => ("server_error", code),
        _ => ("invalid_request_error", code),
    };
    json!({
        "error": {
            "message": message,
            "type": kind,
            "param": param,
            "code": code,
        }
    })
}

/// OpenAI's error shape, for the OpenAPI document.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct OpenAiErrorBody {
    pub error: OpenAiErrorDetail,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct OpenAiErrorDetail {
    pub message: String,
    /// `invalid_request_error`, `permission_error`, `insufficient_quota`,
    /// `requests` (rate limits) or `server_error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The parameter at fault, when one is.
    pub param: Option<String>,
    /// `invalid_api_key`, `invalid_value`, `unknown_parameter`,
    /// `rate_limit_exceeded`, `insufficient_quota`, `job_pending`, or
    /// voxq's own code.
    pub code: String,
}

/// An error of these routes: voxq's (re-shaped at the router's edge), or
/// one about a named parameter, answered in OpenAI's shape at once.
#[derive(Debug)]
pub enum OpenAiError {
    Api(ApiError),
    Param {
        status: StatusCode,
        param: String,
        code: &'static str,
        message: String,
    },
}

impl OpenAiError {
    /// A 400 about `param`.
    pub fn invalid(param: &'static str, message: impl Into<String>) -> Self {
        Self::Param {
            status: StatusCode::BAD_REQUEST,
            param: param.to_owned(),
            code: "invalid_value",
            message: message.into(),
        }
    }

    /// Attributes one of voxq's refusals to `param`.
    pub fn at(param: &'static str) -> impl Fn(ApiError) -> Self {
        move |error| {
            let (status, code) = error.status_and_code();
            match status {
                StatusCode::BAD_REQUEST
                | StatusCode::UNPROCESSABLE_ENTITY
                | StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::Param {
                    // OpenAI answers a bad parameter with a 400 whatever
                    // its kind.
                    status: StatusCode::BAD_REQUEST,
                    param: param.to_owned(),
                    code,
                    message: error.to_string(),
                },
                _ => Self::Api(error),
            }
        }
    }
}

impl From<ApiError> for OpenAiError {
    fn from(error: ApiError) -> Self {
        Self::Api(error)
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        match self {
            Self::Api(error) => error.into_response(),
            Self::Param {
                status,
                param,
                code,
                message,
            } => {
                let mut response =
                    (status, Json(body(status, code, &message, Some(&param)))).into_response();
                response.extensions_mut().insert(Shaped);
                response
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shaped(status: u16, code: &str) -> serde_json::Value {
        shape(&Failure {
            status: StatusCode::from_u16(status).expect("status"),
            code: code.into(),
            message: "m".into(),
        })
    }

    #[test]
    fn errors_take_the_types_and_codes_openai_clients_branch_on() {
        let e = shaped(401, "unauthorized");
        assert_eq!(e["error"]["code"], "invalid_api_key");
        assert_eq!(e["error"]["type"], "invalid_request_error");
        assert!(e["error"]["param"].is_null());
        assert_eq!(e["error"]["message"], "m");
        let e = shaped(429, "quota_exceeded");
        assert_eq!(e["error"]["type"], "insufficient_quota");
        let e = shaped(429, "rate_limited");
        assert_eq!(e["error"]["code"], "rate_limit_exceeded");
        let e = shaped(503, "service_unavailable");
        assert_eq!(e["error"]["type"], "server_error");
        let e = shaped(422, "unknown_model");
        assert_eq!(e["error"]["type"], "invalid_request_error");
        assert_eq!(e["error"]["code"], "unknown_model");
    }
}
