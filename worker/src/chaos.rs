//! Fault injection for the tests that crash workers on purpose
//! (`tests/e2e/delivery.rs`): the worker aborts when a job's input carries
//! a marker, as a crashing decoder would (before decoding) or as a worker
//! killed between committing a job's end and what follows it would (after
//! the commit).
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
    /// Chaos testing only: when the worker aborts on such a job: before
    /// decoding its audio, or once its success is committed.
    #[arg(
        long,
        env = "VOXQ_CHAOS_ABORT_AT",
        value_enum,
        default_value_t = AbortAt::Decode,
        hide = cfg!(not(feature = "chaos"))
    )]
    pub chaos_abort_at: AbortAt,
}

/// The point where a job carrying the marker kills its worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AbortAt {
    /// Before its audio is decoded.
    Decode,
    /// After its success is committed, before its quota is settled and its
    /// end announced.
    Commit,
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
            at: self.chaos_abort_at,
            doomed: std::sync::Mutex::default(),
        }
    }
}

/// The faults a worker injects.
#[cfg(feature = "chaos")]
#[derive(Debug)]
pub struct Faults {
    /// Abort when an input contains these bytes.
    abort_on: Option<Vec<u8>>,
    at: AbortAt,
    /// Jobs whose input carried the marker, to abort after their commit.
    doomed: std::sync::Mutex<std::collections::HashSet<uuid::Uuid>>,
}

#[cfg(feature = "chaos")]
impl Faults {
    /// Called with a job's audio just before it is decoded.
    pub fn before_decode(&self, job_id: uuid::Uuid, data: &[u8]) {
        let Some(marker) = &self.abort_on else {
            return;
        };
        if !data.windows(marker.len()).any(|w| w == marker.as_slice()) {
            return;
        }
        match self.at {
            AbortAt::Decode => {
                tracing::error!("chaos: input carries the abort marker; aborting");
                std::process::abort();
            }
            AbortAt::Commit => {
                self.doomed
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(job_id);
            }
        }
    }

    /// Called once a job's success is committed.
    pub fn after_commit(&self, job_id: uuid::Uuid) {
        let doomed = self
            .doomed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&job_id);
        if doomed {
            tracing::error!(%job_id, "chaos: job committed; aborting before what follows");
            std::process::abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(marker: Option<&str>) -> ChaosConfig {
        ChaosConfig {
            chaos_abort_on: marker.map(str::to_owned),
            chaos_abort_at: AbortAt::Decode,
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
        faults.before_decode(uuid::Uuid::nil(), b"RIFF....WAVEdata");
    }

    #[cfg(feature = "chaos")]
    #[test]
    fn aborting_at_the_commit_dooms_only_the_marked_job() {
        let mut config = config(Some("POISON"));
        config.chaos_abort_at = AbortAt::Commit;
        let faults = config.faults();
        let (marked, clean) = (uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(2));
        faults.before_decode(marked, b"RIFF..POISON..data");
        faults.before_decode(clean, b"RIFF....WAVEdata");
        // The clean job's commit goes on (the marked one's would abort).
        faults.after_commit(clean);
        assert!(faults.doomed.lock().expect("lock").contains(&marked));
    }
}
