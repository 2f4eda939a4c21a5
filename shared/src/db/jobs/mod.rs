//! The jobs table: inserting a job with its input, claiming, leasing,
//! ending, cancelling and requeueing it, reading it for its owner, and
//! retention; one file per part of its life. Each statement is written out
//! whole so that it is checked at compile time.

mod claim;
mod end;
mod insert;
mod read;
mod retention;

pub use claim::*;
pub use end::*;
pub use insert::*;
pub use read::*;
pub use retention::*;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::accounts::ResultCachePolicy;
use crate::job::{JobError, JobKind, JobParams, JobStatus, JobView};

/// The audio a job was submitted with, as probed by the API.
#[derive(Clone, Copy)]
pub struct NewInput<'a> {
    pub content_type: &'a str,
    pub codec: &'a str,
    pub sample_rate: u32,
    pub channels: u16,
    pub duration_seconds: f64,
    pub data: AudioData<'a>,
}

/// Where an upload's bytes are.
#[derive(Clone, Copy)]
pub enum AudioData<'a> {
    /// Small enough to travel with the job's row, in one statement.
    Bytes(&'a [u8]),
    /// Spooled to a file by the API; streamed into Postgres with `COPY`,
    /// so that a large upload is never held whole in the API's memory.
    File { file: &'a std::fs::File, len: u64 },
}

/// A job's stored input.
pub enum StoredInput {
    Audio {
        data: Vec<u8>,
        duration_seconds: f64,
    },
    Text(String),
    /// Audio the worker fetches, and the account's daily audio limit when
    /// it was submitted (absent for jobs submitted before it was kept).
    Url {
        url: String,
        audio_limit_ms: Option<u64>,
    },
}

/// What a worker learns when it claims a job.
pub struct Claim {
    pub attempts: i32,
    pub cache_policy: ResultCachePolicy,
    /// Seconds from the job's acceptance to this claim, by the database's
    /// clock (workers' clocks may differ).
    pub waited_seconds: f64,
}

struct JobRow {
    id: Uuid,
    kind: String,
    status: String,
    params: sqlx::types::Json<JobParams>,
    result: Option<serde_json::Value>,
    error: Option<sqlx::types::Json<JobError>>,
    attempts: i32,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    data_deleted_at: Option<DateTime<Utc>>,
}

impl JobRow {
    fn into_view(self) -> Result<JobView, sqlx::Error> {
        let decode = |what: &str, value: &str| {
            sqlx::Error::Decode(format!("unknown job {what} {value:?} in database").into())
        };
        Ok(JobView {
            id: self.id,
            kind: JobKind::parse(&self.kind).ok_or_else(|| decode("kind", &self.kind))?,
            status: JobStatus::parse(&self.status).ok_or_else(|| decode("status", &self.status))?,
            params: self.params.0,
            result: self.result,
            error: self.error.map(|e| e.0),
            attempts: self.attempts,
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            progress: None,
            queue: None,
            data_deleted_at: self.data_deleted_at,
        })
    }
}

// The macros take literal SQL only, so each query spells out JobRow's
// columns; the JSON ones are named with their Rust types (jsonb decodes to
// a JSON value otherwise).

/// What a job is submitted with.
#[derive(Clone, Copy)]
pub enum NewJobInput<'a> {
    Audio(NewInput<'a>),
    Text(&'a str),
    /// An `audio_url`, already checked by the SSRF guard, and the account's
    /// daily audio limit.
    Url {
        url: &'a str,
        audio_limit_ms: u64,
    },
}
