//! Telling the user how a batch goes, on stderr: a progress bar with a
//! line above it per file when stderr is a terminal, the same lines alone
//! when it is not (a log, a pipe, CI), where a bar's redraws would be noise.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

pub struct Reporter {
    /// `None`: plain lines.
    bar: Option<ProgressBar>,
}

impl Reporter {
    pub fn new(total: usize) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total as u64);
            let style = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self { bar }
    }

    /// A line about one file; `finished` moves the bar on.
    pub fn line(&self, text: &str, finished: bool) {
        match &self.bar {
            Some(bar) => {
                bar.println(text);
                if finished {
                    bar.inc(1);
                }
            }
            None => eprintln!("{text}"),
        }
    }

    /// What the batch is doing now (the bar's message; nothing in plain
    /// mode, whose lines already say it).
    pub fn status(&self, text: String) {
        if let Some(bar) = &self.bar {
            bar.set_message(text);
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
