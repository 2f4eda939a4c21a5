//! Body, query and path extractors whose rejections take the API's error shape.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let value = match axum::Json::<serde_json::Value>::from_request(request, state).await {
            Ok(axum::Json(value)) => value,
            Err(rejection) => return Err(json_rejection(rejection)),
        };
        refuse_nul(&value)?;
        serde_json::from_value(value)
            .map(Self)
            .map_err(|e| ApiError::unprocessable("invalid_body", e.to_string()))
    }
}

/// Refuses a JSON document with U+0000 in any string or key. JSON allows it
/// (as `\u0000`); Postgres text does not, and a value that cannot be
/// stored must be refused here, not fail the statement that stores it.
pub fn refuse_nul(value: &serde_json::Value) -> Result<(), ApiError> {
    if holds_nul(value) {
        return Err(ApiError::unprocessable(
            "invalid_body",
            "strings may not contain the NUL character (U+0000)",
        ));
    }
    Ok(())
}

fn holds_nul(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(fields) => fields
            .iter()
            .any(|(key, value)| key.contains('\0') || holds_nul(value)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection.status() {
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(
            "send a JSON body (Content-Type: application/json)".into(),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge { limit: 0 },
        StatusCode::UNPROCESSABLE_ENTITY => {
            ApiError::unprocessable("invalid_body", rejection.body_text())
        }
        _ => ApiError::BadRequest(format!("invalid JSON body: {}", rejection.body_text())),
    }
}

/// `Option<ApiJson<T>>`: `None` when the request has no JSON content type
/// (an empty body), the parsed value otherwise.
impl<S, T> axum::extract::OptionalFromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Option<Self>, ApiError> {
        if !request
            .headers()
            .contains_key(axum::http::header::CONTENT_TYPE)
        {
            return Ok(None);
        }
        <Self as FromRequest<S>>::from_request(request, state)
            .await
            .map(Some)
    }
}

/// Query parameters; a malformed query is a `400` in the usual shape.
pub struct ApiQuery<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Self(value))
            .map_err(|e| ApiError::BadRequest(e.body_text()))
    }
}

/// A resource id from the path (`/v1/jobs/{id}`, a delivery's number). A
/// malformed id cannot name anyone's resource: the same 404 as a missing one.
pub struct PathId<T = uuid::Uuid>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for PathId<T>
where
    S: Send + Sync,
    T: std::str::FromStr + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        let axum::extract::Path(id) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::NotFound)?;
        id.parse().map(Self).map_err(|_| ApiError::NotFound)
    }
}
