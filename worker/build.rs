//! Where the worker's CTranslate2 comes from: with the default
//! `prebuilt-ctranslate2` feature, the PyPI wheel's library that
//! `ops/fetch-ctranslate2.sh` unpacks, found on `LIBRARY_PATH` as ct2rs
//! finds it, and recorded in the binaries' runtime path so they start
//! without `LD_LIBRARY_PATH`; with `source-ctranslate2`, ct2rs compiles it.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBRARY_PATH");
    let prebuilt = env::var_os("CARGO_FEATURE_PREBUILT_CTRANSLATE2").is_some();
    let source = env::var_os("CARGO_FEATURE_SOURCE_CTRANSLATE2").is_some();
    match (prebuilt, source) {
        (true, true) => fail(
            "the features prebuilt-ctranslate2 (a default) and source-ctranslate2 exclude each \
             other: build from source with --no-default-features --features source-ctranslate2",
        ),
        (false, false) => fail(
            "choose where CTranslate2 comes from: the default feature prebuilt-ctranslate2, \
             or source-ctranslate2",
        ),
        (false, true) => {}
        (true, false) => link_prebuilt(),
    }
}

fn link_prebuilt() {
    let Some(dir) = env::var_os("LIBRARY_PATH")
        .map(|paths| env::split_paths(&paths).collect::<Vec<PathBuf>>())
        .unwrap_or_default()
        .into_iter()
        .find(|dir| dir.join("libctranslate2.so").exists())
    else {
        fail(
            "CTranslate2's library is not on LIBRARY_PATH: run ops/fetch-ctranslate2.sh (it \
             unpacks the PyPI wheel's library into .voxq/ctranslate2), or build CTranslate2 \
             from source with --no-default-features --features source-ctranslate2",
        )
    };
    println!("cargo:rerun-if-changed={}", dir.join("VERSION").display());
    // An installed worker finds the library in ../lib/voxq beside its bin
    // directory (ops/install.sh); one run from the build finds it where it
    // was linked. The library finds its own OpenMP runtime through $ORIGIN.
    println!(
        "cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN/../lib/voxq:{}",
        dir.display()
    );
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(1)
}
