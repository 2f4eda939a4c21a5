//! Test harness: each `TestApp` is its own world — a fresh database, its own
//! Redis key prefix and RabbitMQ queue names (one namespace), its own API
//! (in-process where the test allows) and `voxq-worker` processes on free
//! ports. Logs are silent unless `TEST_LOG` is set.
//!
//! [`spawning`] starts and tears down a world, [`client`] talks to it as a
//! client would, [`cli`] runs the `voxq` binary against it, [`fixtures`]
//! sets up what tests need beside it; the rest are tools of particular
//! tests (speech, proxies, webhook receivers, WER).

pub mod cli;
pub mod client;
pub mod fixtures;
pub mod long_speech;
pub mod proxy;
pub mod receiver;
pub mod spawning;
pub mod speech;
pub mod wer;

pub use client::*;
pub use fixtures::*;
pub use spawning::*;
