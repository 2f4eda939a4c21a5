//! `voxq completions SHELL`: the shell's completion script, from the
//! same definitions that parse the command line.

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

pub fn run(shell: Shell) {
    clap_complete::generate(shell, &mut Cli::command(), "voxq", &mut std::io::stdout());
}
