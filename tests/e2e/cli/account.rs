//! `voxq usage` and `voxq keys create|list|revoke`.

use crate::common;

use super::json;
use common::{cli::Voxq, tone_wav, TestApp};

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
