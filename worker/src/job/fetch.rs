//! Fetching `audio_url` inputs under the SSRF guard: every address the
//! host resolves to checked, the connection pinned to those addresses, no
//! redirects, a size limit and a timeout.

use std::time::Duration;

use voxq_shared::net_guard::Guard;

/// Why a fetch failed; the caller decides what is worth retrying.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("refused: {0}")]
    Refused(String),
    #[error("the server answered {0}")]
    Status(u16),
    #[error("the audio is larger than {0} bytes")]
    TooLarge(usize),
    #[error("fetching failed: {0}")]
    Network(String),
}

impl FetchError {
    /// Worth another attempt later (the server or the network may recover).
    pub fn is_transient(&self) -> bool {
        match self {
            FetchError::Network(_) => true,
            FetchError::Status(code) => *code == 408 || *code == 429 || *code >= 500,
            FetchError::Refused(_) | FetchError::TooLarge(_) => false,
        }
    }
}

pub struct Fetcher {
    pub guard: Guard,
    pub timeout: Duration,
    pub max_bytes: usize,
}

impl Fetcher {
    pub async fn fetch(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let checked = self
            .guard
            .resolve(url)
            .await
            .map_err(|e| FetchError::Refused(e.to_string()))?;
        let client = checked
            .client(
                self.timeout,
                concat!("voxq-worker/", env!("CARGO_PKG_VERSION")),
            )
            .map_err(|e| FetchError::Network(e.to_string()))?;
        let network = |e: reqwest::Error| FetchError::Network(e.without_url().to_string());
        let mut response = client
            .get(checked.url.clone())
            .send()
            .await
            .map_err(network)?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status(status.as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|n| n > self.max_bytes as u64)
        {
            return Err(FetchError::TooLarge(self.max_bytes));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(network)? {
            if bytes.len() + chunk.len() > self.max_bytes {
                return Err(FetchError::TooLarge(self.max_bytes));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }
}
