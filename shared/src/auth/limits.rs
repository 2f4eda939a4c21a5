//! Account tiers and the limits that come with them.
//!
//! Defaults are built in; an operator replaces any of them with a TOML file
//! (`VOXQ_LIMITS_FILE`), and an admin overrides single limits per account.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Free,
    Basic,
    Pro,
    Enterprise,
}

impl Tier {
    pub const ALL: [Tier; 4] = [Tier::Free, Tier::Basic, Tier::Pro, Tier::Enterprise];

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Free => "free",
            Tier::Basic => "basic",
            Tier::Pro => "pro",
            Tier::Enterprise => "enterprise",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == value)
    }
}

/// Everything an account may use. Daily quotas reset at 00:00 UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Jobs submitted per UTC day.
    pub requests_per_day: u64,
    /// Seconds of audio per UTC day.
    pub audio_seconds_per_day: u64,
    /// Characters of text per UTC day.
    pub text_chars_per_day: u64,
    /// Worker seconds per UTC day.
    pub processing_seconds_per_day: u64,
    /// Jobs queued or running at once.
    pub concurrent_jobs: u64,
    /// Sustained API requests per minute, per key or user.
    pub requests_per_minute: u64,
    /// Requests that may arrive at once on top of the sustained rate.
    pub burst: u64,
}

/// An admin's per-account changes: each present field replaces the tier's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsOverride {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_day: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_seconds_per_day: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_chars_per_day: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processing_seconds_per_day: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrent_jobs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u64>,
}

impl Limits {
    pub fn with_override(self, o: &LimitsOverride) -> Limits {
        Limits {
            requests_per_day: o.requests_per_day.unwrap_or(self.requests_per_day),
            audio_seconds_per_day: o
                .audio_seconds_per_day
                .unwrap_or(self.audio_seconds_per_day),
            text_chars_per_day: o.text_chars_per_day.unwrap_or(self.text_chars_per_day),
            processing_seconds_per_day: o
                .processing_seconds_per_day
                .unwrap_or(self.processing_seconds_per_day),
            concurrent_jobs: o.concurrent_jobs.unwrap_or(self.concurrent_jobs),
            requests_per_minute: o.requests_per_minute.unwrap_or(self.requests_per_minute),
            burst: o.burst.unwrap_or(self.burst),
        }
    }

    fn validate(&self) -> Result<(), String> {
        if self.requests_per_minute == 0 || self.burst == 0 {
            return Err("requests_per_minute and burst must be at least 1".into());
        }
        Ok(())
    }
}

impl LimitsOverride {
    pub fn validate(&self) -> Result<(), String> {
        if self.requests_per_minute == Some(0) || self.burst == Some(0) {
            return Err("requests_per_minute and burst must be at least 1".into());
        }
        Ok(())
    }
}

/// Limits per tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierLimits(BTreeMap<Tier, Limits>);

impl Default for TierLimits {
    fn default() -> Self {
        let tier = |rpd, audio, chars, processing, concurrent, rpm, burst| Limits {
            requests_per_day: rpd,
            audio_seconds_per_day: audio,
            text_chars_per_day: chars,
            processing_seconds_per_day: processing,
            concurrent_jobs: concurrent,
            requests_per_minute: rpm,
            burst,
        };
        Self(BTreeMap::from([
            (Tier::Free, tier(200, 3_600, 100_000, 3_600, 2, 60, 20)),
            (
                Tier::Basic,
                tier(5_000, 36_000, 2_000_000, 36_000, 8, 300, 60),
            ),
            (
                Tier::Pro,
                tier(50_000, 360_000, 20_000_000, 360_000, 32, 1_200, 200),
            ),
            (
                Tier::Enterprise,
                tier(
                    1_000_000,
                    3_600_000,
                    200_000_000,
                    3_600_000,
                    256,
                    12_000,
                    2_000,
                ),
            ),
        ]))
    }
}

impl TierLimits {
    /// Reads a TOML file with one table per tier (`[free]`, `[pro]`, …); a
    /// tier missing from the file keeps its built-in limits.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        Self::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn from_toml(text: &str) -> Result<Self, String> {
        let given: BTreeMap<Tier, Limits> = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut limits = Self::default();
        for (tier, l) in given {
            l.validate()
                .map_err(|e| format!("[{}]: {e}", tier.as_str()))?;
            limits.0.insert(tier, l);
        }
        Ok(limits)
    }

    pub fn get(&self, tier: Tier) -> Limits {
        // Every tier is present: Default fills them and load only replaces.
        self.0.get(&tier).copied().unwrap_or(Limits {
            requests_per_day: 0,
            audio_seconds_per_day: 0,
            text_chars_per_day: 0,
            processing_seconds_per_day: 0,
            concurrent_jobs: 0,
            requests_per_minute: 1,
            burst: 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_replaces_only_the_tiers_it_names_and_overrides_apply_per_field() {
        let limits = TierLimits::from_toml(
            "[free]\nrequests_per_day = 5\naudio_seconds_per_day = 60\ntext_chars_per_day = 100\n\
             processing_seconds_per_day = 60\nconcurrent_jobs = 1\nrequests_per_minute = 10\nburst = 2\n",
        )
        .expect("valid");
        assert_eq!(limits.get(Tier::Free).requests_per_day, 5);
        assert_eq!(limits.get(Tier::Pro), TierLimits::default().get(Tier::Pro));
        let o = LimitsOverride {
            concurrent_jobs: Some(9),
            ..Default::default()
        };
        let l = limits.get(Tier::Free).with_override(&o);
        assert_eq!((l.concurrent_jobs, l.requests_per_day), (9, 5));
    }

    #[test]
    fn the_example_file_parses() {
        let text = include_str!("../../../ops/limits.example.toml");
        let limits = TierLimits::from_toml(text).expect("example parses");
        assert_eq!(
            limits.get(Tier::Free),
            TierLimits::default().get(Tier::Free)
        );
    }

    #[test]
    fn unknown_tiers_fields_and_zero_rates_are_refused() {
        assert!(TierLimits::from_toml("[gold]\nburst = 1\n").is_err());
        assert!(TierLimits::from_toml("[free]\nburst = 1\n").is_err());
        let zero = "[free]\nrequests_per_day = 5\naudio_seconds_per_day = 60\ntext_chars_per_day = 100\n\
             processing_seconds_per_day = 60\nconcurrent_jobs = 1\nrequests_per_minute = 0\nburst = 2\n";
        assert!(TierLimits::from_toml(zero).is_err());
    }
}
