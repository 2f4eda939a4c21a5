//! The caller's account: usage and quotas (`/v1/usage`), API keys
//! (`/v1/keys`). The answers are read as JSON values: the commands print
//! them whole with `--json`, and pick the fields their tables show.

use chrono::NaiveDate;
use serde_json::{json, Value};
use uuid::Uuid;

use super::Client;
use crate::error::Result;

impl Client {
    pub async fn usage(&self, from: Option<NaiveDate>, to: Option<NaiveDate>) -> Result<Value> {
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(from) = from {
            query.push(("from", from.to_string()));
        }
        if let Some(to) = to {
            query.push(("to", to.to_string()));
        }
        self.json(async || Ok(self.get("/v1/usage").query(&query)))
            .await
    }

    pub async fn keys(&self) -> Result<Value> {
        self.json(async || Ok(self.get("/v1/keys"))).await
    }

    /// A new key; `scopes` empty means the caller's own.
    pub async fn create_key(&self, name: &str, scopes: &[String]) -> Result<Value> {
        let mut body = json!({ "name": name });
        if !scopes.is_empty() {
            body["scopes"] = json!(scopes);
        }
        self.json(async || Ok(self.post("/v1/keys").json(&body)))
            .await
    }

    pub async fn revoke_key(&self, id: Uuid) -> Result<Value> {
        self.json(async || Ok(self.delete(&format!("/v1/keys/{id}"))))
            .await
    }
}
