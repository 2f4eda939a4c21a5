//! The command line: the top-level parser, its commands, and which
//! settings each needs before it runs.

use clap::{CommandFactory, Parser, Subcommand};
use clap_complete::Shell;

use crate::client::Client;
use crate::commands::admin::{self, AdminCommand, DbArgs};
use crate::commands::jobs::{self, GetArgs, JobsCommand};
use crate::commands::keys::{self, KeysCommand};
use crate::commands::submit::{self, SubmitArgs};
use crate::commands::transcribe::{self, TranscribeArgs};
use crate::commands::usage::{self, UsageArgs};
use crate::commands::{completions, demo};
use crate::error::Result;
use crate::settings::{Connection, GlobalArgs};

/// voxq: speech to text on a queue.
///
/// Transcribe audio files and folders, follow and manage jobs, and read
/// usage and API keys through a voxq-api; administer accounts directly in
/// its database.
#[derive(Parser, Debug)]
#[command(name = "voxq", version, after_long_help = MANUAL)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

const MANUAL: &str = "\
Connection: the voxq-api URL and the API key come from --url and
--api-key, else VOXQ_URL and VOXQ_API_KEY, else the profile file, else
(the URL) http://127.0.0.1:8080. The profile file is
~/.config/voxq/config.toml (or $XDG_CONFIG_HOME/voxq/config.toml, or
VOXQ_CONFIG), one table per profile; [default] is used unless --profile
or VOXQ_PROFILE names another:

  [default]
  url = \"http://127.0.0.1:8080\"
  api_key = \"voxq_...\"

  [staging]
  url = \"https://voxq.staging.example.com\"
  api_key = \"voxq_...\"

Keep the file private (chmod 600): voxq warns when others can read it.

Exit status: 0 on success; 1 when the API refused, a job failed, or any
file of a batch failed; 2 for bad arguments or settings.

Examples:
  voxq transcribe interviews/ --format txt,srt --out transcripts/
  voxq jobs list --status running
  voxq jobs watch 01936f0e-...
  voxq usage --from 2026-01-01
  voxq completions bash > ~/.local/share/bash-completion/completions/voxq";

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Transcribe audio files, folders and glob patterns into .txt, .srt,
    /// .vtt or .json files, several at a time; re-running resumes.
    Transcribe(TranscribeArgs),
    /// List, show, follow and cancel jobs.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Today's quotas and usage, and usage per day for a date range.
    Usage(UsageArgs),
    /// List, create and revoke the account's API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Print a shell completion script (bash: `voxq completions bash >
    /// ~/.local/share/bash-completion/completions/voxq`; zsh: into a folder
    /// of $fpath as `_voxq`; fish: ~/.config/fish/completions/voxq.fish).
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Upload one audio file as a job and print the answer as JSON (with
    /// --wait, the ended job): for scripts.
    Submit(SubmitArgs),
    /// The same as `voxq jobs get`.
    #[command(hide = true)]
    Get(GetArgs),
    /// Apply database migrations (creates the database if missing).
    Migrate(DbArgs),
    /// Accounts, users and API keys, written to Postgres directly (for
    /// operators; needs no API).
    #[command(subcommand)]
    Admin(AdminCommand),
    /// End to end on a running stack: create a demo account and key,
    /// speak a sentence with espeak-ng, submit it, wait and print the
    /// transcript.
    Demo {
        #[command(flatten)]
        db: DbArgs,
        /// Sentence to speak.
        #[arg(
            long,
            default_value = "Thank you very much for your help yesterday. The children are playing in the park after school."
        )]
        text: String,
    },
}

pub async fn run(cli: Cli) -> Result<()> {
    // Settings are resolved only for commands that call the API, so that a
    // broken profile file never stands in the way of the admin commands.
    let client = || -> Result<Client> { Client::new(&Connection::resolve(&cli.global)?) };
    match cli.command {
        Command::Transcribe(args) => transcribe::run(&client()?, args).await,
        Command::Jobs(command) => jobs::run(&client()?, command).await,
        Command::Get(args) => jobs::run(&client()?, JobsCommand::Get(args)).await,
        Command::Usage(args) => usage::run(&client()?, args).await,
        Command::Keys(command) => keys::run(&client()?, command).await,
        Command::Submit(args) => submit::run(&client()?, args).await,
        Command::Completions { shell } => {
            completions::run(shell, Cli::command());
            Ok(())
        }
        Command::Migrate(db) => admin::migrate(&db).await,
        Command::Admin(command) => admin::run(command).await,
        Command::Demo { db, text } => {
            demo::run(&db, Connection::resolve(&cli.global)?, &text).await
        }
    }
}
