//! `voxq migrate`, `voxq admin …` and `voxq submit`, as the ops scripts
//! run them.

use crate::common;

use super::json;
use common::{cli::Voxq, tone_wav, TestApp, PEPPER};

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
