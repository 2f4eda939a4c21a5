//! `voxq jobs list|get|watch|cancel`, and the `GET /v1/jobs` route under
//! `list`.

use crate::common;

use std::time::Duration;

use super::json;
use common::{cli::Voxq, tone_wav, TestApp};
use tokio::io::AsyncBufReadExt;

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
