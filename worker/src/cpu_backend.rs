//! Which kernels CTranslate2 runs on the CPU.
//!
//! The CTranslate2 library of the PyPI wheel does its int8 matrix products
//! with Intel MKL on Intel CPUs, and MKL dies with SIGFPE inside
//! `mkl_blas_gemm_s8u8s32_compute` on some virtual CPUs (seen on a KVM guest
//! of a Sapphire Rapids host that reports a 480 MB L3 cache). A signal
//! cannot be caught: every job on the worker dies with it. Whether it
//! happens also varied with the machine's load (a start-up check in a child
//! process passed, and the worker then crashed on a job), so no check can
//! rule it out. The worker therefore runs CTranslate2's oneDNN kernels
//! (`CT2_USE_MKL=0`, as it already does on AMD CPUs) unless the operator
//! sets `CT2_USE_MKL` (`1` for MKL where it is known to work).
//!
//! CTranslate2 reads the variable when the library is loaded, before
//! `main`, so setting it here would change nothing: the worker starts
//! itself again (same process id and arguments) with it set.

use std::process::Command;

use anyhow::Context as _;

/// CTranslate2's switch between MKL and oneDNN on Intel CPUs.
const USE_MKL: &str = "CT2_USE_MKL";

/// Replaces this process with one whose CTranslate2 uses oneDNN, unless
/// the operator chose; returns only when nothing needs to change.
pub fn choose() -> anyhow::Result<()> {
    if std::env::var_os(USE_MKL).is_some() {
        return Ok(());
    }
    use std::os::unix::process::CommandExt as _;
    let binary = std::env::current_exe().context("finding the worker's binary")?;
    let error = Command::new(binary)
        .args(std::env::args_os().skip(1))
        .env(USE_MKL, "0")
        .exec();
    Err(error).context("restarting the worker with CT2_USE_MKL=0")
}
