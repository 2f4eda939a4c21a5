//! Settings every voxq process reads from its environment.
//!
//! Each binary flattens [`CommonConfig`] into its own clap parser, so
//! `--help` lists every variable and bad values stop the process at start-up.

use clap::Args;
use secrecy::SecretString;

/// Where a development machine's Postgres is (`ops/stack.sh` sets it up).
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres:postgres@127.0.0.1:5432/voxq";

/// The development pepper; `VOXQ_ENV=production` refuses it.
pub const DEV_KEY_PEPPER: &str = "voxq-development-pepper-change-me";

/// Where the stores are, and the namespace that keeps deployments (and tests)
/// apart on shared Redis and RabbitMQ servers.
#[derive(Clone, Args)]
pub struct CommonConfig {
    /// Postgres connection string.
    #[arg(
        long,
        env = "VOXQ_DATABASE_URL",
        default_value = DEFAULT_DATABASE_URL
    )]
    pub database_url: String,

    /// Redis connection string.
    #[arg(
        long,
        env = "VOXQ_REDIS_URL",
        default_value = "redis://127.0.0.1:6379/0"
    )]
    pub redis_url: String,

    /// RabbitMQ connection string.
    #[arg(
        long,
        env = "VOXQ_AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    pub amqp_url: String,

    /// Prefix for RabbitMQ exchange and queue names and Redis keys. Two
    /// deployments sharing a broker or Redis must use different namespaces.
    #[arg(long, env = "VOXQ_NAMESPACE", default_value = "voxq", value_parser = parse_namespace)]
    pub namespace: String,

    /// Secret mixed into every API key hash. Changing it invalidates every
    /// issued key; keep it out of the database's backups.
    #[arg(
        long,
        env = "VOXQ_KEY_PEPPER",
        default_value = DEV_KEY_PEPPER,
        hide_env_values = true
    )]
    pub key_pepper: SecretString,

    /// Log level filter (tracing-subscriber syntax, e.g. `info,voxq_api=debug`).
    #[arg(long, env = "VOXQ_LOG", default_value = "info")]
    pub log: String,
}

/// Connection strings carry passwords: `Debug` shows them without.
impl std::fmt::Debug for CommonConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommonConfig")
            .field("database_url", &without_password(&self.database_url))
            .field("redis_url", &without_password(&self.redis_url))
            .field("amqp_url", &without_password(&self.amqp_url))
            .field("namespace", &self.namespace)
            .field("key_pepper", &self.key_pepper)
            .field("log", &self.log)
            .finish()
    }
}

/// The URL with its password replaced by `***`; text that is not a URL is
/// not shown at all, since it may be a secret in another form.
pub fn without_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                // Only fails for URLs that cannot have a password.
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "<not a URL>".to_owned(),
    }
}

fn parse_namespace(value: &str) -> Result<String, String> {
    let ok = !value.is_empty()
        && value.len() <= 48
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(value.to_owned())
    } else {
        Err("namespace must be 1-48 characters of [A-Za-z0-9_-]".into())
    }
}

#[cfg(test)]
mod tests {
    use super::parse_namespace;

    #[test]
    fn debug_output_holds_no_password_or_pepper() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            common: super::CommonConfig,
        }
        let cli = Cli::parse_from([
            "voxq",
            "--database-url",
            "postgres://voxq:pg-s3cret@db:5432/voxq",
            "--redis-url",
            "redis://:redis-s3cret@cache:6379/0",
            "--amqp-url",
            "amqp://voxq:mq-s3cret@broker:5672/%2f",
            "--key-pepper",
            "pepper-s3cret",
        ]);
        let shown = format!("{:?}", cli.common);
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains("postgres://voxq:***@db:5432/voxq"),
            "{shown}"
        );
    }

    #[test]
    fn namespace_rejects_separators_and_empty_values() {
        assert!(parse_namespace("voxq").is_ok());
        assert!(parse_namespace("t_0a1b-2").is_ok());
        assert!(parse_namespace("").is_err());
        assert!(parse_namespace("a.b").is_err());
        assert!(parse_namespace("a:b").is_err());
    }
}
