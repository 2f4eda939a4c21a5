//! The `voxq` command line, run as the real binary against a test's API:
//! transcribing folders (outputs, skipping what is done, resuming an
//! interrupted run without new jobs, a corrupt file among good ones),
//! jobs, usage, keys, settings precedence, completions, and the admin
//! commands the ops scripts use.

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::cli::{Ran, Voxq};
use common::{speech, tone_wav, wer::wer, TestApp, PEPPER};
use serde_json::Value;
use tokio::io::AsyncBufReadExt;

/// Copies a generated sentence to `path` (espeak-ng names its files).
fn speak_to(path: &Path, sentence: &str) {
    let scratch = tempfile::tempdir().expect("scratch");
    let wav = speech::espeak_wav(scratch.path(), sentence);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("folder");
    }
    std::fs::copy(wav, path).expect("copy speech");
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn json(ran: &Ran) -> Value {
    serde_json::from_str(&ran.stdout).unwrap_or_else(|e| panic!("{e}: {ran:?}"))
}

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
}

/// `voxq jobs list` pages newest first and filters by status; `get`,
/// `watch` and `cancel` on queued jobs (no worker runs); and the API
/// route under `list` keeps to the caller's jobs and its limits.
#[tokio::test(flavor = "multi_thread")]
async fn jobs_are_listed_paged_shown_followed_and_cancelled() {
    let app = TestApp::spawn_without_worker().await;
    let (_, key) = app.new_account().await;
    let (_, other_key) = app.new_account().await;
    let voxq = Voxq::new(&app, &key);
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(app.submit_ok(&key, tone_wav(2.0), "tone.wav").await);
    }

    let table = voxq.run(&["jobs", "list"]).await.ok();
    for id in &ids {
        assert!(table.stdout.contains(id.as_str()), "{table:?}");
    }
    assert!(table.stdout.starts_with("ID") && table.stdout.contains("queued"));

    let page = json(
        &voxq
            .run(&["jobs", "list", "--limit", "2", "--json"])
            .await
            .ok(),
    );
    let listed: Vec<&str> = page["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter_map(|j| j["id"].as_str())
        .collect();
    assert_eq!(
        listed,
        vec![ids[2].as_str(), ids[1].as_str()],
        "newest first: {page}"
    );
    let cursor = page["next_before"].as_str().expect("a next page");
    let rest = json(
        &voxq
            .run(&["jobs", "list", "--limit", "2", "--before", cursor, "--json"])
            .await
            .ok(),
    );
    assert_eq!(rest["jobs"][0]["id"], ids[0].as_str());
    assert!(rest.get("next_before").is_none(), "{rest}");
    let all = json(
        &voxq
            .run(&["jobs", "list", "--limit", "1", "--all", "--json"])
            .await
            .ok(),
    );
    assert_eq!(all["jobs"].as_array().map(Vec::len), Some(3));

    // Following a job until someone cancels it.
    let mut watch = voxq
        .command(&["jobs", "watch", &ids[0]])
        .spawn()
        .expect("watch runs");
    let mut lines = tokio::io::BufReader::new(watch.stdout.take().expect("stdout")).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("a first event")
        .expect("read")
        .expect("a line");
    assert!(first.ends_with("queued"), "{first}");
    let cancelled = voxq.run(&["jobs", "cancel", &ids[0]]).await.ok();
    assert_eq!(cancelled.stdout.trim(), format!("{} cancelled", ids[0]));
    let last = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the cancellation")
        .expect("read")
        .expect("a line");
    assert!(last.ends_with("cancelled"), "{last}");
    let status = tokio::time::timeout(Duration::from_secs(30), watch.wait())
        .await
        .expect("watch ends with the job")
        .expect("status");
    assert_eq!(status.code(), Some(1), "a cancelled job is not a success");

    let cancelled = json(
        &voxq
            .run(&["jobs", "list", "--status", "cancelled", "--json"])
            .await
            .ok(),
    );
    assert_eq!(cancelled["jobs"].as_array().map(Vec::len), Some(1));
    assert_eq!(cancelled["jobs"][0]["id"], ids[0].as_str());

    let job = json(&voxq.run(&["jobs", "get", &ids[1]]).await.ok());
    assert_eq!(job["status"], "queued");
    assert_eq!(
        json(&voxq.run(&["get", &ids[1]]).await.ok())["id"],
        ids[1].as_str()
    );
    let unfinished = voxq.run(&["jobs", "get", &ids[1], "--format", "srt"]).await;
    assert_eq!(unfinished.code, 1);
    assert!(
        unfinished.stderr.contains("job_not_finished"),
        "{unfinished:?}"
    );

    // The route itself: another account sees none of these; limits hold.
    let theirs = app.get_json("/v1/jobs", &other_key).await;
    assert_eq!(theirs["jobs"].as_array().map(Vec::len), Some(0), "{theirs}");
    let foreign = app
        .get_json(&format!("/v1/jobs?before={}", ids[2]), &other_key)
        .await;
    assert_eq!(
        foreign["jobs"].as_array().map(Vec::len),
        Some(0),
        "{foreign}"
    );
    for bad in [
        "limit=0",
        "limit=101",
        "status=done",
        "before=nope",
        "colour=red",
    ] {
        let response = app
            .call(
                reqwest::Method::GET,
                &format!("/v1/jobs?{bad}"),
                Some(&key),
                None,
            )
            .await;
        assert_eq!(response.status(), 400, "{bad}");
    }
}

/// `voxq usage` and `voxq keys create|list|revoke`; a created key works
/// within its scopes and stops at once when revoked.
#[tokio::test(flavor = "multi_thread")]
async fn usage_is_shown_and_keys_are_created_listed_and_revoked() {
    let app = TestApp::spawn_without_worker().await;
    let (_, key) = app.new_account().await;
    let voxq = Voxq::new(&app, &key);
    app.submit_ok(&key, tone_wav(2.0), "tone.wav").await;

    let usage = voxq.run(&["usage"]).await.ok();
    assert!(usage.stdout.contains("tier enterprise"), "{usage:?}");
    assert!(usage.stdout.contains("jobs in flight") && usage.stdout.contains("audio (s)"));
    let today = chrono::Utc::now().date_naive().to_string();
    let report = json(&voxq.run(&["usage", "--json", "--from", &today]).await.ok());
    assert_eq!(
        report["resources"]["concurrent_jobs"]["used"], 1,
        "{report}"
    );
    assert!(report["daily"].is_array(), "{report}");

    let created = voxq
        .run(&[
            "keys",
            "create",
            "--name",
            "made-by-cli",
            "--scopes",
            "jobs:read",
        ])
        .await
        .ok();
    let new_key = created.stdout.trim().to_owned();
    assert!(
        new_key.starts_with("voxq_") && !new_key.contains('\n'),
        "{created:?}"
    );
    let listed = json(&voxq.run(&["keys", "list", "--json"]).await.ok());
    let made = listed["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["name"] == "made-by-cli")
        .cloned()
        .expect("the new key is listed");
    assert_eq!(made["scopes"], serde_json::json!(["jobs:read"]));
    let table = voxq.run(&["keys", "list"]).await.ok();
    assert!(
        table.stdout.contains("made-by-cli") && table.stdout.contains("active"),
        "{table:?}"
    );

    let as_new = Voxq::new(&app, &new_key);
    as_new.run(&["jobs", "list"]).await.ok();
    let refused = as_new.run(&["usage"]).await;
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.contains("403"), "{refused:?}");

    let id = made["id"].as_str().expect("id");
    let revoked = voxq.run(&["keys", "revoke", id]).await.ok();
    assert!(revoked.stdout.contains("revoked"), "{revoked:?}");
    let after = as_new.run(&["jobs", "list"]).await;
    assert_eq!(after.code, 1);
    assert!(after.stderr.contains("401"), "{after:?}");
    let table = voxq.run(&["keys", "list"]).await.ok();
    assert!(table.stdout.contains("revoked"), "{table:?}");
}

/// Flags beat environment variables, which beat the profile file; the
/// profile is chosen by --profile or VOXQ_PROFILE; a missing key or an
/// unknown profile is a settings error (exit 2). Completions print.
#[tokio::test(flavor = "multi_thread")]
async fn settings_come_from_flags_then_environment_then_the_profile_file() {
    let app = TestApp::spawn_without_worker().await;
    let (_, key) = app.new_account().await;
    let dead = "http://127.0.0.1:9";
    let config_dir = tempfile::tempdir().expect("tempdir");
    let config = config_dir.path().join("voxq.toml");
    std::fs::write(
        &config,
        format!(
            "[default]\nurl = \"{dead}\"\napi_key = \"{key}\"\n\n[work]\nurl = \"{}\"\napi_key = \"{key}\"\n",
            app.api_url
        ),
    )
    .expect("profile file");
    let config_arg = config.display().to_string();
    let with_file = || Voxq::bare().env("VOXQ_CONFIG", &config_arg);

    // The default profile's URL is dead: it is the one used.
    let ran = with_file().run(&["usage"]).await;
    assert_eq!(ran.code, 1, "{ran:?}");
    assert!(ran.stderr.contains("127.0.0.1:9"), "{ran:?}");
    with_file().run(&["--profile", "work", "usage"]).await.ok();
    with_file()
        .env("VOXQ_PROFILE", "work")
        .run(&["usage"])
        .await
        .ok();
    // The environment's URL over the profile's; the key from the profile.
    with_file()
        .env("VOXQ_URL", &app.api_url)
        .run(&["usage"])
        .await
        .ok();
    with_file()
        .env("VOXQ_API_URL", &app.api_url)
        .run(&["usage"])
        .await
        .ok();
    // The flag over the environment.
    let ran = with_file()
        .env("VOXQ_URL", &app.api_url)
        .run(&["usage", "--url", dead])
        .await;
    assert_eq!(ran.code, 1, "{ran:?}");
    // The environment's key over the profile's, and the flag's over both.
    let ran = with_file()
        .env("VOXQ_PROFILE", "work")
        .env("VOXQ_API_KEY", "voxq_not-a-key")
        .run(&["usage"])
        .await;
    assert!(ran.code == 1 && ran.stderr.contains("401"), "{ran:?}");
    with_file()
        .env("VOXQ_PROFILE", "work")
        .env("VOXQ_API_KEY", "voxq_not-a-key")
        .run(&["usage", "--api-key", &key])
        .await
        .ok();

    let ran = with_file().run(&["--profile", "nope", "usage"]).await;
    assert_eq!(ran.code, 2, "{ran:?}");
    assert!(ran.stderr.contains("no profile [nope]"), "{ran:?}");
    let ran = Voxq::bare()
        .env("VOXQ_URL", &app.api_url)
        .run(&["usage"])
        .await;
    assert_eq!(ran.code, 2, "{ran:?}");
    assert!(ran.stderr.contains("--api-key"), "{ran:?}");

    // The default place of the profile file, under HOME.
    let home = Voxq::bare();
    let file = home.home().join(".config/voxq/config.toml");
    std::fs::create_dir_all(file.parent().expect("folder")).expect("folder");
    std::fs::write(
        &file,
        format!(
            "[default]\nurl = \"{}\"\napi_key = \"{key}\"\n",
            app.api_url
        ),
    )
    .expect("profile file");
    home.run(&["usage"]).await.ok();

    for shell in ["bash", "zsh", "fish"] {
        let script = Voxq::bare().run(&["completions", shell]).await.ok();
        assert!(
            script.stdout.contains("transcribe") && script.stdout.contains("jobs"),
            "{shell}: {script:?}"
        );
    }
    let help = Voxq::bare().run(&["--help"]).await.ok();
    assert!(
        help.stdout.contains("config.toml") && help.stdout.contains("VOXQ_API_KEY"),
        "{help:?}"
    );
}

/// The admin commands and `voxq submit`, as ops/setup.sh, the compose
/// smoke test and the benchmarks run them.
#[tokio::test(flavor = "multi_thread")]
async fn the_admin_commands_and_submit_work_as_the_ops_scripts_use_them() {
    let app = TestApp::spawn_without_worker().await;
    let db = || {
        Voxq::bare()
            .env("VOXQ_DATABASE_URL", &app.database_url())
            .env("VOXQ_KEY_PEPPER", PEPPER)
    };
    let migrated = db().run(&["migrate"]).await.ok();
    assert_eq!(migrated.stdout.trim(), "migrations applied");
    let account = db()
        .run(&["admin", "create-account", "--name", "ops", "--tier", "pro"])
        .await
        .ok()
        .stdout
        .trim()
        .to_owned();
    uuid::Uuid::parse_str(&account).expect("an account id");
    let key = db()
        .run(&[
            "admin",
            "create-key",
            "--account",
            &account,
            "--name",
            "ops",
        ])
        .await
        .ok()
        .stdout
        .trim()
        .to_owned();
    assert!(key.starts_with("voxq_"), "{key}");
    let user = db()
        .env("VOXQ_PASSWORD", "correct horse battery staple 42")
        .run(&[
            "admin",
            "create-user",
            "--account",
            &account,
            "--email",
            "ops@example.com",
        ])
        .await
        .ok();
    uuid::Uuid::parse_str(user.stdout.trim()).expect("a user id");
    let refused = db()
        .env("VOXQ_PASSWORD", "short")
        .run(&[
            "admin",
            "create-user",
            "--account",
            &account,
            "--email",
            "x@example.com",
        ])
        .await;
    assert_eq!(refused.code, 1, "{refused:?}");

    let dir = tempfile::tempdir().expect("tempdir");
    let wav = dir.path().join("tone.wav");
    std::fs::write(&wav, tone_wav(2.0)).expect("wav");
    // As ops/bench/batching.sh calls it: --api-key and VOXQ_API_URL.
    let submitted = Voxq::bare()
        .env("VOXQ_API_URL", &app.api_url)
        .run(&[
            "submit",
            "--api-key",
            &key,
            "--language",
            "en",
            &wav.display().to_string(),
        ])
        .await
        .ok();
    let answer = json(&submitted);
    assert_eq!(answer["status"], "queued", "{answer}");
    assert!(answer["id"].is_string());
}
