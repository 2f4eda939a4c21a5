//! `GET /languages`: the languages the served translation models
//! translate from, each with the languages it translates into, as
//! LibreTranslate lists them.

use axum::extract::State;
use axum::Json;

use super::languages;
use super::LibreTranslateError;
use crate::error::Result;
use crate::http::principal::Principal;
use crate::state::AppState;

/// One language of `GET /languages`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Language {
    /// ISO 639-1 where the language has one, else the model's code.
    #[schema(example = "de")]
    pub code: String,
    #[schema(example = "German")]
    pub name: String,
    /// The languages it translates into.
    #[schema(example = json!(["en", "es", "fr"]))]
    pub targets: Vec<String>,
}

/// The languages of the translation models, LibreTranslate's way.
#[utoipa::path(
    get,
    path = "/languages",
    tag = "libretranslate",
    security(("bearer" = [])),
    params(("api_key" = Option<String>, Query, description = "A voxq API key, when not sent \
        in a header (or, as libretranslatepy does, in a form body)")),
    responses(
        (status = 200, description = "The languages and their targets", body = Vec<Language>,
         example = json!([{"code": "de", "name": "German", "targets": ["en", "es", "fr"]},
                          {"code": "en", "name": "English", "targets": ["de", "es", "fr"]}])),
        (status = 400, description = "A malformed body or query string (NUL, bad JSON, an \
            unsupported `Content-Type`)", body = LibreTranslateError),
        (status = 403, description = "Missing or wrong API key", body = LibreTranslateError),
        (status = 429, description = "Rate limit", body = LibreTranslateError),
    )
)]
pub async fn languages(
    _principal: Principal,
    State(state): State<AppState>,
) -> Result<Json<Vec<Language>>> {
    let served = state.catalog.models(false).await?;
    let list = languages::pairs(&served)
        .into_iter()
        .map(|(code, targets)| Language {
            name: languages::name(&code),
            code,
            targets: targets.into_iter().collect(),
        })
        .collect();
    Ok(Json(list))
}
