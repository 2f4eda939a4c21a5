//! The client's one error type, and the exit status each kind ends with.

use std::path::{Path, PathBuf};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Settings that cannot work: a bad URL, a missing key, a broken
    /// profile file. Exit status 2, as clap gives for bad arguments.
    #[error("{0}")]
    Config(String),
    /// voxq-api refused: its status and the one JSON error shape.
    #[error("voxq-api answered {status}: {message} ({code})")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    /// voxq-api could not be reached, or its answer not read.
    #[error("calling voxq-api at {url}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// voxq-api answered something this client does not understand.
    #[error("unexpected answer from voxq-api: {0}")]
    Protocol(String),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Some of a batch failed; each failure was reported as it happened.
    #[error("{failed} of {total} files failed")]
    Partial { failed: usize, total: usize },
    /// A job followed to its end did not succeed.
    #[error("job {id} {status}")]
    JobUnsuccessful { id: uuid::Uuid, status: String },
    /// The admin commands' database work, with its context.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl Error {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_owned(),
            source,
        }
    }

    /// What the process exits with.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(_) => 2,
            _ => 1,
        }
    }

    /// The message and its causes on one line, as anyhow's `{:#}`.
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }

    /// The API's error code, when the API refused.
    pub fn api_code(&self) -> Option<&str> {
        match self {
            Error::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}
