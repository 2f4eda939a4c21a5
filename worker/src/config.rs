//! The worker's settings, from flags or `VOXQ_*` environment variables.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use voxq_shared::config::CommonConfig;

/// voxq inference worker: consumes jobs from RabbitMQ, runs Whisper and
/// records results and usage in Postgres and Redis.
#[derive(Debug, Clone, Parser)]
#[command(name = "voxq-worker", version)]
pub struct WorkerConfig {
    #[command(flatten)]
    pub common: CommonConfig,

    #[command(flatten)]
    pub model: ModelConfig,

    /// Address of the worker's own HTTP listener (`/metrics`,
    /// `/health/live`); port 0 picks a free port (logged at start).
    #[arg(
        long,
        env = "VOXQ_WORKER_METRICS_BIND",
        default_value = "127.0.0.1:9091"
    )]
    pub metrics_bind: SocketAddr,

    /// Attempts before a job that keeps failing transiently ends `failed`.
    #[arg(long, env = "VOXQ_MAX_ATTEMPTS", default_value_t = 3)]
    pub max_attempts: i32,

    /// How long finished jobs stay in the Redis cache, in seconds.
    #[arg(long, env = "VOXQ_RESULT_CACHE_TTL", default_value_t = 24 * 3600)]
    pub result_cache_ttl: u64,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Consume jobs (the default).
    Run,
    /// Transcribe a local file with the configured engine and print the
    /// result and timings as JSON; for benchmarks and debugging.
    Transcribe {
        file: PathBuf,
        /// ISO 639-1 language code; omitted, a multilingual model detects it.
        #[arg(long)]
        language: Option<String>,
        /// Timed runs after one warm-up run.
        #[arg(long, default_value_t = 1)]
        runs: usize,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct ModelConfig {
    /// Directory of a CTranslate2 Whisper model (model.bin, config.json,
    /// tokenizer.json, vocabulary).
    #[arg(long, env = "VOXQ_MODEL_DIR", default_value = "models/whisper-tiny.en")]
    pub model_dir: PathBuf,

    /// Name clients use for this model.
    #[arg(long, env = "VOXQ_MODEL_NAME", default_value = "whisper-tiny.en")]
    pub model_name: String,

    /// Inference device.
    #[arg(long, env = "VOXQ_DEVICE", value_enum, default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,

    /// Weight and compute precision.
    #[arg(long, env = "VOXQ_COMPUTE_TYPE", value_enum, default_value_t = ComputeTypeArg::Int8)]
    pub compute_type: ComputeTypeArg,

    /// Threads for one inference call; 0 uses every core.
    #[arg(long, env = "VOXQ_THREADS", default_value_t = 0)]
    pub threads: usize,

    /// Beam width for decoding (1 is greedy).
    #[arg(long, env = "VOXQ_BEAM_SIZE", default_value_t = 5)]
    pub beam_size: usize,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DeviceArg {
    Cpu,
    Cuda,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ComputeTypeArg {
    Default,
    Auto,
    Float32,
    Int8,
    Int8Float32,
    Int8Float16,
    Int16,
    Float16,
}

impl ModelConfig {
    pub fn threads(&self) -> usize {
        if self.threads > 0 {
            self.threads
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }
}

impl From<DeviceArg> for ct2rs::sys::Device {
    fn from(d: DeviceArg) -> Self {
        match d {
            DeviceArg::Cpu => Self::CPU,
            DeviceArg::Cuda => Self::CUDA,
        }
    }
}

impl From<ComputeTypeArg> for ct2rs::sys::ComputeType {
    fn from(c: ComputeTypeArg) -> Self {
        match c {
            ComputeTypeArg::Default => Self::DEFAULT,
            ComputeTypeArg::Auto => Self::AUTO,
            ComputeTypeArg::Float32 => Self::FLOAT32,
            ComputeTypeArg::Int8 => Self::INT8,
            ComputeTypeArg::Int8Float32 => Self::INT8_FLOAT32,
            ComputeTypeArg::Int8Float16 => Self::INT8_FLOAT16,
            ComputeTypeArg::Int16 => Self::INT16,
            ComputeTypeArg::Float16 => Self::FLOAT16,
        }
    }
}
