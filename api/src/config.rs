//! The API's settings, from flags or `VOXQ_*` environment variables.

use std::net::SocketAddr;

use clap::Parser;
use voxq_shared::config::CommonConfig;

/// voxq HTTP API: accepts authenticated jobs, queues them on RabbitMQ and
/// serves their status and results.
#[derive(Debug, Clone, Parser)]
#[command(name = "voxq-api", version)]
pub struct ApiConfig {
    #[command(flatten)]
    pub common: CommonConfig,

    /// Address to listen on; port 0 picks a free port (logged at start).
    #[arg(long, env = "VOXQ_API_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Largest accepted upload, in bytes.
    #[arg(long, env = "VOXQ_MAX_UPLOAD_BYTES", default_value_t = 100 * 1024 * 1024)]
    pub max_upload_bytes: usize,

    /// Shortest accepted audio, in seconds.
    #[arg(long, env = "VOXQ_MIN_AUDIO_SECONDS", default_value_t = 0.1)]
    pub min_audio_seconds: f64,

    /// Longest accepted audio, in seconds.
    #[arg(long, env = "VOXQ_MAX_AUDIO_SECONDS", default_value_t = 4.0 * 3600.0)]
    pub max_audio_seconds: f64,

    /// How long finished jobs stay in the Redis cache, in seconds.
    #[arg(long, env = "VOXQ_RESULT_CACHE_TTL", default_value_t = 24 * 3600)]
    pub result_cache_ttl: u64,

    /// Seconds before a request is answered 408.
    #[arg(long, env = "VOXQ_REQUEST_TIMEOUT", default_value_t = 60)]
    pub request_timeout: u64,

    /// Apply pending database migrations at start (safe with several
    /// instances: sqlx takes an advisory lock).
    #[arg(long, env = "VOXQ_MIGRATE", default_value_t = true, action = clap::ArgAction::Set)]
    pub migrate: bool,

    /// Postgres connections in the pool.
    #[arg(long, env = "VOXQ_DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: u32,
}

impl ApiConfig {
    /// Start-up validation of what clap cannot express.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.max_upload_bytes > 0,
            "VOXQ_MAX_UPLOAD_BYTES must be positive"
        );
        anyhow::ensure!(
            self.min_audio_seconds >= 0.0 && self.min_audio_seconds < self.max_audio_seconds,
            "VOXQ_MIN_AUDIO_SECONDS must be below VOXQ_MAX_AUDIO_SECONDS"
        );
        anyhow::ensure!(
            self.request_timeout > 0,
            "VOXQ_REQUEST_TIMEOUT must be positive"
        );
        Ok(())
    }
}
