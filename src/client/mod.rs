//! Talking to voxq-api: one `reqwest` client, the bearer key, the one
//! JSON error shape turned into [`Error::Api`], and 429s waited out.
//! The calls themselves are grouped by resource in the submodules.

pub mod account;
pub mod jobs;
pub mod sse;

use std::time::Duration;

use reqwest::{RequestBuilder, Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::settings::Connection;

/// Tries of one request that the API asks to repeat (429 with
/// `Retry-After`, `idempotency_in_progress`).
const MAX_TRIES: u32 = 6;
/// The longest `Retry-After` waited out; a longer one is reported, since
/// a quota that resets tomorrow is not worth hanging for.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// How long a submission waits, in all, for the account's own jobs to
/// make room when it has as many in flight as its tier allows
/// (`concurrency_limit`): a batch larger than that limit is the normal
/// case, so this is waited out far longer than other refusals.
const MAX_CONCURRENCY_WAIT: Duration = Duration::from_secs(30 * 60);
/// Pauses before sending again to an API that could not be reached or
/// answered 502, 503 or 504: under ten seconds in all, enough for an API
/// restarting behind its load balancer, short enough that a mistyped URL
/// is reported soon.
const OUTAGE_PAUSES: [Duration; 4] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];
/// For requests that answer at once (everything but uploads and
/// long-polls, which set their own).
const QUICK_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    key: SecretString,
}

impl Client {
    pub fn new(connection: &Connection) -> Result<Self> {
        let key = connection.api_key()?.clone();
        let http = reqwest::Client::builder()
            .user_agent(concat!("voxq-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|source| Error::Transport {
                url: connection.url.to_string(),
                source,
            })?;
        Ok(Self {
            http,
            base: connection.url.as_str().trim_end_matches('/').to_owned(),
            key,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.http.get(self.url(path)).timeout(QUICK_TIMEOUT)
    }

    pub fn post(&self, path: &str) -> RequestBuilder {
        self.http.post(self.url(path)).timeout(QUICK_TIMEOUT)
    }

    pub fn delete(&self, path: &str) -> RequestBuilder {
        self.http.delete(self.url(path)).timeout(QUICK_TIMEOUT)
    }

    /// A request without the quick timeout (uploads, long-polls, streams).
    pub fn request(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path))
    }

    /// Sends what `build` makes, again while the API asks to wait
    /// (`Retry-After`) and, a few times with growing pauses, when it could
    /// not be reached or said it is briefly unavailable, if sending again
    /// is safe (see [`repeatable`]); any other refusal is an
    /// [`Error::Api`]. `build` runs once per try because a streamed upload
    /// cannot be cloned.
    pub async fn send(&self, build: impl AsyncFn() -> Result<RequestBuilder>) -> Result<Response> {
        let mut tries = 0;
        let mut crowded = Duration::ZERO;
        let mut outages = 0;
        loop {
            tries += 1;
            let request = build()
                .await?
                .bearer_auth(self.key.expose_secret())
                .build()
                .map_err(|source| self.transport(source))?;
            let safe = repeatable(&request);
            let response = match self.http.execute(request).await {
                Ok(response) => response,
                Err(_) if safe && outages < OUTAGE_PAUSES.len() => {
                    tokio::time::sleep(OUTAGE_PAUSES[outages]).await;
                    outages += 1;
                    tries -= 1;
                    continue;
                }
                Err(source) => return Err(self.transport(source)),
            };
            let status = response.status();
            if status.is_success() {
                return Ok(response);
            }
            let retry_after = retry_after(&response);
            let error = api_error(response).await;
            let again = match (status, retry_after) {
                (StatusCode::TOO_MANY_REQUESTS, Some(wait))
                    if error.api_code() == Some("concurrency_limit")
                        && crowded < MAX_CONCURRENCY_WAIT =>
                {
                    crowded += wait;
                    tries -= 1;
                    Some(wait)
                }
                (StatusCode::TOO_MANY_REQUESTS, Some(wait)) if wait <= MAX_RETRY_AFTER => {
                    Some(wait)
                }
                // Another run (or an earlier try whose answer was lost) is
                // submitting the same file right now; its answer is ours.
                (StatusCode::CONFLICT, _)
                    if error.api_code() == Some("idempotency_in_progress") =>
                {
                    Some(Duration::from_secs(1))
                }
                // A proxy in front of a restarting API, or the API with a
                // store down (its 503 accepts nothing).
                (
                    StatusCode::BAD_GATEWAY
                    | StatusCode::SERVICE_UNAVAILABLE
                    | StatusCode::GATEWAY_TIMEOUT,
                    _,
                ) if safe && outages < OUTAGE_PAUSES.len() => {
                    outages += 1;
                    tries -= 1;
                    Some(OUTAGE_PAUSES[outages - 1])
                }
                _ => None,
            };
            match again {
                Some(wait) if tries < MAX_TRIES => tokio::time::sleep(wait).await,
                _ => return Err(error),
            }
        }
    }

    fn transport(&self, source: reqwest::Error) -> Error {
        Error::Transport {
            url: self.base.clone(),
            source,
        }
    }

    /// [`Self::send`], then the JSON body.
    pub async fn json<T: DeserializeOwned>(
        &self,
        build: impl AsyncFn() -> Result<RequestBuilder>,
    ) -> Result<T> {
        let response = self.send(build).await?;
        self.read_json(response).await
    }

    pub async fn read_json<T: DeserializeOwned>(&self, response: Response) -> Result<T> {
        let bytes = self.read_bytes(response).await?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Protocol(e.to_string()))
    }

    pub async fn read_bytes(&self, response: Response) -> Result<bytes::Bytes> {
        response
            .bytes()
            .await
            .map_err(|source| self.transport(source))
    }
}

/// Whether sending `request` twice does what sending it once does:
/// reads, cancels (cancelling twice is fine), and submissions carrying an
/// `Idempotency-Key` (the API answers a repeat with the first answer).
/// Creating a key is none of these: a lost answer may hide a created key.
fn repeatable(request: &reqwest::Request) -> bool {
    matches!(
        *request.method(),
        reqwest::Method::GET | reqwest::Method::HEAD | reqwest::Method::DELETE
    ) || request.headers().contains_key("idempotency-key")
}

fn retry_after(response: &Response) -> Option<Duration> {
    let seconds: u64 = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds.max(1)))
}

/// The one error shape, `{"error": {"code", "message"}}`; whatever else a
/// proxy in between may answer is kept as its status.
async fn api_error(response: Response) -> Error {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let field = |name: &str| {
        body.pointer(&format!("/error/{name}"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    Error::Api {
        status: status.as_u16(),
        code: field("code").unwrap_or_else(|| "unknown".into()),
        message: field("message")
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("no details").to_owned()),
    }
}
