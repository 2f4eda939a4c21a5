//! JSON logs on stdout, one line per event, with span fields (request id,
//! job id) attached so every line can be traced back to its request or job.

use tracing_subscriber::{fmt, prelude::*, EnvFilter};

pub fn init(filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(
            fmt::layer()
                .json()
                .with_current_span(true)
                .with_span_list(false)
                .flatten_event(true),
        )
        .try_init();
}
