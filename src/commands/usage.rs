//! `voxq usage`: today's quotas (used, reserved by jobs in flight,
//! limit, remaining) and, for a date range, usage per day.

use chrono::NaiveDate;
use clap::Args;
use serde_json::Value;

use crate::client::Client;
use crate::error::Result;
use crate::output::{self, Table};

#[derive(Args, Debug)]
pub struct UsageArgs {
    /// Also list usage per day from this day (YYYY-MM-DD, UTC).
    #[arg(long, value_name = "DATE")]
    pub from: Option<NaiveDate>,
    /// Last day of the daily list [default: today].
    #[arg(long, value_name = "DATE")]
    pub to: Option<NaiveDate>,
    /// Print the API's JSON.
    #[arg(long)]
    pub json: bool,
}

/// The resources of `resources` in the API's answer, in the order shown.
const RESOURCES: &[(&str, &str)] = &[
    ("requests", "requests"),
    ("audio_seconds", "audio (s)"),
    ("text_chars", "text (chars)"),
    ("processing_seconds", "processing (s)"),
    ("concurrent_jobs", "jobs in flight"),
];

pub async fn run(client: &Client, args: UsageArgs) -> Result<()> {
    let report = client.usage(args.from, args.to).await?;
    if args.json {
        output::json(&report);
        return Ok(());
    }
    let text = |pointer: &str| {
        report
            .pointer(pointer)
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| v.to_string())
            })
            .unwrap_or_else(|| "-".into())
    };
    println!(
        "{} (UTC), tier {}; quotas reset {}",
        text("/day"),
        text("/tier"),
        output::time_field(report.pointer("/resets_at").unwrap_or(&Value::Null))
    );
    let mut table = Table::new(["RESOURCE", "USED", "RESERVED", "LIMIT", "REMAINING"]);
    for (field, label) in RESOURCES {
        let resource = |name: &str| {
            report
                .pointer(&format!("/resources/{field}/{name}"))
                .map(number)
                .unwrap_or_else(|| "-".into())
        };
        table.row(vec![
            (*label).to_owned(),
            resource("used"),
            resource("reserved"),
            resource("limit"),
            resource("remaining"),
        ]);
    }
    table.print();
    println!(
        "rate limit: {} requests a minute, bursts of {}",
        text("/rate_limit/requests_per_minute"),
        text("/rate_limit/burst")
    );
    if let Some(days) = report.get("daily").and_then(Value::as_array) {
        println!();
        let mut table = Table::new([
            "DAY",
            "REQUESTS",
            "AUDIO (S)",
            "TEXT (CHARS)",
            "PROCESSING (S)",
        ]);
        for day in days {
            let cell = |name: &str| day.get(name).map(number).unwrap_or_else(|| "-".into());
            table.row(vec![
                day.get("day")
                    .and_then(Value::as_str)
                    .unwrap_or("-")
                    .to_owned(),
                cell("requests"),
                cell("audio_seconds"),
                cell("text_chars"),
                cell("processing_seconds"),
            ]);
        }
        table.print();
    }
    Ok(())
}

/// Whole numbers without a fraction, others to one decimal.
fn number(value: &Value) -> String {
    match value.as_f64() {
        Some(n) if n.fract() == 0.0 => format!("{n:.0}"),
        Some(n) => format!("{n:.1}"),
        None => "-".into(),
    }
}
