//! `GET /v1/models`: what jobs can run on right now, in a list OpenAI's
//! SDKs read as well (`models.list()`).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use voxq_shared::auth::scope::Scope;
use voxq_shared::registry::ServedModel;

use crate::error::{ErrorBody, Result};
use crate::http::principal::Principal;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/models", get(list))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ModelList {
    /// `list`, as OpenAI's list objects say.
    #[schema(example = "list")]
    pub object: &'static str,
    pub data: Vec<ListedModel>,
}

/// A served model, with the fields OpenAI's `Model` object has.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ListedModel {
    /// The model's name, as jobs give it.
    #[schema(example = "whisper-tiny.en")]
    pub id: String,
    /// `model`.
    pub object: &'static str,
    /// Unix seconds; voxq does not track when a model was made: 0.
    pub created: i64,
    /// `voxq`.
    pub owned_by: &'static str,
    #[serde(flatten)]
    pub model: ServedModel,
}

/// The models running workers serve (and standby models whose workers are
/// scaled down), with their job kinds and languages. A job naming any
/// other model is refused with 422 `unknown_model`.
#[utoipa::path(
    get,
    path = "/v1/models",
    tag = "jobs",
    security(("bearer" = ["jobs:read"])),
    responses(
        (status = 200, body = ModelList,
         example = json!({"object": "list", "data": [
             {"id": "whisper-tiny.en", "object": "model", "created": 0, "owned_by": "voxq",
              "name": "whisper-tiny.en", "engine": "ct2-whisper",
              "kinds": ["transcribe", "speech_translate"], "languages": ["en"],
              "default": true, "workers": 2},
             {"id": "nllb-200-distilled-600m", "object": "model", "created": 0,
              "owned_by": "voxq", "name": "nllb-200-distilled-600m", "engine": "ct2-translate",
              "kinds": ["translate"], "languages": ["de", "deu_Latn", "en", "eng_Latn"],
              "default": true, "workers": 1}
         ]})),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub async fn list(principal: Principal, State(state): State<AppState>) -> Result<Json<ModelList>> {
    principal.require(Scope::JobsRead)?;
    let models = state.catalog.models(false).await?;
    Ok(Json(ModelList {
        object: "list",
        data: models
            .iter()
            .map(|model| ListedModel {
                id: model.info.name.clone(),
                object: "model",
                created: 0,
                owned_by: "voxq",
                model: model.clone(),
            })
            .collect(),
    }))
}
