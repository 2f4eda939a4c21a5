//! A start-up check of CTranslate2's CPU backend, run in a child process.
//!
//! The CTranslate2 library of the PyPI wheel does its int8 matrix products
//! with Intel MKL, and MKL dies with SIGFPE inside
//! `mkl_blas_gemm_s8u8s32_compute` on some virtual CPUs (seen on a KVM guest
//! of a Sapphire Rapids host that reports a 480 MB L3 cache). A signal
//! cannot be caught: every job on the worker would die with it, again and
//! again. So before loading models the worker runs one small inference in a
//! child process; if that fails and the same inference on CTranslate2's
//! oneDNN kernels does not, the worker starts itself again (same process id, same arguments) with CTranslate2 on its
//! oneDNN kernels (`CT2_USE_MKL=0`, which the library reads when it is
//! loaded, before `main`), and says so. An operator's own `CT2_USE_MKL` is
//! always left as it is.

use std::process::Command;

use anyhow::Context as _;

use crate::config::{DeviceArg, EngineKind, ModelSpec, WorkerConfig};
use crate::engine::{TranscribeOptions, TranslateRequest};

/// Set in the child's environment: run the check and exit.
const PROBE: &str = "VOXQ_CPU_BACKEND_PROBE";
/// CTranslate2's switch between MKL and oneDNN on Intel CPUs.
const USE_MKL: &str = "CT2_USE_MKL";

/// Whether this process is the probing child.
pub fn is_probe() -> bool {
    std::env::var_os(PROBE).is_some()
}

/// The model the check runs: a CTranslate2 Whisper model on the CPU if
/// there is one (its decoder runs the products that crash), else a
/// CTranslate2 translation model.
fn probed_model(config: &WorkerConfig) -> anyhow::Result<Option<ModelSpec>> {
    let specs = config.model_specs()?;
    let on_cpu = |kind: EngineKind| {
        specs
            .iter()
            .find(|spec| spec.device == DeviceArg::Cpu && spec.engine == kind)
            .cloned()
    };
    Ok(on_cpu(EngineKind::Ct2Whisper).or_else(|| on_cpu(EngineKind::Ct2Translate)))
}

/// In the child: one small inference with the model; returns if it ran.
pub fn probe(config: &WorkerConfig) -> anyhow::Result<()> {
    let Some(spec) = probed_model(config)? else {
        return Ok(());
    };
    // As the worker will load it: the crash can depend on the threads per
    // replica.
    let engine = crate::load_engine(&spec, config.lanes.len().max(1))?;
    match spec.engine {
        EngineKind::Ct2Translate => {
            engine.translate_batch(&[TranslateRequest {
                text: "Hello.".into(),
                source: None,
                // A language the model says it produces, so that the
                // request reaches the model instead of failing on its
                // language.
                target: spec
                    .target_languages
                    .first()
                    .or_else(|| engine.info().languages.first())
                    .cloned()
                    .unwrap_or_else(|| "de".into()),
            }])?;
        }
        _ => {
            // Two seconds of a tone: encoding and decoding run the int8
            // products.
            let audio: Vec<f32> = (0..32_000)
                .map(|i| (i as f32 * 440.0 * std::f32::consts::TAU / 16_000.0).sin() * 0.1)
                .collect();
            engine.transcribe(&audio, &TranscribeOptions::default())?;
        }
    }
    Ok(())
}

/// Runs the check in a child process, with CTranslate2's kernels chosen by
/// `use_mkl` (`None`: its own choice).
fn probe_child(use_mkl: Option<&str>) -> anyhow::Result<std::process::ExitStatus> {
    let binary = std::env::current_exe().context("finding the worker's binary")?;
    let mut child = Command::new(binary);
    child
        .args(std::env::args_os().skip(1))
        .env(PROBE, "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    if let Some(value) = use_mkl {
        child.env(USE_MKL, value);
    }
    child.status().context("starting the CPU backend check")
}

/// In the worker, before it loads models: runs the check, and if it fails
/// (a signal, or any other way) while the same check on oneDNN passes,
/// replaces this process with one that does not use MKL.
pub fn choose(config: &WorkerConfig) -> anyhow::Result<()> {
    if std::env::var_os(USE_MKL).is_some() || probed_model(config)?.is_none() {
        return Ok(());
    }
    let default = probe_child(None)?;
    if default.success() {
        return Ok(());
    }
    // A failure that is not the kernels' (a missing model, say) fails the
    // same way on oneDNN, and is left for loading to report properly.
    let without_mkl = probe_child(Some("0"))?;
    if !without_mkl.success() {
        tracing::warn!(%default, %without_mkl, "the CPU backend check failed either way");
        return Ok(());
    }
    use std::os::unix::process::CommandExt as _;
    tracing::warn!(
        %default,
        "CTranslate2's MKL kernels fail on this CPU; restarting on its oneDNN kernels (CT2_USE_MKL=0)"
    );
    let binary = std::env::current_exe().context("finding the worker's binary")?;
    let error = Command::new(binary)
        .args(std::env::args_os().skip(1))
        .env(USE_MKL, "0")
        .exec();
    Err(error).context("restarting the worker without MKL")
}
