//! LibreTranslate's API, for the clients and plug-ins that speak it:
//! `POST /translate`, `POST /detect` and `GET /languages`, answered in
//! LibreTranslate's shapes, errors included (`{"error": "…"}` with its
//! statuses 400, 403, 429 and 500). Translations are text jobs admitted
//! and waited for like the OpenAI routes' (`routes::awaited`): the same
//! authentication, quotas, queue and workers as `/v1/jobs`.

pub mod detect;
pub mod fields;
pub mod html;
pub mod languages;
pub mod list;
pub mod segments;
pub mod translate;

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;

use crate::config::ApiConfig;
use crate::http::reshape::Failure;
use crate::state::AppState;

/// Headroom over the text limit for the other fields, form encoding
/// (a character can take 12 bytes percent-encoded) and HTML markup.
const FIELDS_OVERHEAD: usize = 64 * 1024;

/// The largest body these routes read: markup is not counted in the text
/// limit, so an HTML document may be several times its text.
pub fn body_limit(config: &ApiConfig) -> usize {
    config
        .max_text_chars
        .saturating_mul(12)
        .saturating_add(FIELDS_OVERHEAD)
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/translate", post(translate::translate))
        .route("/detect", post(detect::detect))
        .route("/languages", get(list::languages))
}

/// An error as LibreTranslate answers it: `{"error": "message"}`, with
/// the statuses its clients know: 400 for anything wrong with the request,
/// 403 for a missing, wrong or unauthorised key, 429 for rate limits and
/// quotas, 500 when the translation itself did not come (a failed or
/// still pending job: the message names it).
pub fn shape(failure: &Failure) -> (StatusCode, serde_json::Value) {
    let status = match (failure.status.as_u16(), failure.code.as_str()) {
        (401 | 403, _) => StatusCode::FORBIDDEN,
        (429, _) => StatusCode::TOO_MANY_REQUESTS,
        // Abandoned while it waited: the server's time ran out, not a
        // fault of the request.
        (408, _) => StatusCode::INTERNAL_SERVER_ERROR,
        (_, "job_failed" | "job_cancelled" | "data_deleted") => StatusCode::INTERNAL_SERVER_ERROR,
        (400..=499, _) => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, json!({ "error": failure.message }))
}

/// LibreTranslate's error shape, for the OpenAPI document.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(example = json!({"error": "Invalid request: missing q parameter"}))]
pub struct LibreTranslateError {
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shaped(status: u16, code: &str) -> (u16, serde_json::Value) {
        let (status, body) = shape(&Failure {
            status: StatusCode::from_u16(status).expect("status"),
            code: code.into(),
            message: "m".into(),
        });
        (status.as_u16(), body)
    }

    #[test]
    fn errors_take_libretranslates_statuses() {
        assert_eq!(shaped(401, "unauthorized"), (403, json!({"error": "m"})));
        assert_eq!(shaped(403, "insufficient_scope").0, 403);
        assert_eq!(shaped(429, "quota_exceeded").0, 429);
        assert_eq!(shaped(422, "unsupported_language").0, 400);
        assert_eq!(shaped(413, "payload_too_large").0, 400);
        assert_eq!(shaped(422, "job_failed").0, 500);
        assert_eq!(shaped(504, "job_pending").0, 500);
        assert_eq!(shaped(408, "request_timeout").0, 500);
        assert_eq!(shaped(503, "service_unavailable").0, 500);
    }
}
