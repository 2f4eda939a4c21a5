//! `POST /translate`: LibreTranslate's fields read and checked, the texts
//! made one translation job (`segments`), the job admitted and waited for,
//! its result cut back into LibreTranslate's answer.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;
use voxq_shared::auth::scope::Scope;
use voxq_shared::job::{JobKind, JobStatus, TranslationResult};

use super::fields::{Fields, Value};
use super::languages::{self, Detected};
use super::segments::{Batch, Mismatch};
use super::LibreTranslateError;
use crate::error::{ApiError, Result};
use crate::http::principal::{Principal, RequestMeta};
use crate::routes::awaited::{self, Keyed};
use crate::state::AppState;
use crate::submission::idempotency::Fingerprint;
use crate::submission::validation::{
    check_text_length, validate_target_language, validate_text_job, TextJobRequest,
};
use crate::submission::{inputs, models};

/// The body LibreTranslate's clients send (JSON, or the same fields as a
/// form).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documents the body; `fields` parses it
pub struct TranslateRequest {
    /// The text, or a list of texts (JSON only): a list gets a list back.
    #[schema(value_type = Object, example = "Hello world!")]
    q: String,
    /// The texts' language, or `auto` to detect it.
    #[schema(example = "auto")]
    source: String,
    /// The language to translate into (`GET /languages`).
    #[schema(example = "de")]
    target: String,
    /// `text` (the default) or `html`: translate the text between the
    /// tags, keep the markup, attributes and entities as they are.
    #[schema(example = "text")]
    format: Option<String>,
    /// Other translations to return besides the best one, 0–3.
    #[schema(example = 0)]
    alternatives: Option<u8>,
    /// A voxq API key, when not sent in `Authorization: Bearer` or
    /// `X-API-Key`.
    api_key: Option<String>,
}

/// Translate text, LibreTranslate's way.
#[utoipa::path(
    post,
    path = "/translate",
    tag = "libretranslate",
    security(("bearer" = ["jobs:write"])),
    request_body(
        content(
            (TranslateRequest = "application/json",
             example = json!({"q": "Hello world!", "source": "auto", "target": "de",
                              "format": "text", "api_key": "voxq_…"})),
            (TranslateRequest = "application/x-www-form-urlencoded"),
            (TranslateRequest = "multipart/form-data"),
        )
    ),
    responses(
        (status = 200, description = "The translation. `translatedText` (and `alternatives`, \
            when asked) is a list when `q` was one; `detectedLanguage` comes with `source: auto`",
         body = serde_json::Value,
         example = json!({"translatedText": "Hallo Welt!",
                          "detectedLanguage": {"confidence": 90.0, "language": "en"},
                          "alternatives": ["Hallo, Welt!"]})),
        (status = 400, description = "A field is missing, empty, too long, or names a \
            language or pair no model translates", body = LibreTranslateError,
         example = json!({"error": "Invalid request: missing q parameter"})),
        (status = 403, description = "Missing or wrong API key, or one without `jobs:write`",
         body = LibreTranslateError),
        (status = 429, description = "Rate limit or quota; `Retry-After` says when",
         body = LibreTranslateError),
        (status = 500, description = "The job failed, or has not ended within \
            `VOXQ_RESULT_WAIT` (the message names it; the same request sent again waits on \
            the same job)", body = LibreTranslateError),
    )
)]
pub async fn translate(
    principal: Principal,
    meta: RequestMeta,
    State(state): State<AppState>,
    headers: HeaderMap,
    Extension(fields): Extension<Fields>,
) -> Result<Response> {
    principal.require(Scope::JobsWrite)?;
    let asked = Asked::read(&fields)?;
    let served = state.catalog.models(false).await?;
    let pairs = languages::pairs(&served);
    let text = asked.batch.text();
    // Before detection and the same-language answer, which read it all.
    check_text_length(&text, &state.config)?;
    let (source, detected) = match asked.source.as_str() {
        auto if auto.eq_ignore_ascii_case("auto") => {
            let detected = languages::detect(&text, pairs.keys()).ok_or_else(|| {
                bad("Invalid request: could not detect the language of q; name a source")
            })?;
            (detected.language.clone(), Some(detected))
        }
        source => (validate_target_language(source)?, None),
    };
    let target = validate_target_language(&asked.target)?;
    let (from, to) = (
        languages::client_code(&source),
        languages::client_code(&target),
    );
    if from == to && pairs.contains_key(&from) {
        // Already in the target language (a page in its reader's own, say):
        // handed back as sent, with no job and nothing billed.
        let same = asked.batch.rebuild(&text).map_err(mismatch)?;
        return Ok(Json(answer(
            asked.list,
            same,
            detected,
            asked.alternatives,
            Vec::new(),
        ))
        .into_response());
    }
    let model = languages::model_for(&served, &from, &to).ok_or_else(|| {
        bad(format!(
            "{from} to {to} is not supported: GET /languages lists the pairs"
        ))
    })?;
    let job = TextJobRequest::translate(text, Some(source), target, asked.alternatives);
    let (mut params, text) = validate_text_job(job, &state.config)?;
    params.model = Some(model);
    models::resolve(&state.catalog, JobKind::Translate, &mut params).await?;

    let mut fingerprint = Fingerprint::new("libretranslate");
    fingerprint.field(
        "source",
        params.language.as_deref().unwrap_or("").as_bytes(),
    );
    fingerprint.field(
        "target",
        params.target_language.as_deref().unwrap_or("").as_bytes(),
    );
    fingerprint.field("model", params.model.as_deref().unwrap_or("").as_bytes());
    fingerprint.field("alternatives", &[params.alternatives]);
    fingerprint.field("text", text.as_bytes());
    let keyed = Keyed::new(&headers, "libretranslate", fingerprint)?;
    let view = awaited::run(&state, &principal, &meta, keyed, None, || {
        inputs::text(params.clone(), &text)
    })
    .await?;
    if view.status != JobStatus::Succeeded || view.data_deleted_at.is_some() {
        return Err(awaited::unsuccessful(&view));
    }
    let result: TranslationResult = view
        .result
        .and_then(|r| serde_json::from_value(r).ok())
        .ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!("succeeded job without a translation"))
        })?;
    let translated = asked.batch.rebuild(&result.text).map_err(mismatch)?;
    // An alternative that lost a paragraph break cannot be cut back: it
    // is left out rather than misplaced.
    let alternatives: Vec<Vec<String>> = result
        .alternatives
        .iter()
        .filter_map(|alternative| asked.batch.rebuild(alternative).ok())
        .collect();
    Ok(Json(answer(
        asked.list,
        translated,
        detected,
        asked.alternatives,
        alternatives,
    ))
    .into_response())
}

/// What the request asked for.
struct Asked {
    batch: Batch,
    /// `q` was a list: the answer's fields are lists too.
    list: bool,
    source: String,
    target: String,
    alternatives: u8,
}

impl Asked {
    fn read(fields: &Fields) -> Result<Self> {
        let (texts, list) = match fields.get("q") {
            Some(Value::One(q)) => (vec![q.clone()], false),
            Some(Value::Many(qs)) if !qs.is_empty() => (qs.clone(), true),
            Some(Value::Many(_)) | None => {
                return Err(bad("Invalid request: missing q parameter"));
            }
        };
        let field = |name: &str| {
            fields
                .text(name)
                .map_err(bad)?
                .map(str::to_owned)
                .ok_or_else(|| bad(format!("Invalid request: missing {name} parameter")))
        };
        let source = field("source")?;
        let target = field("target")?;
        let html = match fields.text("format").map_err(bad)? {
            None | Some("text") => false,
            Some("html") => true,
            Some(other) => {
                return Err(bad(format!(
                    "Invalid request: format {other:?} is not text or html"
                )))
            }
        };
        let alternatives = match fields.text("alternatives").map_err(bad)? {
            None => 0,
            Some(n) => n.parse::<u8>().map_err(|_| {
                bad(format!(
                    "Invalid request: alternatives {n:?} is not a number from 0 to 3"
                ))
            })?,
        };
        let mut batch = Batch::default();
        for text in &texts {
            if html {
                batch.push_html(text);
            } else {
                batch.push_text(text);
            }
        }
        if batch.is_empty() {
            return Err(bad("Invalid request: q has no text to translate"));
        }
        Ok(Self {
            batch,
            list,
            source,
            target,
            alternatives,
        })
    }
}

/// Texts that did not come back in as many paragraphs as they went:
/// voxq's fault, not the client's.
fn mismatch(m: Mismatch) -> ApiError {
    ApiError::Internal(anyhow::anyhow!(
        "{} paragraphs came back as {}",
        m.sent,
        m.received
    ))
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::BadRequest(message.into())
}

/// LibreTranslate's answer: one value per field for one `q`, one list per
/// field (an item per `q`) for a list.
fn answer(
    list: bool,
    translated: Vec<String>,
    detected: Option<Detected>,
    asked_alternatives: u8,
    alternatives: Vec<Vec<String>>,
) -> serde_json::Value {
    let count = translated.len();
    let mut answer = if list {
        json!({ "translatedText": translated })
    } else {
        json!({ "translatedText": translated.into_iter().next().unwrap_or_default() })
    };
    if let Some(detected) = detected {
        answer["detectedLanguage"] = if list {
            json!(vec![detected; count])
        } else {
            json!(detected)
        };
    }
    if asked_alternatives > 0 {
        // Per `q`, its alternatives in order of probability.
        let per_text: Vec<Vec<String>> = (0..count)
            .map(|i| {
                alternatives
                    .iter()
                    .filter_map(|a| a.get(i).cloned())
                    .collect()
            })
            .collect();
        answer["alternatives"] = if list {
            json!(per_text)
        } else {
            json!(per_text.into_iter().next().unwrap_or_default())
        };
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_gets_lists_back_and_a_text_gets_values() {
        let detected = Detected {
            confidence: 90.0,
            language: "en".into(),
        };
        let one = answer(
            false,
            vec!["Hallo".into()],
            Some(detected.clone()),
            1,
            vec![vec!["Hi".into()]],
        );
        assert_eq!(
            one,
            json!({"translatedText": "Hallo", "detectedLanguage": {"confidence": 90.0, "language": "en"},
                   "alternatives": ["Hi"]})
        );
        let many = answer(
            true,
            vec!["a".into(), "b".into()],
            Some(detected),
            0,
            vec![],
        );
        assert_eq!(many["translatedText"], json!(["a", "b"]));
        assert_eq!(many["detectedLanguage"].as_array().map(Vec::len), Some(2));
        assert!(many.get("alternatives").is_none());
    }
}
