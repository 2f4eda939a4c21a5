//! `voxq migrate` and `voxq admin …`: the operator's commands, run
//! against Postgres directly (no API needed): migrations, accounts, users
//! and API keys.

use anyhow::Context;
use clap::{Args, Subcommand};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;
use voxq_shared::auth::limits::Tier;
use voxq_shared::auth::password;
use voxq_shared::auth::scope::{Role, Scopes};
use voxq_shared::db::{accounts, api_keys};

use crate::error::Result;

// The `create-*` names read naturally on the command line.
#[allow(clippy::enum_variant_names)]
#[derive(Subcommand, Debug)]
pub enum AdminCommand {
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
        /// The password (kept out of the arguments, which others can see).
        #[arg(long = "password-from-env", env = "VOXQ_PASSWORD", hide = true)]
        password: Option<SecretString>,
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

#[derive(Args, Clone, Debug)]
pub struct DbArgs {
    /// Postgres connection string.
    #[arg(
        long,
        env = "VOXQ_DATABASE_URL",
        default_value = voxq_shared::config::DEFAULT_DATABASE_URL,
        hide_env_values = true
    )]
    pub database_url: String,
    /// Secret mixed into API key hashes; must match the API's.
    #[arg(
        long,
        env = "VOXQ_KEY_PEPPER",
        default_value = voxq_shared::config::DEV_KEY_PEPPER,
        hide_env_values = true,
        hide_default_value = true
    )]
    pub key_pepper: SecretString,
}

pub async fn migrate(db: &DbArgs) -> Result<()> {
    connect(db).await?;
    println!("migrations applied");
    Ok(())
}

pub async fn run(command: AdminCommand) -> Result<()> {
    match command {
        AdminCommand::CreateAccount { db, name, tier } => {
            let tier = Tier::parse(&tier).with_context(|| {
                format!("unknown tier {tier:?}: use free, basic, pro or enterprise")
            })?;
            let pool = connect(&db).await?;
            let account = accounts::create(&pool, &name, tier)
                .await
                .context("creating the account")?;
            println!("{}", account.id);
        }
        AdminCommand::CreateUser {
            db,
            account,
            email,
            role,
            min_length,
            password,
        } => {
            let role = Role::parse(&role).with_context(|| format!("unknown role {role:?}"))?;
            let password = match password {
                Some(p) => p.expose_secret().to_owned(),
                None => {
                    let mut line = String::new();
                    std::io::stdin()
                        .read_line(&mut line)
                        .context("reading the password from standard input")?;
                    line.trim_end_matches(['\r', '\n']).to_owned()
                }
            };
            password::check_policy(&password, min_length, &[&email]).map_err(anyhow::Error::msg)?;
            let pool = connect(&db).await?;
            if !accounts::exists(&pool, account)
                .await
                .context("reading accounts")?
            {
                return Err(anyhow::anyhow!("no account {account}").into());
            }
            let hash = password::hash(&password).map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
            let user = voxq_shared::db::users::create(&pool, account, &email, &hash, role)
                .await
                .context("creating the user")?;
            println!("{}", user.id);
        }
        AdminCommand::CreateKey {
            db,
            account,
            name,
            scopes,
        } => {
            let scopes = Scopes::parse(scopes.iter().map(String::as_str))
                .map_err(|s| anyhow::anyhow!("unknown scope {s:?}"))?;
            let pool = connect(&db).await?;
            if !accounts::exists(&pool, account)
                .await
                .context("reading accounts")?
            {
                return Err(anyhow::anyhow!("no account {account}").into());
            }
            let created = create_key(&pool, &db, account, &name, &scopes).await?;
            println!("{}", created.key.plaintext.expose_secret());
        }
    }
    Ok(())
}

/// Connects, creating the database and applying migrations first.
pub async fn connect(db: &DbArgs) -> anyhow::Result<sqlx::PgPool> {
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

pub async fn create_key(
    pool: &sqlx::PgPool,
    db: &DbArgs,
    account: Uuid,
    name: &str,
    scopes: &Scopes,
) -> anyhow::Result<api_keys::CreatedKey> {
    api_keys::create(
        pool,
        &db.key_pepper,
        &api_keys::KeySpec {
            account_id: account,
            name,
            scopes,
            created_by_user: None,
        },
    )
    .await
    .context("creating the key")
}
