//! Postgres repositories. Every function that reads or changes a job takes
//! the owning account id, so no query can reach another account's data.

pub mod accounts;
pub mod api_keys;
pub mod audit;
pub mod backlog;
pub mod idempotency;
pub mod jobs;
pub mod outbox;
pub mod result_cache;
pub mod sessions;
pub mod usage;
pub mod users;
pub mod webhooks;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::str::FromStr;
use std::time::Duration;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Pool with bounded connect and acquire waits, so a Postgres outage turns
/// into errors and a failing readiness check, not hung requests.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    let options = PgConnectOptions::from_str(url)?;
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
}

/// Creates the database named in `url` if it does not exist yet.
pub async fn create_database_if_missing(url: &str) -> Result<(), sqlx::Error> {
    let options = PgConnectOptions::from_str(url)?;
    let Some(name) = options.get_database().map(str::to_owned) else {
        return Ok(());
    };
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options.database("postgres"))
        .await?;
    let exists = sqlx::query_scalar!(
        r#"select exists(select 1 from pg_database where datname = $1) as "exists!""#,
        name
    )
    .fetch_one(&admin)
    .await?;
    if !exists {
        // Identifiers cannot be bound; quote it the way Postgres does.
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        // Runtime-checked: the database's name is spliced into the statement.
        sqlx::query(&format!("create database {quoted}"))
            .execute(&admin)
            .await?;
    }
    admin.close().await;
    Ok(())
}

/// Whether Postgres answers a query (readiness).
pub async fn ping(db: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query!("select 1 as one").fetch_one(db).await?;
    Ok(())
}
