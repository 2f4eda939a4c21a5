//! The OpenAPI 3.1 description of the API, generated from the handlers'
//! annotations and served at `GET /openapi.json`.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{admin, auth, health, job_lifecycle, jobs, keys, models, usage, webhooks};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "voxq",
        description = "Queue-backed speech-to-text and translation jobs. Authenticate with \
            `Authorization: Bearer` and an API key (`voxq_…`) or an access token from \
            `POST /v1/auth/login`; each route names the scope it needs. Every error is \
            `{\"error\": {\"code\", \"message\"}}`. Answers carry the IETF `RateLimit-Policy` \
            and `RateLimit` headers; 429s carry `Retry-After`."
    ),
    paths(
        jobs::submit,
        jobs::get_job,
        job_lifecycle::cancel_job,
        job_lifecycle::cancel_job_post,
        job_lifecycle::delete_job_data,
        job_lifecycle::job_events,
        webhooks::create,
        webhooks::list,
        webhooks::show,
        webhooks::update,
        webhooks::remove,
        webhooks::rotate,
        webhooks::job_secret,
        webhooks::endpoint_deliveries,
        webhooks::job_deliveries,
        webhooks::redeliver,
        models::list,
        usage::usage,
        keys::create,
        keys::list,
        keys::show,
        keys::rotate,
        keys::revoke,
        auth::login,
        auth::refresh,
        auth::logout,
        auth::me,
        admin::create_account,
        admin::list_accounts,
        admin::show_account,
        admin::update_account,
        admin::create_user,
        health::live,
        health::ready,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "jobs", description = "Submit jobs and read their results"),
        (name = "usage", description = "Quotas and usage"),
        (name = "keys", description = "API keys of the caller's account"),
        (name = "webhooks", description = "Webhook endpoints (Standard Webhooks), delivery logs, redelivery"),
        (name = "auth", description = "Login sessions"),
        (name = "admin", description = "Operators: accounts, tiers, limits, suspension"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key (`voxq_…`) or an access token (JWT)"))
                    .build(),
            ),
        );
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(|| async { Json(ApiDoc::openapi()) }))
}
