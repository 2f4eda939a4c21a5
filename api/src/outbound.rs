//! URLs voxq will call out to (a job's webhook, audio to fetch, webhook
//! endpoints), checked by the SSRF guard when a client gives them.

use voxq_shared::net_guard::Guard;

use crate::config::ApiConfig;

/// Longest URL a client may give (`webhook_url`, `audio_url`, endpoints).
pub const MAX_URL_CHARS: usize = 2000;

/// Why a URL was refused: the message for the client.
#[derive(Debug)]
pub struct Refused(pub String);

/// Checks a URL's form, scheme and every address its host resolves to, and
/// normalises it. The guard checks again when the URL is used: DNS can
/// change in between.
pub async fn check(guard: &Guard, url: &str) -> Result<String, Refused> {
    if url.chars().count() > MAX_URL_CHARS {
        return Err(Refused(format!(
            "URLs are at most {MAX_URL_CHARS} characters"
        )));
    }
    guard
        .resolve(url)
        .await
        .map(|checked| checked.url.to_string())
        .map_err(|e| Refused(e.to_string()))
}

/// A webhook URL, under the webhook dispatcher's rules.
pub async fn webhook(config: &ApiConfig, url: &str) -> Result<String, Refused> {
    check(&config.webhooks.guard(), url).await
}

/// An `audio_url`, under the worker's fetch rules.
pub async fn audio(config: &ApiConfig, url: &str) -> Result<String, Refused> {
    check(&config.fetch.guard(), url).await
}
