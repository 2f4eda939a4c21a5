//! The shared crate's error type. Binaries map it to their own edge errors.

use thiserror::Error;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Error)]
pub enum Error {
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Queue(#[from] lapin::Error),
    #[error("message broker did not confirm the publish")]
    NotConfirmed,
    #[error("{0} did not answer in time")]
    Timeout(&'static str),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}
