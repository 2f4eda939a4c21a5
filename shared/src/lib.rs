//! What voxq's API, worker and CLI all need: configuration shared by every
//! process, domain types, Postgres repositories, the Redis result cache, the
//! RabbitMQ topology and audio probing/decoding.

pub mod api_key;
pub mod audio;
pub mod auth;
pub mod cache;
pub mod config;
pub mod db;
pub mod error;
pub mod events;
pub mod job;
pub mod net_guard;
pub mod queue;
pub mod quota;
pub mod registry;
pub mod shutdown;
pub mod subtitles;
pub mod telemetry;
pub mod vad;
pub mod webhooks;
pub mod whisper_languages;

pub use error::{Error, Result};
