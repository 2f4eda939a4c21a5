//! `POST /detect`: the language of a text, among those the translation
//! models translate from, as LibreTranslate answers it.

use axum::extract::State;
use axum::{Extension, Json};
use voxq_shared::auth::scope::Scope;

use super::fields::{Fields, Value};
use super::languages::{self, Detected};
use super::LibreTranslateError;
use crate::error::{ApiError, Result};
use crate::http::principal::Principal;
use crate::state::AppState;

/// The body LibreTranslate's clients send (JSON or a form).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the body; `fields` parses it
pub struct DetectRequest {
    /// The text whose language to detect.
    #[schema(example = "Der Hund ist glücklich.")]
    q: String,
    /// A voxq API key, when not sent in a header.
    api_key: Option<String>,
}

/// Detect the language of a text, LibreTranslate's way.
#[utoipa::path(
    post,
    path = "/detect",
    tag = "libretranslate",
    security(("bearer" = ["jobs:read"])),
    request_body(
        content(
            (DetectRequest = "application/json",
             example = json!({"q": "Der Hund ist glücklich.", "api_key": "voxq_…"})),
            (DetectRequest = "application/x-www-form-urlencoded"),
        )
    ),
    responses(
        (status = 200, description = "The most likely language and the detector's confidence \
            (0–100); an empty list when the text has no letters to go by",
         body = Vec<Detected>, example = json!([{"confidence": 92.5, "language": "de"}])),
        (status = 400, description = "`q` is missing, empty or too long, or the body is \
            malformed", body = LibreTranslateError),
        (status = 403, description = "Missing or wrong API key", body = LibreTranslateError),
        (status = 429, description = "Rate limit", body = LibreTranslateError),
    )
)]
pub async fn detect(
    principal: Principal,
    State(state): State<AppState>,
    Extension(fields): Extension<Fields>,
) -> Result<Json<Vec<Detected>>> {
    principal.require(Scope::JobsRead)?;
    let text = match fields.get("q") {
        Some(Value::One(q)) if !q.trim().is_empty() => q,
        Some(Value::Many(_)) => {
            return Err(ApiError::BadRequest(
                "Invalid request: q must be a string".into(),
            ))
        }
        _ => {
            return Err(ApiError::BadRequest(
                "Invalid request: missing q parameter".into(),
            ))
        }
    };
    let chars = text.chars().count();
    if chars > state.config.max_text_chars {
        return Err(ApiError::BadRequest(format!(
            "Invalid request: q is {chars} characters, more than the {} allowed",
            state.config.max_text_chars
        )));
    }
    let served = state.catalog.models(false).await?;
    let pairs = languages::pairs(&served);
    Ok(Json(
        languages::detect(text, pairs.keys()).into_iter().collect(),
    ))
}
