//! Daily quotas and concurrent-job slots: what is metered, and who owns
//! each part of keeping count. Redis enforces the limits atomically
//! ([`counters`]); Postgres holds the truth they are rebuilt from
//! ([`ledger`]); a submission reserves through [`admission`], which holds
//! the two together; a worker settles or grows its job's reservation on
//! the [`Quotas`] counters.

pub mod admission;
pub mod counters;
pub mod ledger;

pub use counters::Quotas;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::job::UsageMetric;

/// Metered amounts, in integer units Redis can add exactly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amounts {
    #[serde(default)]
    pub audio_ms: u64,
    #[serde(default)]
    pub text_chars: u64,
    #[serde(default)]
    pub processing_ms: u64,
}

impl Amounts {
    /// From sums Postgres computed over usage records (each quantity rounded
    /// up on its own, as [`Self::from_usage`] does); a negative sum, which
    /// no record can make, counts as none.
    pub fn from_sums(audio_ms: i64, text_chars: i64, processing_ms: i64) -> Self {
        let to_u64 = |v: i64| u64::try_from(v).unwrap_or(0);
        Self {
            audio_ms: to_u64(audio_ms),
            text_chars: to_u64(text_chars),
            processing_ms: to_u64(processing_ms),
        }
    }

    /// Measured usage as recorded in Postgres, in the same rounding the
    /// rebuild uses (each quantity rounded up on its own).
    pub fn from_usage(usage: &[(UsageMetric, f64)]) -> Self {
        let mut a = Amounts::default();
        for (metric, quantity) in usage {
            match metric {
                UsageMetric::AudioSeconds => a.audio_ms += seconds_to_ms(*quantity),
                UsageMetric::ProcessingSeconds => a.processing_ms += seconds_to_ms(*quantity),
                UsageMetric::TextChars => a.text_chars += quantity.max(0.0).ceil() as u64,
            }
        }
        a
    }
}

pub fn seconds_to_ms(seconds: f64) -> u64 {
    (seconds.max(0.0) * 1000.0).ceil() as u64
}

/// The quota day of an instant: days start at 00:00 UTC.
pub fn today() -> NaiveDate {
    chrono::Utc::now().date_naive()
}

/// Seconds from now until the next 00:00 UTC, when daily quotas reset.
pub fn seconds_until_reset() -> u64 {
    let now = chrono::Utc::now();
    let tomorrow = now.date_naive().succ_opt().unwrap_or(now.date_naive());
    let reset = tomorrow
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or(now);
    // Rounded up: retrying after this many seconds is never too early.
    let millis = (reset - now).num_milliseconds().max(1000);
    (millis as u64).div_ceil(1000)
}

/// A limited resource, named as clients see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    Requests,
    AudioSeconds,
    TextChars,
    ProcessingSeconds,
    ConcurrentJobs,
}

impl Resource {
    pub const DAILY: [Resource; 4] = [
        Resource::Requests,
        Resource::AudioSeconds,
        Resource::TextChars,
        Resource::ProcessingSeconds,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Requests => "requests",
            Resource::AudioSeconds => "audio_seconds",
            Resource::TextChars => "text_chars",
            Resource::ProcessingSeconds => "processing_seconds",
            Resource::ConcurrentJobs => "concurrent_jobs",
        }
    }

    pub(crate) fn parse(value: &str) -> Option<Self> {
        [
            Resource::Requests,
            Resource::AudioSeconds,
            Resource::TextChars,
            Resource::ProcessingSeconds,
            Resource::ConcurrentJobs,
        ]
        .into_iter()
        .find(|r| r.as_str() == value)
    }
}

/// A job's reservation: the day it counts against and what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    pub job_id: Uuid,
    pub account_id: Uuid,
    pub day: NaiveDate,
    pub amounts: Amounts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReserveOutcome {
    /// Reserved; the account now has `in_flight` unfinished jobs.
    Reserved {
        in_flight: u64,
    },
    Exceeded(Resource),
    /// Redis has no counters for this account and day: rebuild, then retry.
    NeedsRebuild,
}

/// Counters for one account and day, as the usage endpoint shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub requests: u64,
    pub used: Amounts,
    pub reserved: Amounts,
    /// Unfinished jobs with their reservations (any day).
    pub inflight: Vec<Reservation>,
}

/// What growing a reservation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grown {
    /// It now reserves the new amount (or already did).
    Yes,
    /// The account's limit leaves no room for it.
    OverLimit,
    /// Redis has no counters for it: rebuild them from Postgres, then try
    /// again.
    NeedsRebuild,
}
