//! An installed voxq: `ops/install.sh` puts the binaries (and the prebuilt
//! CTranslate2 library the worker links) under a prefix, and the worker
//! transcribes from there with no `LD_LIBRARY_PATH`, finding the library
//! beside itself rather than in the build tree.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::{bin_dir, model_dir, speech, wer};

fn needs_prebuilt_ctranslate2(worker: &Path) -> bool {
    let dynamic = Command::new("readelf")
        .arg("-d")
        .arg(worker)
        .output()
        .expect("readelf runs");
    String::from_utf8_lossy(&dynamic.stdout).contains("libctranslate2")
}

#[test]
fn an_installed_worker_transcribes_with_the_library_installed_beside_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let prefix = tempfile::tempdir().expect("prefix");
    let target = bin_dir().parent().expect("target directory").to_path_buf();
    let status = Command::new(root.join("ops/install.sh"))
        .arg(prefix.path())
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .expect("ops/install.sh runs");
    assert!(status.success(), "ops/install.sh failed");
    let worker = prefix.path().join("bin/voxq-worker");

    if needs_prebuilt_ctranslate2(&worker) {
        // Resolved through $ORIGIN/../lib/voxq, ahead of the build tree.
        let ldd = Command::new("ldd").arg(&worker).output().expect("ldd runs");
        let ldd = String::from_utf8_lossy(&ldd.stdout);
        let line = ldd
            .lines()
            .find(|l| l.contains("libctranslate2"))
            .expect("libctranslate2 is listed");
        let prefix = prefix.path().to_str().expect("utf-8 path");
        assert!(
            line.contains(prefix) && line.contains("/lib/voxq/libctranslate2"),
            "{ldd}"
        );
    }

    let scratch = tempfile::tempdir().expect("scratch");
    let audio = speech::espeak_wav(scratch.path(), speech::SENTENCES[1]);
    let output = Command::new(&worker)
        .env_remove("LD_LIBRARY_PATH")
        .env("VOXQ_ENGINE", "ct2-whisper")
        .args(["--model-dir"])
        .arg(model_dir())
        .args([
            "--threads",
            "1",
            "--log",
            "warn",
            "transcribe",
            "--language",
            "en",
        ])
        .arg(&audio)
        .output()
        .expect("the installed worker runs");
    assert!(
        output.status.success(),
        "{}: {}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let text = printed["result"]["text"].as_str().expect("text");
    assert!(wer::wer(speech::SENTENCES[1], text) < 0.3, "{text}");
}
