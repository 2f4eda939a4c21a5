//! `voxq demo`: end to end on a running stack, for `ops/setup.sh` and the
//! compose stack's demo image: a demo account and key, a sentence spoken
//! by espeak-ng, submitted, waited for and printed.

use std::time::Duration;

use anyhow::Context;
use voxq_shared::auth::limits::Tier;
use voxq_shared::auth::scope::{Scope, Scopes};
use voxq_shared::db::accounts;

use super::admin::{self, DbArgs};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::settings::Connection;

pub async fn run(db: &DbArgs, connection: Connection, text: &str) -> Result<()> {
    let pool = admin::connect(db).await?;
    let account = accounts::create(&pool, "demo", Tier::Free)
        .await
        .context("creating the demo account")?
        .id;
    let scopes = Scopes::new([Scope::JobsWrite, Scope::JobsRead]);
    let key = admin::create_key(&pool, db, account, "demo", &scopes)
        .await?
        .key
        .plaintext;
    let dir = tempfile::tempdir().map_err(|e| Error::io(&std::env::temp_dir(), e))?;
    let wav = dir.path().join("demo.wav");
    let status = tokio::process::Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "140", "-w"])
        .arg(&wav)
        .arg(text)
        .status()
        .await
        .context("running espeak-ng (install it with ops/setup.sh)")?;
    if !status.success() {
        return Err(anyhow::anyhow!("espeak-ng failed").into());
    }
    let client = Client::new(&connection.with_key(key))?;
    println!("spoken:      {text}");
    let fields = [("language", "en".to_owned())];
    let job = client.submit_file(&wav, &fields, None).await?.id;
    println!("job:         {job}");
    let done = client.wait_for_end(job, Duration::from_secs(300)).await?;
    let transcript = done
        .result
        .as_ref()
        .and_then(|r| r.get("text"))
        .and_then(|t| t.as_str());
    match transcript {
        Some(transcript) => println!("transcript:  {transcript}"),
        None => {
            crate::output::json(&done);
            return Err(Error::JobUnsuccessful {
                id: job,
                status: done.status.as_str().to_owned(),
            });
        }
    }
    Ok(())
}
