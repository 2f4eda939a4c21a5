//! A LibreTranslate request's fields, however they came: JSON, a form
//! (`application/x-www-form-urlencoded` or `multipart/form-data`), the
//! query string — LibreTranslate reads them all, and its clients use each
//! (libretranslatepy sends forms, even in the body of `GET /languages`).
//!
//! [`read`] runs before authentication: it reads the body once, keeps the
//! fields for the handler, and moves an `api_key` (from the fields or an
//! `X-API-Key` header) into `Authorization: Bearer`, where voxq's
//! authentication looks for credentials.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// The largest number of `q` texts in one request.
pub const MAX_TEXTS: usize = 128;

/// A field's value: text, or a list of texts (JSON `q: [...]`).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    One(String),
    Many(Vec<String>),
}

/// The fields of one request; the body's win over the query string's.
#[derive(Debug, Clone, Default)]
pub struct Fields(HashMap<String, Value>);

impl Fields {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }

    /// A text field, trimmed; `None` when absent or empty.
    pub fn text(&self, name: &str) -> Result<Option<&str>, String> {
        match self.0.get(name) {
            None => Ok(None),
            Some(Value::One(text)) => Ok(Some(text.trim()).filter(|t| !t.is_empty())),
            Some(Value::Many(_)) => Err(format!("Invalid request: {name} must be a string")),
        }
    }

    /// Keeps a field; NUL is refused here, for every way a field comes
    /// (Postgres text cannot hold it, and no language writes it).
    fn insert(&mut self, name: String, value: Value) -> Result<(), ApiError> {
        let nul = match &value {
            Value::One(text) => text.contains('\0'),
            Value::Many(texts) => texts.iter().any(|t| t.contains('\0')),
        };
        if nul || name.contains('\0') {
            return Err(ApiError::BadRequest(
                "Invalid request: fields may not contain the NUL character (U+0000)".into(),
            ));
        }
        self.0.insert(name, value);
        Ok(())
    }
}

/// Reads the fields (bounded by `limit` bytes of body) for the handler and
/// lifts the API key into `Authorization`.
pub async fn read(limit: usize, request: Request, next: Next) -> Response {
    match fields(limit, request).await {
        Ok(request) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

async fn fields(limit: usize, request: Request) -> Result<Request, ApiError> {
    let (mut parts, body) = request.into_parts();
    let mut fields = Fields::default();
    if let Some(query) = parts.uri.query() {
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            fields.insert(name.into_owned(), Value::One(value.into_owned()))?;
        }
    }
    // Reading fails past the limit, or when the client goes away (then
    // nobody reads the answer).
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge { limit })?;
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !bytes.is_empty() {
        if content_type.starts_with("application/json") {
            json(&bytes, &mut fields)?;
        } else if content_type.starts_with("multipart/form-data") {
            // The parser needs the body and its boundary, nothing else.
            // With the route's own body limit (an extension), not the
            // multipart extractor's 2 MiB default.
            let mut request = Request::new(Body::from(bytes.clone()));
            *request.headers_mut() = parts.headers.clone();
            *request.extensions_mut() = parts.extensions.clone();
            multipart(request, &mut fields).await?;
        } else if content_type.starts_with("application/x-www-form-urlencoded")
            || content_type.is_empty()
        {
            for (name, value) in url::form_urlencoded::parse(&bytes) {
                fields.insert(name.into_owned(), Value::One(value.into_owned()))?;
            }
        } else {
            return Err(ApiError::UnsupportedMediaType(format!(
                "send JSON, a form or multipart/form-data, not {content_type}"
            )));
        }
    }
    let key = match fields.text("api_key") {
        Ok(Some(key)) => Some(key.to_owned()),
        _ => parts
            .headers
            .get(&X_API_KEY)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_owned()),
    };
    if let Some(key) = key.filter(|k| !k.is_empty()) {
        if !parts.headers.contains_key(AUTHORIZATION) {
            let value = HeaderValue::from_str(&format!("Bearer {key}"))
                .map_err(|_| ApiError::Unauthorized)?;
            parts.headers.insert(AUTHORIZATION, value);
        }
    }
    parts.extensions.insert(fields);
    Ok(Request::from_parts(parts, Body::empty()))
}

fn json(bytes: &[u8], fields: &mut Fields) -> Result<(), ApiError> {
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("Invalid request: malformed JSON: {e}")))?;
    for (name, value) in object {
        let value = match value {
            serde_json::Value::Null => continue,
            serde_json::Value::String(s) => Value::One(s),
            serde_json::Value::Number(n) => Value::One(n.to_string()),
            serde_json::Value::Bool(b) => Value::One(b.to_string()),
            serde_json::Value::Array(items) => {
                if items.len() > MAX_TEXTS {
                    return Err(ApiError::BadRequest(format!(
                        "Invalid request: {name} holds more than {MAX_TEXTS} items"
                    )));
                }
                let texts = items
                    .into_iter()
                    .map(|item| match item {
                        serde_json::Value::String(s) => Ok(s),
                        _ => Err(ApiError::BadRequest(format!(
                            "Invalid request: {name} must be a list of strings"
                        ))),
                    })
                    .collect::<Result<_, _>>()?;
                Value::Many(texts)
            }
            serde_json::Value::Object(_) => {
                return Err(ApiError::BadRequest(format!(
                    "Invalid request: {name} must be a string"
                )))
            }
        };
        fields.insert(name, value)?;
    }
    Ok(())
}

async fn multipart(request: Request, fields: &mut Fields) -> Result<(), ApiError> {
    let bad = |e: axum::extract::multipart::MultipartError| {
        ApiError::BadRequest(format!(
            "Invalid request: malformed multipart body: {}",
            e.body_text()
        ))
    };
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(|e| ApiError::BadRequest(format!("Invalid request: {}", e.body_text())))?;
    while let Some(field) = multipart.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or("").to_owned();
        let value = field.text().await.map_err(bad)?;
        fields.insert(name, Value::One(value))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lists_numbers_and_nulls_become_fields() {
        let mut fields = Fields::default();
        json(
            br#"{"q": ["a", "b"], "alternatives": 2, "source": null, "target": "de"}"#,
            &mut fields,
        )
        .expect("parses");
        assert_eq!(
            fields.get("q"),
            Some(&Value::Many(vec!["a".into(), "b".into()]))
        );
        assert_eq!(fields.text("alternatives"), Ok(Some("2")));
        assert_eq!(fields.text("source"), Ok(None));
        assert!(fields.text("q").is_err());
        for bad in [
            &br#"{"q": [1]}"#[..],
            br#"{"q": {}}"#,
            b"[1]",
            b"{",
            br#"{"q": "a\u0000b"}"#,
            br#"{"q": ["a", "\u0000"]}"#,
        ] {
            assert!(json(bad, &mut Fields::default()).is_err());
        }
    }
}
