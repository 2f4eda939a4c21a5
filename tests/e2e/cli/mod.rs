//! The `voxq` command line, run as the real binary against a test's API,
//! one file per group of commands: `transcribe` (outputs, skipping what
//! is done, resuming an interrupted run without new jobs, a corrupt file
//! among good ones), `jobs`, `account` (usage and keys), `settings`
//! (precedence, profiles, completions), `outages` (an API briefly
//! unreachable) and `admin` (the commands the ops scripts run). Here: what
//! they share.

mod account;
mod admin;
mod jobs;
mod outages;
mod settings;
mod transcribe;

use std::path::Path;

use crate::common::cli::Ran;
use crate::common::speech;
use serde_json::Value;

/// Copies a generated sentence to `path` (espeak-ng names its files).
pub fn speak_to(path: &Path, sentence: &str) {
    let scratch = tempfile::tempdir().expect("scratch");
    let wav = speech::espeak_wav(scratch.path(), sentence);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("folder");
    }
    std::fs::copy(wav, path).expect("copy speech");
}

/// A written output, which must exist.
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A run's stdout as JSON (`--json` and the like).
pub fn json(ran: &Ran) -> Value {
    serde_json::from_str(&ran.stdout).unwrap_or_else(|e| panic!("{e}: {ran:?}"))
}
