//! `voxq` rides out an API that is briefly unreachable: reads and keyed
//! submissions are sent again (a submission's `Idempotency-Key` makes that
//! safe), and nothing is submitted twice.

use crate::common;

use std::time::Duration;

use common::proxy::Proxy;
use common::{cli::Voxq, tone_wav, TestApp};

#[tokio::test(flavor = "multi_thread")]
async fn reads_and_submissions_are_sent_again_when_the_api_comes_back() {
    let app = TestApp::spawn_without_worker().await;
    let (account, key) = app.new_account().await;
    let proxy = Proxy::start(app.api_url.trim_start_matches("http://")).await;
    let voxq = Voxq::new(&app, &key).env("VOXQ_URL", &format!("http://{}", proxy.addr()));
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("tone.wav"), tone_wav(2.0)).expect("wav");
    let folder = dir.path().display().to_string();

    proxy.cut();
    let submit = voxq
        .command(&["transcribe", &folder, "--no-wait"])
        .spawn()
        .expect("voxq runs");
    let list = voxq
        .command(&["jobs", "list", "--json"])
        .spawn()
        .expect("voxq runs");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    proxy.restore();
    for child in [submit, list] {
        let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("voxq ends")
            .expect("output");
        assert!(output.status.success(), "{output:?}");
    }
    assert_eq!(app.job_count(account).await, 1);
}
