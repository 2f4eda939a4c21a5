//! The API's one error type and the one JSON shape every error takes:
//! `{"error": {"code": "...", "message": "..."}}`.

use axum::http::header::{LOCATION, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use voxq_shared::audio::AudioError;

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or invalid credentials")]
    Unauthorized,
    #[error("the email or password is incorrect")]
    InvalidCredentials,
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// A rate limit or quota: `limit` names it, `retry_after` is in seconds.
    #[error("{message}")]
    TooManyRequests {
        code: &'static str,
        message: String,
        limit: String,
        retry_after: u64,
    },
    #[error("request headers larger than {limit} bytes")]
    HeadersTooLarge { limit: usize },
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("{message}")]
    Gone { code: &'static str, message: String },
    #[error("upload larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A request that waits for its job's result waited its limit.
    #[error(
        "job {id} is still {status} after {waited} s; its result will be at /v1/jobs/{id} \
         (sending the same request again waits on the same job)"
    )]
    Pending {
        id: uuid::Uuid,
        status: &'static str,
        waited: u64,
    },
    #[error("{0} is unavailable, try again shortly")]
    Unavailable(&'static str),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::Forbidden {
            code,
            message: message.into(),
        }
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::Unprocessable {
            code,
            message: message.into(),
        }
    }

    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::InvalidCredentials => (StatusCode::UNAUTHORIZED, "invalid_credentials"),
            Self::Forbidden { code, .. } => (StatusCode::FORBIDDEN, code),
            Self::TooManyRequests { code, .. } => (StatusCode::TOO_MANY_REQUESTS, code),
            Self::HeadersTooLarge { .. } => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large",
            ),
            Self::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::Unprocessable { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, code),
            Self::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            Self::Gone { code, .. } => (StatusCode::GONE, code),
            Self::PayloadTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Self::Pending { .. } => (StatusCode::GATEWAY_TIMEOUT, "job_pending"),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "service_unavailable"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<voxq_shared::Error> for ApiError {
    fn from(e: voxq_shared::Error) -> Self {
        match e {
            voxq_shared::Error::NotFound => Self::NotFound,
            voxq_shared::Error::Database(e) => e.into(),
            voxq_shared::Error::Redis(e) => e.into(),
            voxq_shared::Error::Timeout(what) => Self::Unavailable(what),
            other => Self::Internal(other.into()),
        }
    }
}

/// Redis holds quota counters and token revocations: without it the API
/// fails closed rather than admit what it cannot count.
impl From<redis::RedisError> for ApiError {
    fn from(e: redis::RedisError) -> Self {
        tracing::error!(error = %e, "redis unavailable");
        Self::Unavailable("the quota store")
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) => {
                tracing::error!(error = %e, "postgres unavailable");
                Self::Unavailable("the database")
            }
            other => Self::Internal(other.into()),
        }
    }
}

impl From<AudioError> for ApiError {
    fn from(e: AudioError) -> Self {
        match e {
            AudioError::UnsupportedFormat => Self::UnsupportedMediaType(e.to_string()),
            AudioError::Undecodable(_)
            | AudioError::UnsupportedSampleRate(_)
            | AudioError::TooManyChannels(_)
            | AudioError::TooLong(_) => Self::unprocessable(e.code(), e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            // Internal details go to the log, never to the client.
            Self::Internal(err) => {
                tracing::error!(error = ?err, "internal error");
                "internal server error".to_owned()
            }
            other => other.to_string(),
        };
        match self {
            Self::Unauthorized => {
                let mut response = error_response(status, code, &message);
                response.headers_mut().insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Bearer realm="voxq""#),
                );
                response
            }
            Self::TooManyRequests {
                limit, retry_after, ..
            } => {
                let resets_at = chrono::Utc::now()
                    + chrono::Duration::seconds(i64::try_from(retry_after).unwrap_or(i64::MAX / 2));
                let body = ErrorBody {
                    error: ErrorDetail {
                        code: code.to_owned(),
                        message,
                        limit: Some(limit),
                        retry_after: Some(retry_after),
                        resets_at: Some(
                            resets_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        ),
                    },
                };
                let mut response = (status, Json(body)).into_response();
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(retry_after.max(1)));
                response
                    .extensions_mut()
                    .insert(crate::metrics::Refusal(code));
                response
            }
            Self::Pending { id, .. } => {
                let mut response = error_response(status, code, &message);
                if let Ok(location) = HeaderValue::from_str(&format!("/v1/jobs/{id}")) {
                    response.headers_mut().insert(LOCATION, location);
                }
                response
            }
            _ => error_response(status, code, &message),
        }
    }
}

/// The one error shape: `{"error": {"code", "message", …}}`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable, stable: branch on this.
    pub code: String,
    /// For people; may change.
    pub message: String,
    /// 429 only: the limit that was hit (`requests_per_day`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    /// 429 only: seconds until a retry can succeed (also `Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// 429 only: when the limit resets (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resets_at: Option<String>,
}

pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            code: code.to_owned(),
            message: message.to_owned(),
            limit: None,
            retry_after: None,
            resets_at: None,
        },
    };
    (status, Json(body)).into_response()
}
