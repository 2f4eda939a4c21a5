//! `GET /v1/models`: what jobs can run on right now.

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
    pub data: Vec<ServedModel>,
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
        (status = 200, body = ModelList),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub async fn list(principal: Principal, State(state): State<AppState>) -> Result<Json<ModelList>> {
    principal.require(Scope::JobsRead)?;
    let models = state.catalog.models(false).await?;
    Ok(Json(ModelList {
        data: models.as_ref().clone(),
    }))
}
