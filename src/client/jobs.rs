//! `/v1/jobs`: submitting audio, reading, long-polling, listing,
//! cancelling and following jobs.

use std::path::Path;
use std::time::Duration;

use reqwest::multipart::{Form, Part};
use reqwest::Method;
use serde::Deserialize;
use uuid::Uuid;
use voxq_shared::job::{JobStatus, JobSummary, JobView};

use super::Client;
use crate::error::{Error, Result};

/// The longest `?wait=` the API takes.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// A submission's answer, and whether the API replayed an earlier one
/// for the same `Idempotency-Key` (a job this client already paid for).
#[derive(Debug)]
pub struct Submitted {
    pub id: Uuid,
    pub replayed: bool,
    /// The `202` answer as it came (`id`, `status`, `url`).
    pub answer: serde_json::Value,
}

/// A page of `GET /v1/jobs`.
#[derive(Debug, Deserialize, serde::Serialize)]
pub struct JobPage {
    pub jobs: Vec<JobSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<Uuid>,
}

impl Client {
    /// Uploads `file` as an audio job with form `fields`. The file is
    /// streamed (never held whole) and opened again for each try.
    pub async fn submit_file(
        &self,
        file: &Path,
        fields: &[(&'static str, String)],
        idempotency_key: Option<&str>,
    ) -> Result<Submitted> {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "audio".into());
        let response = self
            .send(async || {
                let opened = tokio::fs::File::open(file)
                    .await
                    .map_err(|e| Error::io(file, e))?;
                let len = opened
                    .metadata()
                    .await
                    .map_err(|e| Error::io(file, e))?
                    .len();
                let part = Part::stream_with_length(opened, len).file_name(name.clone());
                let mut form = Form::new().part("file", part);
                for (field, value) in fields {
                    form = form.text(*field, value.clone());
                }
                let mut request = self.request(Method::POST, "/v1/jobs").multipart(form);
                if let Some(key) = idempotency_key {
                    request = request.header("idempotency-key", key);
                }
                Ok(request)
            })
            .await?;
        let replayed = response
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
        let answer: serde_json::Value = self.read_json(response).await?;
        let id = answer
            .get("id")
            .and_then(|id| id.as_str())
            .and_then(|id| Uuid::parse_str(id).ok())
            .ok_or_else(|| {
                Error::Protocol(format!("a submission answered without an id: {answer}"))
            })?;
        Ok(Submitted {
            id,
            replayed,
            answer,
        })
    }

    pub async fn job(&self, id: Uuid) -> Result<JobView> {
        self.json(async || Ok(self.get(&format!("/v1/jobs/{id}"))))
            .await
    }

    /// The job once it has ended, or as it is after `wait` (at most a
    /// minute: the API's long-poll).
    pub async fn job_after(&self, id: Uuid, wait: Duration) -> Result<JobView> {
        let seconds = wait.min(MAX_WAIT).as_secs().max(1);
        self.json(async || {
            Ok(self
                .request(Method::GET, &format!("/v1/jobs/{id}?wait={seconds}"))
                .timeout(Duration::from_secs(seconds + 30)))
        })
        .await
    }

    /// Long-polls until the job ends or `timeout` passes.
    pub async fn wait_for_end(&self, id: Uuid, timeout: Duration) -> Result<JobView> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let job = self.job_after(id, left).await?;
            if job.status.is_terminal() {
                return Ok(job);
            }
            if left.is_zero() || tokio::time::Instant::now() >= deadline {
                return Err(Error::JobUnsuccessful {
                    id,
                    status: format!(
                        "still {} after {} s",
                        job.status.as_str(),
                        timeout.as_secs()
                    ),
                });
            }
        }
    }

    /// The job's result as the API renders it (`text`, `srt`, `vtt`,
    /// `verbose_json`).
    pub async fn job_rendered(&self, id: Uuid, format: &str) -> Result<String> {
        let response = self
            .send(async || {
                Ok(self
                    .get(&format!("/v1/jobs/{id}"))
                    .query(&[("format", format)]))
            })
            .await?;
        let bytes = self.read_bytes(response).await?;
        String::from_utf8(bytes.to_vec()).map_err(|e| Error::Protocol(e.to_string()))
    }

    pub async fn list_jobs(
        &self,
        status: Option<JobStatus>,
        before: Option<Uuid>,
        limit: u32,
    ) -> Result<JobPage> {
        let mut query: Vec<(&str, String)> = vec![("limit", limit.to_string())];
        if let Some(status) = status {
            query.push(("status", status.as_str().to_owned()));
        }
        if let Some(before) = before {
            query.push(("before", before.to_string()));
        }
        self.json(async || Ok(self.get("/v1/jobs").query(&query)))
            .await
    }

    pub async fn cancel_job(&self, id: Uuid) -> Result<JobView> {
        self.json(async || Ok(self.delete(&format!("/v1/jobs/{id}"))))
            .await
    }

    /// The job's server-sent events, as the response to read them from.
    pub async fn job_events(&self, id: Uuid) -> Result<reqwest::Response> {
        self.send(async || {
            Ok(self
                .request(Method::GET, &format!("/v1/jobs/{id}/events"))
                .header("accept", "text/event-stream"))
        })
        .await
    }
}
