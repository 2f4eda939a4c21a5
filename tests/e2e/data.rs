//! Job data on request and by retention: inputs and results go, the job
//! and its usage records stay, and no copy lingers in the result cache or
//! the Redis cache.

use crate::common;

use std::time::{Duration, Instant};

use common::{error_code, speech, Options, TestApp};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

async fn input_rows(app: &TestApp, id: Uuid) -> i64 {
    sqlx::query_scalar("select count(*) from job_inputs where job_id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .expect("count")
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_jobs_data_keeps_the_job_and_its_usage() {
    let app = TestApp::spawn().await;
    let (account, key) = app.new_account().await;
    let wav = speech::wav_16k("Please forget what I said.");
    let id = app.submit_ok(&key, wav.clone(), "a.wav").await;
    let job = app.wait_for_job(&key, &id, Duration::from_secs(120)).await;
    assert_eq!(job["status"], "succeeded");
    assert!(!app.get_job_as(&key, &id, "text").await.trim().is_empty());
    let uuid: Uuid = id.parse().expect("uuid");
    let job_before_deletion = app.get_json(&format!("/v1/jobs/{id}"), &key).await;

    let path = format!("/v1/jobs/{id}/data");
    let deleted = app.call(Method::DELETE, &path, Some(&key), None).await;
    assert_eq!(deleted.status(), 200);
    let view: Value = deleted.json().await.expect("json");
    assert!(view["data_deleted_at"].is_string(), "{view}");
    assert!(view.get("result").is_none(), "{view}");
    // Read again (the Redis copy was evicted, not served stale).
    let job = app.get_json(&format!("/v1/jobs/{id}"), &key).await;
    assert_eq!(job["status"], "succeeded");
    assert!(job.get("result").is_none(), "{job}");
    let text = app.get_job_format(&key, &id, "text").await;
    assert_eq!(error_code(text, 410).await, "data_deleted");
    assert_eq!(input_rows(&app, uuid).await, 0);
    let usage = voxq_shared::db::usage::for_job(&app.db, uuid)
        .await
        .expect("usage");
    assert_eq!(usage.len(), 2, "the bill stays: {usage:?}");
    // A reader that fetched the job before the deletion and caches it
    // afterwards (the race a poll can lose) puts nothing back.
    let stale: voxq_shared::job::JobView =
        serde_json::from_value(job_before_deletion).expect("a job view");
    let redis = voxq_shared::cache::connect(common::REDIS_URL)
        .await
        .expect("redis");
    let cache = voxq_shared::cache::JobCache::new(redis, &app.namespace, 3600);
    cache.put_terminal(account, &stale).await.expect("put");
    let job = app.get_json(&format!("/v1/jobs/{id}"), &key).await;
    assert!(
        job.get("result").is_none(),
        "resurrected by a late cache write: {job}"
    );
    // Twice is fine; another account cannot.
    let again = app.call(Method::DELETE, &path, Some(&key), None).await;
    assert_eq!(again.status(), 200);
    let (_, other) = app.new_account().await;
    let theirs = app.call(Method::DELETE, &path, Some(&other), None).await;
    assert_eq!(theirs.status(), 404);

    // No copy in the result cache: the same audio runs again.
    let rerun = app.submit_ok(&key, wav, "a.wav").await;
    let job = app
        .wait_for_job(&key, &rerun, Duration::from_secs(120))
        .await;
    assert_eq!(job["status"], "succeeded");
    let hit: bool = sqlx::query_scalar("select cache_hit from jobs where id = $1")
        .bind(rerun.parse::<Uuid>().expect("uuid"))
        .fetch_one(&app.db)
        .await
        .expect("cache_hit");
    assert!(!hit, "answered from a deleted job's result");

    // A job that has not ended keeps its data until cancelled.
    let queued = app.submit_text(&key, "Still waiting.").await;
    let queued: Value = queued.json().await.expect("json");
    let response = app
        .call(
            Method::DELETE,
            &format!("/v1/jobs/{}/data", queued["id"].as_str().expect("id")),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(error_code(response, 409).await, "job_not_finished");
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_drops_inputs_and_results_that_outlived_it() {
    let app = TestApp::spawn_with(Options {
        api_env: vec![("VOXQ_JANITOR_INTERVAL".into(), "1".into())],
        ..Options::default()
    })
    .await;
    let admin = app.admin_key().await;
    let (account, key) = app.new_account().await;
    let keep = app
        .submit_ok(&key, speech::wav_16k("Keep this one."), "k.wav")
        .await;
    let old = app
        .submit_ok(&key, speech::wav_16k("This one is old."), "o.wav")
        .await;
    for id in [&keep, &old] {
        let job = app.wait_for_job(&key, id, Duration::from_secs(120)).await;
        assert_eq!(job["status"], "succeeded");
    }
    let bad = app
        .call(
            Method::PATCH,
            &format!("/v1/admin/accounts/{account}"),
            Some(&admin),
            Some(json!({ "result_retention_days": 5000 })),
        )
        .await;
    assert_eq!(error_code(bad, 422).await, "invalid_retention");
    let set = app
        .call(
            Method::PATCH,
            &format!("/v1/admin/accounts/{account}"),
            Some(&admin),
            Some(json!({ "input_retention_days": 1, "result_retention_days": 2 })),
        )
        .await;
    let body: Value = set.json().await.expect("json");
    assert_eq!(body["result_retention_days"], 2, "{body}");
    let old_id: Uuid = old.parse().expect("uuid");
    sqlx::query("update jobs set finished_at = now() - interval '3 days' where id = $1")
        .bind(old_id)
        .execute(&app.db)
        .await
        .expect("age the job");

    // A janitor pass that began before the job was aged drops its result
    // but not yet its input: the next pass does.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let job = app.get_json(&format!("/v1/jobs/{old}"), &key).await;
        let inputs = input_rows(&app, old_id).await;
        if job["data_deleted_at"].is_string() && inputs == 0 {
            assert!(job.get("result").is_none(), "{job}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "retention not applied: {job}, {inputs} input rows"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let recent = app.get_json(&format!("/v1/jobs/{keep}"), &key).await;
    assert!(recent["result"].is_object(), "{recent}");
    assert_eq!(input_rows(&app, keep.parse().expect("uuid")).await, 1);
}
