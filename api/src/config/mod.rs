//! The API's settings, from flags or `VOXQ_*` environment variables, read
//! once and validated at start. Longer than most files: each setting's doc
//! comment is its `--help` text, and the webhook settings live in
//! [`webhooks`].

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use secrecy::{ExposeSecret, SecretString};
use voxq_shared::config::{CommonConfig, DEV_KEY_PEPPER};
use voxq_shared::registry::ModelInfo;

mod webhooks;

pub use webhooks::WebhookConfig;

/// Development keeps convenient defaults; production refuses to start with
/// any of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Environment {
    Development,
    Production,
}

pub const DEV_JWT_SECRET: &str = "voxq-development-jwt-secret-change-me-0123456789";

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

    /// Address of the Prometheus metrics listener (`/metrics`), kept off
    /// the public port; port 0 picks a free port (logged at start).
    #[arg(long, env = "VOXQ_API_METRICS_BIND", default_value = "127.0.0.1:9090")]
    pub metrics_bind: SocketAddr,

    /// Largest accepted upload, in bytes.
    #[arg(long, env = "VOXQ_MAX_UPLOAD_BYTES", default_value_t = 100 * 1024 * 1024)]
    pub max_upload_bytes: usize,

    /// Where uploads larger than 1 MiB are spooled while they are checked
    /// and stored (unnamed temporary files, gone when the request ends;
    /// the system's temporary directory by default).
    #[arg(long, env = "VOXQ_UPLOAD_DIR")]
    pub upload_dir: Option<PathBuf>,

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

    /// Seconds the OpenAI- and LibreTranslate-compatible routes wait for a
    /// job's result before answering `504 job_pending`, which names the
    /// job (its result stays at `/v1/jobs/{id}`; the same request sent
    /// again waits on the same job).
    #[arg(long, env = "VOXQ_RESULT_WAIT", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub result_wait: u64,

    /// Long-polls and event streams one API process holds at once; more
    /// are answered `429 too_many_waiting`.
    #[arg(
        long,
        env = "VOXQ_MAX_WAITING",
        default_value_t = 10_000,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub max_waiting: u32,

    /// Long-polls and event streams one account holds at once on one API
    /// process.
    #[arg(
        long,
        env = "VOXQ_MAX_WAITING_PER_ACCOUNT",
        default_value_t = 64,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub max_waiting_per_account: u32,

    /// Apply pending database migrations at start (safe with several
    /// instances: sqlx takes an advisory lock).
    #[arg(long, env = "VOXQ_MIGRATE", default_value_t = true, action = clap::ArgAction::Set)]
    pub migrate: bool,

    /// Postgres connections in the pool.
    #[arg(long, env = "VOXQ_DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: u32,

    /// `production` refuses to start with development secrets, default
    /// database credentials or a wildcard CORS origin.
    #[arg(long, env = "VOXQ_ENV", value_enum, default_value_t = Environment::Development)]
    pub env: Environment,

    /// HMAC key for access tokens (HS256); at least 32 bytes in production.
    /// Every API instance must share it.
    #[arg(long, env = "VOXQ_JWT_SECRET", default_value = DEV_JWT_SECRET, hide_env_values = true)]
    pub jwt_secret: SecretString,

    /// `iss` of issued access tokens, checked on every request.
    #[arg(long, env = "VOXQ_JWT_ISSUER", default_value = "voxq")]
    pub jwt_issuer: String,

    /// `aud` of issued access tokens, checked on every request.
    #[arg(long, env = "VOXQ_JWT_AUDIENCE", default_value = "voxq-api")]
    pub jwt_audience: String,

    /// Access token lifetime, in seconds.
    #[arg(long, env = "VOXQ_ACCESS_TOKEN_TTL", default_value_t = 900)]
    pub access_token_ttl: u64,

    /// Refresh token lifetime, in seconds.
    #[arg(long, env = "VOXQ_REFRESH_TOKEN_TTL", default_value_t = 30 * 24 * 3600)]
    pub refresh_token_ttl: u64,

    /// TOML file of per-tier limits (`[free]`, `[basic]`, `[pro]`,
    /// `[enterprise]`); tiers it leaves out keep the built-in limits.
    #[arg(long, env = "VOXQ_LIMITS_FILE")]
    pub limits_file: Option<PathBuf>,

    /// Origins allowed to call the API from a browser, comma-separated
    /// (`https://app.example.com`); empty: no CORS headers at all.
    #[arg(
        long,
        env = "VOXQ_CORS_ORIGINS",
        value_delimiter = ',',
        default_value = ""
    )]
    pub cors_origins: Vec<String>,

    /// Send Strict-Transport-Security: set when clients reach the API
    /// through TLS.
    #[arg(long, env = "VOXQ_HSTS", default_value_t = false, action = clap::ArgAction::Set)]
    pub hsts: bool,

    /// Header carrying the client address (`x-forwarded-for`); set it only
    /// behind a proxy that overwrites it. Unset: the socket's peer address.
    #[arg(long, env = "VOXQ_CLIENT_IP_HEADER")]
    pub client_ip_header: Option<String>,

    /// Requests per minute from one client address, across all keys.
    #[arg(long, env = "VOXQ_IP_RATE_PER_MINUTE", default_value_t = 1200)]
    pub ip_rate_per_minute: u64,

    /// Burst on top of the per-address rate.
    #[arg(long, env = "VOXQ_IP_BURST", default_value_t = 300)]
    pub ip_burst: u64,

    /// Login attempts per minute from one address.
    #[arg(long, env = "VOXQ_LOGIN_RATE_PER_MINUTE", default_value_t = 10)]
    pub login_rate_per_minute: u64,

    /// Burst of login attempts from one address.
    #[arg(long, env = "VOXQ_LOGIN_BURST", default_value_t = 10)]
    pub login_burst: u64,

    /// Failed logins for one email before it is locked out.
    #[arg(long, env = "VOXQ_LOGIN_MAX_FAILURES", default_value_t = 5)]
    pub login_max_failures: u64,

    /// Failed logins from one address before it is locked out.
    #[arg(long, env = "VOXQ_LOGIN_MAX_FAILURES_PER_IP", default_value_t = 20)]
    pub login_max_failures_per_ip: u64,

    /// Seconds a lockout lasts (also the window failures are counted in).
    #[arg(long, env = "VOXQ_LOGIN_LOCKOUT", default_value_t = 900)]
    pub login_lockout: u64,

    /// Days a login's device token stays valid; logins that present one are
    /// not locked out by other clients' failures.
    #[arg(
        long,
        env = "VOXQ_LOGIN_DEVICE_TOKEN_DAYS",
        default_value_t = 90,
        value_parser = clap::value_parser!(u32).range(1..=3650)
    )]
    pub login_device_token_days: u32,

    /// IPv6 clients share per-address limits by network of this prefix
    /// length (one /64 is what one subscriber usually gets); IPv4 by
    /// address.
    #[arg(
        long,
        env = "VOXQ_IPV6_PREFIX",
        default_value_t = 64,
        value_parser = clap::value_parser!(u8).range(32..=128)
    )]
    pub ipv6_prefix: u8,

    /// Shortest accepted password (NIST SP 800-63B asks 15 for passwords
    /// used alone).
    #[arg(long, env = "VOXQ_PASSWORD_MIN_LENGTH", default_value_t = 15)]
    pub password_min_length: usize,

    /// Longest text of a translate job, in characters.
    #[arg(long, env = "VOXQ_MAX_TEXT_CHARS", default_value_t = 100_000)]
    pub max_text_chars: usize,

    /// Largest JSON body on routes other than job submission, in bytes.
    #[arg(long, env = "VOXQ_MAX_JSON_BYTES", default_value_t = 64 * 1024)]
    pub max_json_bytes: usize,

    /// Largest total size of request headers, in bytes (431 above).
    #[arg(long, env = "VOXQ_MAX_HEADER_BYTES", default_value_t = 16 * 1024)]
    pub max_header_bytes: usize,

    /// Processing seconds reserved per second of audio at submission; the
    /// measured time replaces it when the job ends.
    #[arg(long, env = "VOXQ_PROCESSING_ESTIMATE", default_value_t = 0.5)]
    pub processing_estimate: f64,

    /// Models accepted while no worker announces them (workers scaled to
    /// zero): `name=kind[+kind],…`, kinds `transcribe`, `translate`,
    /// `speech_translate`. Their jobs queue until a worker starts.
    #[arg(long, env = "VOXQ_STANDBY_MODELS", default_value = "", value_parser = parse_standby)]
    pub standby_models: StandbyModels,

    /// Audio longer than this, in seconds, waits on the `long` lane so it
    /// never holds short jobs behind it.
    #[arg(long, env = "VOXQ_LONG_AUDIO_SECONDS", default_value_t = 120.0)]
    pub long_audio_seconds: f64,

    /// An account's jobs beyond this many in flight wait on the `bulk` lane,
    /// so one account's burst cannot starve the others.
    #[arg(long, env = "VOXQ_FAIR_SHARE", default_value_t = 4)]
    pub fair_share: u64,

    /// Seconds between housekeeping passes (retention, expired
    /// idempotency keys).
    #[arg(long, env = "VOXQ_JANITOR_INTERVAL", default_value_t = 10)]
    pub janitor_interval: u64,

    #[command(flatten)]
    pub webhooks: WebhookConfig,

    #[command(flatten)]
    pub fetch: voxq_shared::net_guard::FetchConfig,

    /// Seconds of audio reserved from the quota for an `audio_url` job
    /// until the worker has fetched it and knows its length.
    #[arg(long, env = "VOXQ_URL_AUDIO_ESTIMATE", default_value_t = 600.0)]
    pub url_audio_estimate: f64,
}

/// The parsed `VOXQ_STANDBY_MODELS`.
#[derive(Debug, Clone, Default)]
pub struct StandbyModels(pub Vec<ModelInfo>);

fn parse_standby(value: &str) -> Result<StandbyModels, String> {
    voxq_shared::registry::parse_standby(value).map(StandbyModels)
}

impl ApiConfig {
    /// Where large uploads are spooled.
    pub fn spool_dir(&self) -> PathBuf {
        self.upload_dir.clone().unwrap_or_else(std::env::temp_dir)
    }

    /// Start-up validation of what clap cannot express.
    pub fn validate(&self) -> anyhow::Result<()> {
        // The built-in secrets are in this repository for anyone to read:
        // with them, anyone could sign tokens or test guessed keys. They
        // are for a machine's own loopback only.
        let development_secret = self.jwt_secret.expose_secret() == DEV_JWT_SECRET
            || self.common.key_pepper.expose_secret() == DEV_KEY_PEPPER;
        anyhow::ensure!(
            !development_secret || self.bind.ip().is_loopback(),
            "VOXQ_JWT_SECRET and VOXQ_KEY_PEPPER are the built-in development values, which \
             are public: they are accepted on a loopback VOXQ_API_BIND only (not {}); set both \
             to random values (openssl rand -base64 48)",
            self.bind
        );
        anyhow::ensure!(
            self.webhooks
                .retry_seconds
                .iter()
                .all(|s| s.is_finite() && *s >= 0.0),
            "VOXQ_WEBHOOK_RETRY_SECONDS must be non-negative numbers of seconds"
        );
        anyhow::ensure!(
            self.max_upload_bytes > 0,
            "VOXQ_MAX_UPLOAD_BYTES must be positive"
        );
        let spool = self.spool_dir();
        tempfile::tempfile_in(&spool).map_err(|e| {
            anyhow::anyhow!(
                "VOXQ_UPLOAD_DIR: cannot create a temporary file in {}: {e}",
                spool.display()
            )
        })?;
        anyhow::ensure!(
            self.min_audio_seconds >= 0.0 && self.min_audio_seconds < self.max_audio_seconds,
            "VOXQ_MIN_AUDIO_SECONDS must be below VOXQ_MAX_AUDIO_SECONDS"
        );
        anyhow::ensure!(
            self.request_timeout > 0,
            "VOXQ_REQUEST_TIMEOUT must be positive"
        );
        anyhow::ensure!(
            self.access_token_ttl > 0 && self.refresh_token_ttl > 0,
            "token lifetimes must be positive"
        );
        anyhow::ensure!(
            self.ip_rate_per_minute > 0
                && self.ip_burst > 0
                && self.login_rate_per_minute > 0
                && self.login_burst > 0,
            "rates and bursts must be positive"
        );
        anyhow::ensure!(
            (8..=64).contains(&self.password_min_length),
            "VOXQ_PASSWORD_MIN_LENGTH must be between 8 and 64"
        );
        anyhow::ensure!(
            self.long_audio_seconds > 0.0,
            "VOXQ_LONG_AUDIO_SECONDS must be positive"
        );
        anyhow::ensure!(
            self.processing_estimate >= 0.0 && self.processing_estimate.is_finite(),
            "VOXQ_PROCESSING_ESTIMATE must be a non-negative number"
        );
        for origin in self.cors_origins() {
            anyhow::ensure!(
                origin == "*" || origin.starts_with("https://") || origin.starts_with("http://"),
                "VOXQ_CORS_ORIGINS entries must be origins such as https://app.example.com"
            );
        }
        if self.env == Environment::Production {
            self.validate_production()?;
        }
        Ok(())
    }

    pub fn cors_origins(&self) -> impl Iterator<Item = &str> {
        self.cors_origins
            .iter()
            .map(|o| o.trim())
            .filter(|o| !o.is_empty())
    }

    /// Everything a development default would make unsafe in production.
    fn validate_production(&self) -> anyhow::Result<()> {
        let secret = self.jwt_secret.expose_secret();
        anyhow::ensure!(
            secret != DEV_JWT_SECRET && !is_example_secret(secret) && secret.len() >= 32,
            "production: set VOXQ_JWT_SECRET to a random value of at least 32 bytes"
        );
        let pepper = self.common.key_pepper.expose_secret();
        anyhow::ensure!(
            pepper != DEV_KEY_PEPPER && !is_example_secret(pepper) && pepper.len() >= 16,
            "production: set VOXQ_KEY_PEPPER to a random value of at least 16 bytes"
        );
        anyhow::ensure!(
            !self.cors_origins().any(|o| o == "*"),
            "production: VOXQ_CORS_ORIGINS must list origins, not *"
        );
        let url = url::Url::parse(&self.common.database_url)
            .map_err(|e| anyhow::anyhow!("VOXQ_DATABASE_URL is not a URL: {e}"))?;
        let password = url.password().unwrap_or("");
        anyhow::ensure!(
            !password.is_empty() && password != "postgres" && password != url.username(),
            "production: VOXQ_DATABASE_URL uses default or empty database credentials"
        );
        Ok(())
    }
}

/// Whether a secret is one of the placeholders that documentation and
/// examples show (`.env.example`'s included), which people copy as they are.
pub fn is_example_secret(secret: &str) -> bool {
    let lower = secret.to_ascii_lowercase();
    [
        "change-me",
        "changeme",
        "change_me",
        "replace-me",
        "example",
        "secret-here",
    ]
    .iter()
    .any(|placeholder| lower.contains(placeholder))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> ApiConfig {
        ApiConfig::parse_from(std::iter::once("voxq-api").chain(args.iter().copied()))
    }

    /// A value of `.env.example`, the file people copy.
    fn example(name: &str) -> String {
        include_str!("../../../.env.example")
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} is in .env.example"))
            .to_owned()
    }

    const OWN_SECRET: &str = "Zq3v9Yx1Lm8Rt2Wc7Kp5Hd0Ns4Fb6Gj1Ae9Uo3Iy";

    #[test]
    fn built_in_secrets_work_on_loopback_only() {
        assert!(config(&["--bind", "127.0.0.1:8080"]).validate().is_ok());
        assert!(config(&["--bind", "[::1]:8080"]).validate().is_ok());
        let exposed = config(&["--bind", "0.0.0.0:8080"]).validate();
        assert!(
            exposed.is_err_and(|e| e.to_string().contains("loopback")),
            "the development secrets were accepted on 0.0.0.0"
        );
        let pepper_only = config(&["--bind", "0.0.0.0:8080", "--jwt-secret", OWN_SECRET]);
        assert!(pepper_only.validate().is_err());
        let own = config(&[
            "--bind",
            "0.0.0.0:8080",
            "--jwt-secret",
            OWN_SECRET,
            "--key-pepper",
            OWN_SECRET,
        ]);
        assert!(own.validate().is_ok());
    }

    #[test]
    fn production_refuses_the_examples_secrets() {
        let database = "postgres://voxq:Yt5pQ2xW8rLz@db:5432/voxq";
        let with = |jwt: &str, pepper: &str| {
            config(&[
                "--env",
                "production",
                "--jwt-secret",
                jwt,
                "--key-pepper",
                pepper,
                "--database-url",
                database,
            ])
            .validate()
        };
        assert!(with(OWN_SECRET, OWN_SECRET).is_ok());
        assert!(with(&example("VOXQ_JWT_SECRET"), OWN_SECRET).is_err());
        assert!(with(OWN_SECRET, &example("VOXQ_KEY_PEPPER")).is_err());
        assert!(with(DEV_JWT_SECRET, OWN_SECRET).is_err());
        assert!(with(OWN_SECRET, DEV_KEY_PEPPER).is_err());
    }
}
