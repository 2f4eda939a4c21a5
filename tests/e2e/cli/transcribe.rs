//! `voxq transcribe`: transcripts of a folder beside the audio and under
//! `--out`, skipping what is done, a corrupt file among good ones, and
//! an interrupted run picked up without new jobs; and `voxq demo`.

use crate::common;

use super::{json, read, speak_to};
use common::{cli::Voxq, speech, wer::wer, TestApp, PEPPER};
use serde_json::Value;

/// `voxq transcribe` of a folder: transcripts beside the audio (the
/// spoken words), a corrupt file reported while the others succeed; then
/// everything skipped and nothing submitted; then other formats under
/// --out, answered by the jobs already paid for.
#[tokio::test(flavor = "multi_thread")]
async fn transcribe_writes_transcripts_skips_what_is_done_and_reports_a_corrupt_file() {
    let app = TestApp::spawn().await;
    let (account, key) = app.new_account().await;
    let voxq = Voxq::new(&app, &key);
    let dir = tempfile::tempdir().expect("tempdir");
    let calls = dir.path().join("calls");
    speak_to(&calls.join("coffee.wav"), speech::SENTENCES[0]);
    speak_to(&calls.join("sub/thanks.wav"), speech::SENTENCES[1]);
    std::fs::write(calls.join("notes.txt"), "not audio").expect("notes");
    std::fs::write(
        calls.join("broken.wav"),
        b"RIFF\x10\0\0\0WAVEjunk, not audio",
    )
    .expect("junk");
    let calls_arg = calls.display().to_string();

    let ran = voxq
        .run(&["transcribe", &calls_arg, "--format", "txt,srt", "-j", "3"])
        .await;
    assert_eq!(ran.code, 1, "the corrupt file fails the run: {ran:?}");
    assert!(
        ran.stderr.contains("failed") && ran.stderr.contains("broken.wav"),
        "{ran:?}"
    );
    assert!(
        ran.stderr.contains("2 transcribed, 0 skipped, 1 failed"),
        "{ran:?}"
    );
    let coffee = read(&calls.join("coffee.txt"));
    assert!(wer(speech::SENTENCES[0], &coffee) < 0.3, "{coffee}");
    let thanks = read(&calls.join("sub/thanks.txt"));
    assert!(wer(speech::SENTENCES[1], &thanks) < 0.3, "{thanks}");
    let srt = read(&calls.join("sub/thanks.srt"));
    assert!(srt.starts_with("1\n") && srt.contains(" --> "), "{srt}");
    assert!(!calls.join("notes.srt").exists() && !calls.join("broken.txt").exists());
    assert_eq!(app.job_count(account).await, 2);

    std::fs::remove_file(calls.join("broken.wav")).expect("remove junk");
    let ran = voxq
        .run(&["transcribe", &calls_arg, "--format", "srt,txt"])
        .await
        .ok();
    assert!(
        ran.stderr.contains("0 transcribed, 2 skipped, 0 failed"),
        "{ran:?}"
    );
    assert_eq!(
        app.job_count(account).await,
        2,
        "a second run submits nothing"
    );

    // Other formats are new outputs, but the same audio and options: the
    // API answers with the jobs already done.
    let out = dir.path().join("out");
    let out_arg = out.display().to_string();
    let ran = voxq
        .run(&[
            "transcribe",
            &calls_arg,
            "-f",
            "json",
            "-f",
            "vtt",
            "--out",
            &out_arg,
        ])
        .await
        .ok();
    assert_eq!(
        ran.stderr.matches("submitted earlier").count(),
        2,
        "{ran:?}"
    );
    assert_eq!(app.job_count(account).await, 2);
    let result: Value = serde_json::from_str(&read(&out.join("sub/thanks.json"))).expect("json");
    assert!(
        result["segments"].as_array().is_some_and(|s| !s.is_empty()),
        "{result}"
    );
    assert!(wer(speech::SENTENCES[1], result["text"].as_str().unwrap_or("")) < 0.3);
    assert!(read(&out.join("coffee.vtt")).starts_with("WEBVTT"));
    assert!(!out.join("notes.json").exists());

    // Another option shapes another result: a new job.
    let ran = voxq
        .run(&[
            "transcribe",
            &calls.join("coffee.wav").display().to_string(),
            "--out",
            &out_arg,
            "--language",
            "en",
        ])
        .await
        .ok();
    assert!(!ran.stderr.contains("submitted earlier"), "{ran:?}");
    assert_eq!(app.job_count(account).await, 3);
}

/// An interrupted run (here: submitted with --no-wait while no worker
/// runs) is picked up by the next: the same jobs, none twice; and the
/// jobs commands on the finished jobs.
#[tokio::test(flavor = "multi_thread")]
async fn a_rerun_picks_up_the_jobs_an_interrupted_run_submitted() {
    let mut app = TestApp::spawn_without_worker().await;
    let (account, key) = app.new_account().await;
    let voxq = Voxq::new(&app, &key);
    let dir = tempfile::tempdir().expect("tempdir");
    speak_to(&dir.path().join("a.wav"), speech::SENTENCES[2]);
    speak_to(&dir.path().join("b.wav"), speech::SENTENCES[3]);
    let pattern = format!("{}/*.wav", dir.path().display());

    let first = voxq.run(&["transcribe", &pattern, "--no-wait"]).await.ok();
    let mut ids: Vec<&str> = first
        .stdout
        .lines()
        .filter_map(|l| l.split('\t').next())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids.len(), 2, "{first:?}");
    assert_eq!(app.job_count(account).await, 2);

    let again = voxq.run(&["transcribe", &pattern, "--no-wait"]).await.ok();
    let mut same: Vec<&str> = again
        .stdout
        .lines()
        .filter_map(|l| l.split('\t').next())
        .collect();
    same.sort_unstable();
    assert_eq!(same, ids, "{again:?}");
    assert_eq!(again.stderr.matches("submitted earlier").count(), 2);
    assert_eq!(app.job_count(account).await, 2);

    app.start_worker();
    let done = voxq.run(&["transcribe", &pattern]).await.ok();
    for id in &ids {
        assert!(
            done.stderr
                .contains(&format!("job {id}, submitted earlier")),
            "{done:?}"
        );
    }
    assert_eq!(app.job_count(account).await, 2, "no job was paid for twice");
    let a = read(&dir.path().join("a.txt"));
    assert!(wer(speech::SENTENCES[2], &a) < 0.3, "{a}");

    let watched = voxq.run(&["jobs", "watch", ids[0]]).await.ok();
    assert!(
        watched.stdout.trim_end().ends_with("succeeded"),
        "{watched:?}"
    );
    let text = voxq
        .run(&["jobs", "get", ids[0], "--format", "text"])
        .await
        .ok();
    assert!(
        wer(speech::SENTENCES[2], &text.stdout) < 0.3
            || wer(speech::SENTENCES[3], &text.stdout) < 0.3,
        "{text:?}"
    );
    let job = json(&voxq.run(&["jobs", "get", ids[1]]).await.ok());
    assert_eq!(job["status"], "succeeded");
    assert!(job["result"]["text"].is_string(), "{job}");

    // `voxq demo`, as ops/setup.sh and the compose stack's demo run it
    // (the latter with the older VOXQ_API_URL).
    let demo = Voxq::bare()
        .env("VOXQ_DATABASE_URL", &app.database_url())
        .env("VOXQ_KEY_PEPPER", PEPPER)
        .env("VOXQ_API_URL", &app.api_url)
        .run(&["demo", "--text", speech::SENTENCES[1]])
        .await
        .ok();
    let transcript = demo
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("transcript:"))
        .unwrap_or_else(|| panic!("{demo:?}"));
    assert!(wer(speech::SENTENCES[1], transcript) < 0.3, "{demo:?}");
}
