//! The worker's settings, from flags or `VOXQ_*` environment variables.
//!
//! Over 400 lines, tests included, and kept whole: every setting and
//! command is here, documented where `--help` shows it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use clap::{Parser, Subcommand, ValueEnum};
use serde::Deserialize;
use voxq_shared::config::CommonConfig;
use voxq_shared::queue::Lane;
use voxq_shared::registry::valid_model_name;

/// voxq inference worker: consumes jobs from RabbitMQ, runs Whisper
/// (CTranslate2 or whisper.cpp) and translation models, and records results
/// and usage in Postgres and Redis.
#[derive(Debug, Clone, Parser)]
#[command(name = "voxq-worker", version)]
pub struct WorkerConfig {
    #[command(flatten)]
    pub common: CommonConfig,

    /// TOML file listing the models to serve (`[[models]]` tables: name,
    /// engine, path, device, compute_type, threads, beam_size, batch_size,
    /// default; see ops/models.example.toml). Without it the worker serves
    /// the one model the `--model-*` flags describe.
    #[arg(long, env = "VOXQ_MODELS_FILE")]
    pub models_file: Option<PathBuf>,

    #[command(flatten)]
    pub model: ModelConfig,

    /// Lanes to consume, each with its own inference slot: `interactive`
    /// (short jobs), `bulk` (accounts over their fair share), `long` (long
    /// audio).
    #[arg(
        long,
        env = "VOXQ_LANES",
        value_delimiter = ',',
        default_value = "interactive,bulk,long",
        value_parser = parse_lane
    )]
    pub lanes: Vec<Lane>,

    /// How long a lane waits for more jobs of the same model to batch with
    /// the first, in milliseconds (models with `batch_size` > 1).
    #[arg(long, env = "VOXQ_BATCH_WINDOW_MS", default_value_t = 25)]
    pub batch_window_ms: u64,

    /// Attempts to load each model before the worker runs without it
    /// (degraded, reported in heartbeats and `/health`).
    #[arg(long, env = "VOXQ_MODEL_LOAD_ATTEMPTS", default_value_t = 3)]
    pub model_load_attempts: u32,

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

    /// On SIGTERM, how long the jobs in progress may take to finish, in
    /// seconds; the worker then returns what is left to the queue and exits.
    #[arg(long, env = "VOXQ_SHUTDOWN_GRACE", default_value_t = 30)]
    pub shutdown_grace: u64,

    /// Long-lane jobs: seconds a worker's lease on a running job lasts
    /// (renewed every second while the job makes progress). A job whose
    /// lease runs out is put back in line by the API.
    #[arg(long, env = "VOXQ_LEASE_SECONDS", default_value_t = 60)]
    pub lease_seconds: u64,

    #[command(flatten)]
    pub fetch: voxq_shared::net_guard::FetchConfig,

    /// Seconds an `audio_url` fetch may take.
    #[arg(long, env = "VOXQ_FETCH_TIMEOUT", default_value_t = 60)]
    pub fetch_timeout: u64,

    /// Largest `audio_url` download, in bytes (the API's upload limit).
    #[arg(long, env = "VOXQ_MAX_UPLOAD_BYTES", default_value_t = 100 * 1024 * 1024)]
    pub max_upload_bytes: usize,

    /// Longest `audio_url` audio, in seconds (the API's limit for uploads).
    #[arg(long, env = "VOXQ_MAX_AUDIO_SECONDS", default_value_t = 4.0 * 3600.0)]
    pub max_audio_seconds: f64,

    /// Silero VAD model (ggml; `ops/fetch-models.sh` makes
    /// models/silero-vad.bin) for voice activity detection. Unset: jobs
    /// run without it, and jobs that ask for `vad` fail.
    #[arg(long, env = "VOXQ_VAD_MODEL")]
    pub vad_model: Option<PathBuf>,

    /// Jobs that do not say `vad` get voice activity detection when their
    /// audio is longer than this, in seconds: shorter clips are one
    /// Whisper window, where it saves nothing.
    #[arg(long, env = "VOXQ_VAD_AUTO_SECONDS", default_value_t = 30.0)]
    pub vad_auto_seconds: f64,

    #[command(flatten)]
    pub chaos: crate::chaos::ChaosConfig,

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
    /// Transcribe a local file with the first configured model and print
    /// the result and timings as JSON; for benchmarks and debugging.
    Transcribe(TranscribeArgs),
    /// Translate a local text file with the first configured translation
    /// model and print the result and timings as JSON; for benchmarks.
    Translate(TranslateArgs),
}

// The arguments of the benchmark commands (`crate::bench`). No doc
// comments on the structs: clap would take them for the commands' help.
#[derive(Debug, Clone, clap::Args)]
pub struct TranscribeArgs {
    pub file: PathBuf,
    /// ISO 639-1 language code; omitted, a multilingual model detects it.
    #[arg(long)]
    pub language: Option<String>,
    /// Produce English (Whisper's translate task).
    #[arg(long)]
    pub translate: bool,
    /// Time every word too.
    #[arg(long)]
    pub words: bool,
    /// Timed runs after one warm-up run.
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
    /// Copies of the file run as one batch per timed run.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Voice activity detection on (`true`) or off (`false`); omitted,
    /// as for jobs (on above `--vad-auto-seconds`).
    #[arg(long)]
    pub vad: Option<bool>,
    /// Text the decoding starts conditioned on (Whisper's initial prompt).
    #[arg(long)]
    pub prompt: Option<String>,
    /// First decoding temperature (0: beam search; up to 1: sampling).
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
}

#[derive(Debug, Clone, clap::Args)]
pub struct TranslateArgs {
    pub file: PathBuf,
    /// Target language (ISO 639-1 or the model's code).
    #[arg(long)]
    pub to: String,
    /// Source language; the model's default if omitted.
    #[arg(long)]
    pub from: Option<String>,
    /// Alternative translations to print besides the best one.
    #[arg(long, default_value_t = 0)]
    pub alternatives: usize,
    /// Timed runs after one warm-up run.
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
}

fn parse_lane(value: &str) -> Result<Lane, String> {
    Lane::parse(value.trim()).ok_or_else(|| format!("unknown lane {value:?}"))
}

/// The single model of a worker started without a models file.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelConfig {
    /// Model directory (CTranslate2) or file (ggml, for whisper-cpp).
    #[arg(long, env = "VOXQ_MODEL_DIR", default_value = "models/whisper-tiny.en")]
    pub model_dir: PathBuf,

    /// Name clients use for this model.
    #[arg(long, env = "VOXQ_MODEL_NAME", default_value = "whisper-tiny.en")]
    pub model_name: String,

    /// Engine that runs the model.
    #[arg(long, env = "VOXQ_ENGINE", value_enum, default_value_t = EngineKind::Ct2Whisper)]
    pub engine: EngineKind,

    /// Jobs of this model run as one batched call, up to this many.
    #[arg(long, env = "VOXQ_BATCH_SIZE", default_value_t = 1)]
    pub batch_size: usize,

    /// Inference device.
    #[arg(long, env = "VOXQ_DEVICE", value_enum, default_value_t = DeviceArg::Cpu)]
    pub device: DeviceArg,

    /// Weight and compute precision.
    #[arg(long, env = "VOXQ_COMPUTE_TYPE", value_enum, default_value_t = ComputeTypeArg::Int8)]
    pub compute_type: ComputeTypeArg,

    /// Threads for one inference call; 0 lets the engine choose: half the
    /// cores for ct2-whisper on a CPU (two calls run side by side), every
    /// core for the others.
    #[arg(long, env = "VOXQ_THREADS", default_value_t = 0)]
    pub threads: usize,

    /// Beam width for decoding (1 is greedy).
    #[arg(long, env = "VOXQ_BEAM_SIZE", default_value_t = 5)]
    pub beam_size: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EngineKind {
    Ct2Whisper,
    WhisperCpp,
    Ct2Translate,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceArg {
    #[default]
    Cpu,
    Cuda,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ComputeTypeArg {
    Default,
    Auto,
    Float32,
    #[default]
    Int8,
    Int8Float32,
    Int8Float16,
    Int16,
    Float16,
}

/// One model to serve, as a `[[models]]` table of the models file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub name: String,
    pub engine: EngineKind,
    /// Directory (CTranslate2) or file (ggml); relative paths are taken
    /// from the models file's directory.
    pub path: PathBuf,
    #[serde(default)]
    pub device: DeviceArg,
    #[serde(default)]
    pub compute_type: ComputeTypeArg,
    /// Threads per inference call; 0 lets the engine choose (see
    /// `ModelSpec::threads`).
    #[serde(default)]
    pub threads: usize,
    #[serde(default = "default_beam_size")]
    pub beam_size: usize,
    /// Jobs run as one batched call, up to this many.
    #[serde(default = "one")]
    pub batch_size: usize,
    /// Preferred for its job kinds when a job names no model.
    #[serde(default)]
    pub default: bool,
    /// ct2-translate models without language tokens: the languages they
    /// translate into.
    #[serde(default)]
    pub target_languages: Vec<String>,
    /// ct2-translate: source language assumed when a job does not say.
    #[serde(default = "english")]
    pub source_language: String,
    /// ct2-translate: longest output per sentence, in tokens.
    #[serde(default = "default_max_decoding_length")]
    pub max_decoding_length: usize,
}

fn default_beam_size() -> usize {
    5
}
fn one() -> usize {
    1
}
fn english() -> String {
    "en".into()
}
fn default_max_decoding_length() -> usize {
    256
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelsFile {
    models: Vec<ModelSpec>,
}

impl ModelSpec {
    /// Threads per inference call: the configured number, or with 0 the
    /// engine's own choice for the cores there are.
    pub fn threads(&self) -> usize {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        self.threads_on(cores)
    }

    /// With 0, Whisper on CTranslate2 on a CPU takes half the cores, so
    /// that two calls (a batch split in two, a long job's chunks) run side
    /// by side: its beam search barely gains from more threads per call
    /// (tiny.en: 1.80 s on one thread, 1.73 s on two), and every thread of
    /// a call waits for the slowest at each layer, which a shared
    /// machine's stolen cycles make costly (`ops/bench/batching.sh`,
    /// README "Sizing"). whisper.cpp and translation take every core.
    fn threads_on(&self, cores: usize) -> usize {
        if self.threads > 0 {
            return self.threads;
        }
        match (self.engine, self.device) {
            (EngineKind::Ct2Whisper, DeviceArg::Cpu) => (cores / 2).max(1),
            _ => cores.max(1),
        }
    }
}

impl WorkerConfig {
    /// The models to serve, validated: from the models file, or the one
    /// the flags describe.
    pub fn model_specs(&self) -> anyhow::Result<Vec<ModelSpec>> {
        let specs = match &self.models_file {
            Some(path) => read_models_file(path)?,
            None => {
                let m = &self.model;
                vec![ModelSpec {
                    name: m.model_name.clone(),
                    engine: m.engine,
                    path: m.model_dir.clone(),
                    device: m.device,
                    compute_type: m.compute_type,
                    threads: m.threads,
                    beam_size: m.beam_size,
                    batch_size: m.batch_size,
                    default: true,
                    target_languages: Vec::new(),
                    source_language: english(),
                    max_decoding_length: default_max_decoding_length(),
                }]
            }
        };
        if specs.is_empty() {
            bail!("no models to serve");
        }
        for (i, spec) in specs.iter().enumerate() {
            if !valid_model_name(&spec.name) {
                bail!(
                    "model name {:?}: use 1-64 letters, digits, '.', '_' or '-'",
                    spec.name
                );
            }
            if specs[..i].iter().any(|s| s.name == spec.name) {
                bail!("model {:?} is listed twice", spec.name);
            }
            if spec.batch_size == 0 {
                bail!("model {:?}: batch_size must be at least 1", spec.name);
            }
        }
        Ok(specs)
    }
}

fn read_models_file(path: &Path) -> anyhow::Result<Vec<ModelSpec>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading models file {}", path.display()))?;
    let file: ModelsFile =
        toml::from_str(&text).with_context(|| format!("parsing models file {}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    Ok(file
        .models
        .into_iter()
        .map(|mut spec| {
            if spec.path.is_relative() {
                spec.path = base.join(&spec.path);
            }
            spec
        })
        .collect())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_models_file_parses_and_resolves_paths() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ops/models.example.toml");
        let specs = read_models_file(&path).expect("example models file");
        assert!(specs.len() >= 3);
        let translate = specs
            .iter()
            .find(|s| s.engine == EngineKind::Ct2Translate)
            .expect("a translation model");
        assert!(translate.path.starts_with(path.parent().expect("dir")));
        assert!(specs.iter().any(|s| s.engine == EngineKind::WhisperCpp));
    }

    #[test]
    fn unset_threads_split_the_cores_for_ct2_whisper_on_a_cpu_only() {
        let spec = |engine: &str, device: &str, threads: usize| -> ModelSpec {
            toml::from_str(&format!(
                "name = \"m\"\nengine = \"{engine}\"\npath = \"x\"\n\
                 device = \"{device}\"\nthreads = {threads}\n"
            ))
            .expect("model spec")
        };
        let whisper = spec("ct2-whisper", "cpu", 0);
        assert_eq!(whisper.threads_on(2), 1);
        assert_eq!(whisper.threads_on(16), 8);
        assert_eq!(whisper.threads_on(3), 1);
        assert_eq!(whisper.threads_on(1), 1);
        assert_eq!(spec("ct2-whisper", "cuda", 0).threads_on(16), 16);
        assert_eq!(spec("whisper-cpp", "cpu", 0).threads_on(16), 16);
        assert_eq!(spec("ct2-translate", "cpu", 0).threads_on(2), 2);
        // A configured number is kept as it is.
        assert_eq!(spec("ct2-whisper", "cpu", 2).threads_on(2), 2);
    }

    #[test]
    fn duplicate_names_and_bad_names_are_refused() {
        let dir = std::env::temp_dir().join(format!("voxq-models-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        for (body, what) in [
            (
                "[[models]]\nname = \"a\"\nengine = \"ct2-whisper\"\npath = \"x\"\n\
                 [[models]]\nname = \"a\"\nengine = \"ct2-whisper\"\npath = \"y\"\n",
                "twice",
            ),
            (
                "[[models]]\nname = \"a b\"\nengine = \"ct2-whisper\"\npath = \"x\"\n",
                "model name",
            ),
        ] {
            let file = dir.join("models.toml");
            std::fs::write(&file, body).expect("write");
            let config = WorkerConfig::parse_from([
                "voxq-worker",
                "--models-file",
                file.to_str().expect("utf-8"),
            ]);
            let err = config.model_specs().expect_err(what).to_string();
            assert!(err.contains(what), "{err}");
        }
    }
}
