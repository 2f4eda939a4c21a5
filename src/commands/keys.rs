//! `voxq keys …`: the API keys of the caller's account. A credential
//! sees and acts on keys whose scopes it holds itself (the API's rule).

use clap::{Args, Subcommand};
use serde_json::Value;
use uuid::Uuid;

use crate::client::Client;
use crate::error::Result;
use crate::output::{self, Table};

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// List the account's keys, revoked ones included (never their secrets).
    List {
        /// Print the API's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create a key and print it on stdout (alone, for
    /// `export VOXQ_API_KEY=$(voxq keys create …)`). It is shown only once.
    Create(CreateArgs),
    /// Revoke a key at once, on every API instance.
    Revoke {
        /// The key's id (`voxq keys list`).
        id: Uuid,
        /// Print the revoked key's JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// A name to recognise it by.
    #[arg(long, default_value = "")]
    pub name: String,
    /// Comma-separated scopes (jobs:write, jobs:read, usage:read,
    /// keys:manage, webhooks:manage), none beyond your own
    /// [default: all of your own].
    #[arg(long, value_delimiter = ',')]
    pub scopes: Vec<String>,
    /// Print the API's JSON (the key in its `key` field) instead.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(client: &Client, command: KeysCommand) -> Result<()> {
    match command {
        KeysCommand::List { json } => {
            let list = client.keys().await?;
            if json {
                output::json(&list);
                return Ok(());
            }
            let mut table = Table::new([
                "ID",
                "NAME",
                "PREFIX",
                "SCOPES",
                "CREATED",
                "LAST USED",
                "STATE",
            ]);
            for key in list
                .get("keys")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let field = |name: &str| key.get(name).cloned().unwrap_or(Value::Null);
                let text = |name: &str| field(name).as_str().unwrap_or("-").to_owned();
                let scopes: Vec<&str> = key
                    .get("scopes")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                table.row(vec![
                    text("id"),
                    if text("name").is_empty() {
                        "-".into()
                    } else {
                        text("name")
                    },
                    text("prefix"),
                    scopes.join(","),
                    output::time_field(&field("created_at")),
                    output::time_field(&field("last_used_at")),
                    state(key),
                ]);
            }
            table.print();
        }
        KeysCommand::Create(args) => {
            let created = client.create_key(&args.name, &args.scopes).await?;
            if args.json {
                output::json(&created);
                return Ok(());
            }
            let key = created
                .get("key")
                .and_then(Value::as_str)
                .unwrap_or_default();
            println!("{key}");
            eprintln!(
                "created key {} ({}); it is shown only this once",
                created.get("id").and_then(Value::as_str).unwrap_or("?"),
                created
                    .get("scopes")
                    .map(Value::to_string)
                    .unwrap_or_default()
            );
        }
        KeysCommand::Revoke { id, json } => {
            let revoked = client.revoke_key(id).await?;
            if json {
                output::json(&revoked);
            } else {
                println!("{id} revoked");
            }
        }
    }
    Ok(())
}

/// `active`, `revoked` or `expires …` (a rotated key's grace period).
fn state(key: &Value) -> String {
    if key.get("revoked_at").is_some_and(|v| !v.is_null()) {
        return "revoked".into();
    }
    match key.get("expires_at") {
        Some(at) if !at.is_null() => format!("expires {}", output::time_field(at)),
        _ => "active".into(),
    }
}
