//! `voxq`: the command-line client and admin tool.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use uuid::Uuid;
use voxq_shared::auth::limits::Tier;
use voxq_shared::auth::password;
use voxq_shared::auth::scope::{Role, Scope, Scopes};
use voxq_shared::db::{accounts, api_keys};

/// voxq: speech-to-text jobs on a queue. Submit audio, wait for transcripts,
/// and administer accounts and API keys.
#[derive(Parser)]
#[command(name = "voxq", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply database migrations (creates the database if missing).
    Migrate(DbArgs),
    /// Accounts and API keys (talks to Postgres directly).
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Upload an audio file as a transcription job.
    Submit {
        #[command(flatten)]
        api: ApiArgs,
        /// WAV, MP3, FLAC or Ogg Vorbis file.
        file: PathBuf,
        /// ISO 639-1 code of the spoken language.
        #[arg(long)]
        language: Option<String>,
        /// Wait for the job to finish and print it.
        #[arg(long)]
        wait: bool,
        /// Seconds to wait with --wait.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
    /// Print a job's status and result.
    Get {
        #[command(flatten)]
        api: ApiArgs,
        id: Uuid,
    },
    /// End to end on a running stack: create a demo account and key,
    /// synthesise a sentence with espeak-ng, submit it, wait and print the
    /// transcript.
    Demo {
        #[command(flatten)]
        db: DbArgs,
        /// voxq-api base URL.
        #[arg(long, env = "VOXQ_API_URL", default_value = "http://127.0.0.1:8080")]
        api_url: String,
        /// Sentence to speak.
        #[arg(
            long,
            default_value = "Thank you very much for your help yesterday. The children are playing in the park after school."
        )]
        text: String,
    },
}

// The `create-*` names read naturally on the command line.
#[allow(clippy::enum_variant_names)]
#[derive(Subcommand)]
enum AdminCommand {
    /// Create an account and print its id.
    CreateAccount {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        name: String,
        /// free, basic, pro or enterprise.
        #[arg(long, default_value = "free")]
        tier: String,
    },
    /// Create a user who logs in with email and password (POST
    /// /v1/auth/login). The password is read from VOXQ_PASSWORD or, if
    /// unset, from the first line of standard input.
    CreateUser {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        account: Uuid,
        #[arg(long)]
        email: String,
        /// member, or admin for operators of this deployment.
        #[arg(long, default_value = "member")]
        role: String,
        /// Shortest accepted password; keep it equal to the API's.
        #[arg(long, env = "VOXQ_PASSWORD_MIN_LENGTH", default_value_t = 15)]
        min_length: usize,
    },
    /// Create an API key for an account and print it. It is shown only once.
    CreateKey {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        account: Uuid,
        #[arg(long, default_value = "")]
        name: String,
        /// Comma-separated scopes: jobs:write, jobs:read, usage:read,
        /// keys:manage, webhooks:manage, admin.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "jobs:write,jobs:read,usage:read,keys:manage,webhooks:manage"
        )]
        scopes: Vec<String>,
    },
}

#[derive(Args, Clone)]
struct DbArgs {
    /// Postgres connection string.
    #[arg(
        long,
        env = "VOXQ_DATABASE_URL",
        default_value = voxq_shared::config::DEFAULT_DATABASE_URL
    )]
    database_url: String,
    /// Secret mixed into API key hashes; must match the API's.
    #[arg(
        long,
        env = "VOXQ_KEY_PEPPER",
        default_value = voxq_shared::config::DEV_KEY_PEPPER,
        hide_env_values = true
    )]
    key_pepper: SecretString,
}

#[derive(Args, Clone)]
struct ApiArgs {
    /// voxq-api base URL.
    #[arg(long, env = "VOXQ_API_URL", default_value = "http://127.0.0.1:8080")]
    api_url: String,
    /// API key (`voxq_…`).
    #[arg(long, env = "VOXQ_API_KEY", hide_env_values = true)]
    api_key: SecretString,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Migrate(db) => {
            connect(&db).await?;
            println!("migrations applied");
        }
        Command::Admin(AdminCommand::CreateAccount { db, name, tier }) => {
            let tier = Tier::parse(&tier).with_context(|| {
                format!("unknown tier {tier:?}: use free, basic, pro or enterprise")
            })?;
            let pool = connect(&db).await?;
            println!("{}", accounts::create(&pool, &name, tier).await?.id);
        }
        Command::Admin(AdminCommand::CreateUser {
            db,
            account,
            email,
            role,
            min_length,
        }) => {
            let role = Role::parse(&role).with_context(|| format!("unknown role {role:?}"))?;
            let password = match std::env::var("VOXQ_PASSWORD") {
                Ok(p) => p,
                Err(_) => {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line.trim_end_matches(['\r', '\n']).to_owned()
                }
            };
            password::check_policy(&password, min_length, &[&email]).map_err(anyhow::Error::msg)?;
            let pool = connect(&db).await?;
            if !accounts::exists(&pool, account).await? {
                bail!("no account {account}");
            }
            let hash = password::hash(&password).map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
            let user = voxq_shared::db::users::create(&pool, account, &email, &hash, role).await?;
            println!("{}", user.id);
        }
        Command::Admin(AdminCommand::CreateKey {
            db,
            account,
            name,
            scopes,
        }) => {
            let scopes = Scopes::parse(scopes.iter().map(String::as_str))
                .map_err(|s| anyhow::anyhow!("unknown scope {s:?}"))?;
            let pool = connect(&db).await?;
            if !accounts::exists(&pool, account).await? {
                bail!("no account {account}");
            }
            let created = create_key(&pool, &db, account, &name, &scopes).await?;
            println!("{}", created.key.plaintext.expose_secret());
        }
        Command::Submit {
            api,
            file,
            language,
            wait,
            timeout,
        } => {
            let client = Client::new(api);
            let job = client.submit(&file, language.as_deref()).await?;
            if wait {
                let id = job_id(&job)?;
                print_json(&client.wait(id, Duration::from_secs(timeout)).await?);
            } else {
                print_json(&job);
            }
        }
        Command::Get { api, id } => print_json(&Client::new(api).get(id).await?),
        Command::Demo { db, api_url, text } => demo(db, api_url, &text).await?,
    }
    Ok(())
}

async fn connect(db: &DbArgs) -> anyhow::Result<sqlx::PgPool> {
    voxq_shared::db::create_database_if_missing(&db.database_url)
        .await
        .context("creating the database")?;
    let pool = voxq_shared::db::connect(&db.database_url, 2)
        .await
        .context("connecting to Postgres")?;
    voxq_shared::db::MIGRATOR
        .run(&pool)
        .await
        .context("running migrations")?;
    Ok(pool)
}

fn print_json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

fn job_id(job: &Value) -> anyhow::Result<Uuid> {
    job.get("id")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
        .context("the API answered without a job id")
}

struct Client {
    http: reqwest::Client,
    api: ApiArgs,
}

impl Client {
    fn new(api: ApiArgs) -> Self {
        Self {
            http: reqwest::Client::new(),
            api,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api.api_url.trim_end_matches('/'))
    }

    /// Sends the request; a 429 is waited out (its `Retry-After`, a few
    /// times) when the request can be sent again.
    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let mut request = request.bearer_auth(self.api.api_key.expose_secret());
        let mut tries = 0;
        loop {
            tries += 1;
            let again = request.try_clone();
            let response = request.send().await.context("calling voxq-api")?;
            let status = response.status();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if status.is_success() {
                return Ok(body);
            }
            if let (reqwest::StatusCode::TOO_MANY_REQUESTS, Some(seconds), Some(next)) =
                (status, retry_after, again)
            {
                if tries < 5 && seconds <= 60 {
                    tokio::time::sleep(Duration::from_secs(seconds.max(1))).await;
                    request = next;
                    continue;
                }
            }
            let message = body
                .pointer("/error/message")
                .and_then(Value::as_str)
                .unwrap_or("no details");
            bail!("voxq-api answered {status}: {message}");
        }
    }

    async fn submit(
        &self,
        file: &std::path::Path,
        language: Option<&str>,
    ) -> anyhow::Result<Value> {
        let bytes = tokio::fs::read(file)
            .await
            .with_context(|| format!("reading {}", file.display()))?;
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "audio".into());
        let mut form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(name),
        );
        if let Some(language) = language {
            form = form.text("language", language.to_owned());
        }
        self.send(self.http.post(self.url("/v1/jobs")).multipart(form))
            .await
    }

    async fn get(&self, id: Uuid) -> anyhow::Result<Value> {
        self.send(self.http.get(self.url(&format!("/v1/jobs/{id}"))))
            .await
    }

    async fn wait(&self, id: Uuid, timeout: Duration) -> anyhow::Result<Value> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(250);
        loop {
            let job = self.get(id).await?;
            let status = job.get("status").and_then(Value::as_str).unwrap_or("");
            if matches!(status, "succeeded" | "failed" | "cancelled") {
                return Ok(job);
            }
            if started.elapsed() > timeout {
                bail!("job {id} still {status} after {} s", timeout.as_secs());
            }
            // Quick at first, for short jobs; then no faster than a key's
            // rate limit allows over a long job.
            tokio::time::sleep(pause).await;
            pause = (pause * 3 / 2).min(Duration::from_secs(2));
        }
    }
}

async fn create_key(
    pool: &sqlx::PgPool,
    db: &DbArgs,
    account: Uuid,
    name: &str,
    scopes: &Scopes,
) -> anyhow::Result<api_keys::CreatedKey> {
    Ok(api_keys::create(
        pool,
        &db.key_pepper,
        &api_keys::KeySpec {
            account_id: account,
            name,
            scopes,
            created_by_user: None,
        },
    )
    .await?)
}

async fn demo(db: DbArgs, api_url: String, text: &str) -> anyhow::Result<()> {
    let pool = connect(&db).await?;
    let account = accounts::create(&pool, "demo", Tier::Free).await?.id;
    let scopes = Scopes::new([Scope::JobsWrite, Scope::JobsRead]);
    let key = create_key(&pool, &db, account, "demo", &scopes).await?.key;
    let dir = std::env::temp_dir().join(format!("voxq-demo-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    let wav = dir.join("demo.wav");
    let status = tokio::process::Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "140", "-w"])
        .arg(&wav)
        .arg(text)
        .status()
        .await
        .context("running espeak-ng (install it with ops/setup.sh)")?;
    if !status.success() {
        bail!("espeak-ng failed");
    }
    let client = Client::new(ApiArgs {
        api_url,
        api_key: key.plaintext,
    });
    println!("spoken:      {text}");
    let job = client.submit(&wav, Some("en")).await?;
    let id = job_id(&job)?;
    println!("job:         {id}");
    let done = client.wait(id, Duration::from_secs(300)).await?;
    let _ = std::fs::remove_dir_all(&dir);
    match done.pointer("/result/text").and_then(Value::as_str) {
        Some(transcript) => println!("transcript:  {transcript}"),
        None => {
            print_json(&done);
            bail!("the job did not succeed");
        }
    }
    Ok(())
}
