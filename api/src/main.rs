//! The `voxq-api` binary: settings, logging, then the app until a signal.

use clap::Parser;
use voxq_api::{config::ApiConfig, App};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = ApiConfig::parse();
    voxq_shared::telemetry::init(&config.common.log);
    let app = App::build(config).await?;
    app.run(voxq_shared::shutdown::signal()).await
}
