//! `voxq completions SHELL`: the shell's completion script, from the
//! same definitions that parse the command line.
//!
//! The caller passes the command-line definition in (`Cli::command()`),
//! so that this module does not import `cli`, which imports it.

use clap_complete::Shell;

/// Writes `command`'s completion script for `shell` to standard output.
pub fn run(shell: Shell, mut command: clap::Command) {
    clap_complete::generate(shell, &mut command, "voxq", &mut std::io::stdout());
}
