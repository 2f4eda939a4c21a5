//! `voxq`: the command-line client and admin tool. Parsing and dispatch
//! are in [`cli`]; this only runs it and turns an error into an exit
//! status.

mod cli;
mod client;
mod commands;
mod error;
mod output;
mod settings;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    match cli::run(cli::Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", e.chain());
            ExitCode::from(e.exit_code())
        }
    }
}
