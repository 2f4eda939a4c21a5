//! One module per command (or group of subcommands): its arguments and
//! what it does.

pub mod admin;
pub mod completions;
pub mod demo;
pub mod jobs;
pub mod keys;
pub mod submit;
pub mod transcribe;
pub mod usage;
