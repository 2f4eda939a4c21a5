//! JSON logs, one line per event, with span fields (request id, job id)
//! attached so every line can be traced back to its request or job. Servers
//! log on stdout; commands that print a result there log on stderr.

use tracing_subscriber::{fmt, prelude::*, EnvFilter};

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Stdout,
    /// For commands whose stdout is their result.
    Stderr,
}

pub fn init(filter: &str) {
    init_to(filter, Output::Stdout);
}

pub fn init_to(filter: &str, output: Output) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let layer = fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true);
    let _ = match output {
        Output::Stdout => tracing_subscriber::registry()
            .with(filter)
            .with(layer)
            .try_init(),
        Output::Stderr => tracing_subscriber::registry()
            .with(filter)
            .with(layer.with_writer(std::io::stderr))
            .try_init(),
    };
}
