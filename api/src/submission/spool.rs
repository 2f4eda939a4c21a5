//! Uploads taken in as they arrive: small ones in memory, larger ones in an
//! unnamed temporary file, so that a request holds a buffer, never a whole
//! file, however many arrive at once.

use std::path::Path;

use axum::body::Bytes;
use axum::extract::multipart::{Field, MultipartError};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use voxq_shared::db::jobs::AudioData;

use crate::error::{ApiError, Result};

/// Uploads up to this size stay in memory: they are stored in the same
/// statement as their job, a round trip less than streaming them.
pub const IN_MEMORY_LIMIT: usize = 1024 * 1024;

/// Where an upload's bytes are.
pub enum Spooled {
    Memory(Bytes),
    /// Unlinked when created: nothing is left behind, whatever happens to
    /// the request or the process.
    File {
        file: std::fs::File,
        len: u64,
    },
}

impl Spooled {
    pub fn is_empty(&self) -> bool {
        match self {
            Self::Memory(bytes) => bytes.is_empty(),
            Self::File { len, .. } => *len == 0,
        }
    }

    /// The bytes as the job's insert takes them.
    pub fn audio_data(&self) -> AudioData<'_> {
        match self {
            Self::Memory(bytes) => AudioData::Bytes(bytes),
            Self::File { file, len } => AudioData::File { file, len: *len },
        }
    }
}

/// An upload taken in whole, with the SHA-256 of its bytes.
pub struct Upload {
    pub data: Spooled,
    pub digest: [u8; 32],
}

/// Reads a form field to its end, refusing it once it passes `limit` bytes.
pub async fn take(
    field: &mut Field<'_>,
    limit: usize,
    dir: &Path,
    part_error: impl Fn(MultipartError) -> ApiError,
) -> Result<Upload> {
    let mut digest = Sha256::new();
    let mut memory: Vec<u8> = Vec::new();
    let mut spill: Option<(tokio::fs::File, std::fs::File)> = None;
    let mut len: usize = 0;
    while let Some(chunk) = field.chunk().await.map_err(&part_error)? {
        len = len.saturating_add(chunk.len());
        if len > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        digest.update(&chunk);
        if spill.is_none() && len > IN_MEMORY_LIMIT {
            let file = tempfile::tempfile_in(dir).map_err(spool_error)?;
            let mut writer = tokio::fs::File::from_std(file.try_clone().map_err(spool_error)?);
            writer.write_all(&memory).await.map_err(spool_error)?;
            memory = Vec::new();
            spill = Some((writer, file));
        }
        match &mut spill {
            Some((writer, _)) => writer.write_all(&chunk).await.map_err(spool_error)?,
            None => memory.extend_from_slice(&chunk),
        }
    }
    let data = match spill {
        Some((mut writer, file)) => {
            // A tokio file finishes its last write in the background
            // unless flushed: the bytes must be there before anyone reads.
            writer.flush().await.map_err(spool_error)?;
            Spooled::File {
                file,
                len: len as u64,
            }
        }
        None => Spooled::Memory(Bytes::from(memory)),
    };
    Ok(Upload {
        data,
        digest: digest.finalize().into(),
    })
}

/// Spooled uploads being copied into Postgres at once. Each copy holds a
/// pooled connection for as long as Postgres takes to write its file;
/// without a cap, sixteen maximum-size uploads held every connection and
/// the requests behind them (and the relay, the janitor) timed out.
#[derive(Clone)]
pub struct Copies(std::sync::Arc<tokio::sync::Semaphore>);

impl Copies {
    /// A quarter of the pool, at least one.
    pub fn for_pool(pool_size: u32) -> Self {
        let permits = (pool_size as usize / 4).max(1);
        Self(std::sync::Arc::new(tokio::sync::Semaphore::new(permits)))
    }

    /// Waits for a turn; the request's own timeout bounds the wait.
    pub async fn turn(&self) -> Result<tokio::sync::OwnedSemaphorePermit> {
        self.0
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| ApiError::Internal(e.into()))
    }
}

fn spool_error(e: std::io::Error) -> ApiError {
    ApiError::Internal(anyhow::Error::new(e).context("spooling an upload to VOXQ_UPLOAD_DIR"))
}
