//! The end-to-end tests, one module per area, in one binary: every test
//! starts the real `voxq-api` and `voxq-worker` processes, and one binary
//! links the test harness once instead of once per file.

mod common;

mod api_fuzz;
mod api_surface;
mod audio_url;
mod auth_matrix;
mod bad_input;
mod chaos;
mod cli;
mod data;
mod decoding;
mod delivery;
mod docs;
mod edge;
mod engines;
mod hostile_receivers;
mod install;
mod isolation;
mod key_authority;
mod libretranslate;
mod long_form;
mod metrics;
mod openai;
mod outages;
mod quotas;
mod redelivery;
mod scheduling;
mod sessions;
mod throttling;
mod transcription;
mod uploads;
mod webhooks;
