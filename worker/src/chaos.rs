//! Fault injection for the tests that crash workers on purpose
//! (`tests/e2e/delivery.rs`): the worker aborts, as a crashing decoder
//! would, when a job's input carries a marker.
//!
//! The faults exist only in builds with the `chaos` cargo feature, which
//! `ops/test.sh` turns on (`VOXQ_TEST_FEATURES` in `ops/env.sh`): a
//! production binary has no setting that kills it. A feature rather than a
//! test-only path in every build, because the tests start the real binary
//! and so could only reach such a path through a setting that production
//! would carry too. Without the feature the setting is still read, only to
//! refuse it: a test run against a binary built without the feature fails
//! at start with the reason, instead of waiting for a crash that never
//! comes, and no operator believes a setting is in force that is not.

/// The chaos settings, read as the rest of the configuration.
#[derive(Debug, Clone, clap::Args)]
pub struct ChaosConfig {
    /// Chaos testing only (builds with the `chaos` feature): the worker
    /// aborts (as a crashing decoder would) when a job's input contains
    /// these bytes. Unset in production.
    #[arg(long, env = "VOXQ_CHAOS_ABORT_ON", hide = cfg!(not(feature = "chaos")))]
    pub chaos_abort_on: Option<String>,
}

impl ChaosConfig {
    /// The marker, when one is set; an empty one is none.
    fn abort_on(&self) -> Option<&str> {
        self.chaos_abort_on.as_deref().filter(|m| !m.is_empty())
    }

    /// Fails when a fault is asked for that this build cannot inject.
    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            cfg!(feature = "chaos") || self.abort_on().is_none(),
            "VOXQ_CHAOS_ABORT_ON (--chaos-abort-on) is set, but this voxq-worker was built \
             without the `chaos` feature that injects it (ops/test.sh builds with it)"
        );
        Ok(())
    }

    #[cfg(feature = "chaos")]
    pub fn faults(&self) -> Faults {
        Faults {
            abort_on: self.abort_on().map(|m| m.as_bytes().to_vec()),
        }
    }
}

/// The faults a worker injects.
#[cfg(feature = "chaos")]
#[derive(Debug, Default)]
pub struct Faults {
    /// Abort when an input contains these bytes.
    abort_on: Option<Vec<u8>>,
}

#[cfg(feature = "chaos")]
impl Faults {
    /// Called with a job's audio just before it is decoded.
    pub fn before_decode(&self, data: &[u8]) {
        if let Some(marker) = &self.abort_on {
            if data.windows(marker.len()).any(|w| w == marker.as_slice()) {
                tracing::error!("chaos: input carries the abort marker; aborting");
                std::process::abort();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(marker: Option<&str>) -> ChaosConfig {
        ChaosConfig {
            chaos_abort_on: marker.map(str::to_owned),
        }
    }

    #[test]
    fn no_marker_or_an_empty_one_asks_for_nothing() {
        for marker in [None, Some("")] {
            assert!(config(marker).check().is_ok());
            #[cfg(feature = "chaos")]
            assert!(config(marker).faults().abort_on.is_none());
        }
    }

    // Compiled in both builds (no `cfg` on it), so that CI's one lint pass,
    // with the feature, covers it too.
    #[test]
    fn only_a_build_with_the_feature_takes_a_marker() {
        let checked = config(Some("POISON")).check();
        if cfg!(feature = "chaos") {
            checked.expect("accepted");
        } else {
            let err = checked.expect_err("refused");
            assert!(err.to_string().contains("`chaos` feature"), "{err}");
        }
    }

    #[cfg(feature = "chaos")]
    #[test]
    fn the_faults_carry_the_marker() {
        let faults = config(Some("POISON")).faults();
        assert_eq!(faults.abort_on.as_deref(), Some(&b"POISON"[..]));
        // Inputs without the marker pass untouched.
        faults.before_decode(b"RIFF....WAVEdata");
    }
}
