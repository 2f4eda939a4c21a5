//! The OpenAPI 3.1 description of the API, generated from the handlers'
//! annotations (with an example for every answer, `examples`) and served
//! at `GET /openapi.json`.

mod examples;

use std::sync::LazyLock;

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::routes::jobs::{lifecycle, list, read, submit};
use crate::routes::libretranslate::{
    detect as lt_detect, list as lt_list, translate as lt_translate,
};
use crate::routes::openai::audio as openai_audio;
use crate::routes::{admin, auth, health, keys, models, usage, webhooks};
use crate::state::AppState;
use crate::submission::invalid::Invalid;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "voxq",
        description = "Queue-backed speech-to-text and translation jobs. Authenticate with \
            `Authorization: Bearer` and an API key (`voxq_…`) or an access token from \
            `POST /v1/auth/login`; each route names the scope it needs. Every error is \
            `{\"error\": {\"code\", \"message\"}}`, except on the OpenAI-compatible routes \
            (`/v1/audio/…`), which answer OpenAI's `{\"error\": {\"message\", \"type\", \
            \"param\", \"code\"}}`, and the LibreTranslate-compatible ones (`/translate`, \
            `/detect`, `/languages`), which answer `{\"error\": \"…\"}`. Answers carry the IETF `RateLimit-Policy` \
            and `RateLimit` headers; 429s carry `Retry-After`."
    ),
    paths(
        submit::submit,
        list::list_jobs,
        read::get_job,
        lifecycle::cancel_job,
        lifecycle::cancel_job_post,
        lifecycle::delete_job_data,
        lifecycle::job_events,
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
        openai_audio::transcriptions,
        openai_audio::translations,
        lt_translate::translate,
        lt_detect::detect,
        lt_list::languages,
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
    components(schemas(crate::routes::openai::OpenAiErrorBody)),
    modifiers(&BearerAuth, &ErrorAnswers, &SubmissionCodes),
    tags(
        (name = "jobs", description = "Submit jobs and read their results"),
        (name = "openai", description = "OpenAI's audio API: point an OpenAI SDK's `base_url` \
            at `…/v1` and use a voxq API key. The request waits for its job's result."),
        (name = "libretranslate", description = "LibreTranslate's API: point a \
            LibreTranslate client or plug-in at voxq's base URL and use a voxq API key as its \
            `api_key`. Translations are queued jobs; the request waits for the result."),
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

/// The error answers every route of a kind can give, added where a route's
/// annotation does not list them itself: the middleware and extractors
/// give them before any handler runs, so each handler would otherwise
/// have to repeat them (and the document would lie where one forgot).
struct ErrorAnswers;

impl Modify for ErrorAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                let shape = if path.starts_with("/v1/audio/") {
                    "OpenAiErrorBody"
                } else {
                    "ErrorBody"
                };
                for (status, why) in error_answers(path, operation) {
                    operation
                        .responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| RefOr::T(error_response(why, shape)));
                }
            }
        }
    }
}

/// The codes of a refused submission, written from the one list of them
/// ([`Invalid::CODES`]) so the document cannot fall behind the code.
struct SubmissionCodes;

impl Modify for SubmissionCodes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(submit) = openapi
            .paths
            .paths
            .get_mut("/v1/jobs")
            .and_then(|item| item.post.as_mut())
        else {
            return;
        };
        let codes: Vec<String> = Invalid::CODES
            .iter()
            .filter(|code| **code != "bad_request")
            .map(|code| format!("`{code}`"))
            .collect();
        if let Some(RefOr::T(answer)) = submit.responses.responses.get_mut("422") {
            answer.description = format!(
                "{} Codes: {}.",
                answer.description.trim_end(),
                codes.join(", ")
            );
        }
    }
}

/// The statuses a route can answer before its handler decides anything.
fn error_answers(path: &str, operation: &Operation) -> Vec<(u16, &'static str)> {
    let mut answers = Vec::new();
    if !path.starts_with("/v1/") {
        return answers;
    }
    answers.push((429, "rate limited; `Retry-After` says when to try again"));
    if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
        answers.push((401, "missing, invalid, expired or revoked credentials"));
        answers.push((
            403,
            "the credential lacks the route's scope, or its account is suspended",
        ));
    }
    if operation.request_body.is_some() {
        answers.push((400, "malformed body"));
        answers.push((413, "body larger than the route accepts"));
        answers.push((415, "unsupported `Content-Type`"));
        answers.push((422, "a field is missing, of the wrong type or out of range"));
    }
    let has_query = operation
        .parameters
        .iter()
        .flatten()
        .any(|p| p.parameter_in == ParameterIn::Query);
    if has_query {
        answers.push((400, "malformed query string"));
    }
    answers
}

fn error_response(description: &str, shape: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(shape)))
                .build(),
        )
        .build()
}

/// The document as served: built once, examples filled in.
pub fn document() -> &'static serde_json::Value {
    static DOCUMENT: LazyLock<serde_json::Value> = LazyLock::new(|| {
        // Serialising types utoipa built itself cannot fail; an empty
        // document would say so at once.
        let mut document = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
        examples::fill(&mut document);
        document
    });
    &DOCUMENT
}

pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(|| async { Json(document()) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `content` (a media type map) shows an example.
    fn shows_example(content: &serde_json::Value) -> bool {
        content.as_object().is_some_and(|types| {
            types
                .values()
                .any(|t| t.get("example").is_some() || t.get("examples").is_some())
        })
    }

    #[test]
    fn every_route_has_an_example_of_its_answer() {
        let document = document();
        let mut missing = Vec::new();
        for (path, item) in document["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("operations") {
                let answers = operation["responses"].as_object().expect("responses");
                // A success with a body shows an example; one without a
                // body (204, a redirect) has nothing to show.
                let bodies: Vec<&serde_json::Value> = answers
                    .iter()
                    .filter(|(status, _)| status.starts_with('2'))
                    .filter_map(|(_, answer)| answer.get("content"))
                    .collect();
                if !bodies.is_empty() && !bodies.iter().any(|c| shows_example(c)) {
                    missing.push(format!("{method} {path}"));
                }
            }
        }
        assert!(missing.is_empty(), "no example: {missing:?}");
    }

    #[test]
    fn the_submit_route_lists_every_code_of_a_refused_submission() {
        let document = serde_json::to_value(ApiDoc::openapi()).expect("serialises");
        let answer = document["paths"]["/v1/jobs"]["post"]["responses"]["422"]["description"]
            .as_str()
            .expect("a 422 answer")
            .to_owned();
        for code in Invalid::CODES.iter().filter(|c| **c != "bad_request") {
            assert!(
                answer.contains(&format!("`{code}`")),
                "{code} missing: {answer}"
            );
        }
    }
}
