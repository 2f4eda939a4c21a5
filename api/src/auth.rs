//! `Authorization: Bearer <api key>` as an extractor.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// The account a request is made for; handlers that take it are
/// authenticated, and every query they make is scoped by it.
#[derive(Debug, Clone, Copy)]
pub struct AuthAccount {
    pub account_id: Uuid,
}

impl FromRequestParts<AppState> for AuthAccount {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or(ApiError::Unauthorized)?;
        let value = header.to_str().map_err(|_| ApiError::Unauthorized)?;
        let (scheme, token) = value.split_once(' ').ok_or(ApiError::Unauthorized)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ApiError::Unauthorized);
        }
        let account_id = voxq_shared::db::api_keys::authenticate(
            &state.db,
            &state.config.common.key_pepper,
            token.trim(),
        )
        .await?
        .ok_or(ApiError::Unauthorized)?;
        tracing::Span::current().record("account_id", tracing::field::display(account_id));
        Ok(Self { account_id })
    }
}
