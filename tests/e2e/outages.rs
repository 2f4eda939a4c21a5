//! Store outages, each through a proxy only this test's processes use:
//! Postgres going away mid-processing loses and double-bills nothing;
//! without Redis, submissions fail closed (the quota cannot be counted)
//! while results are still read from Postgres, and all resumes once it is
//! back.

use crate::common;

use std::time::Duration;

use common::proxy::Proxy;
use common::{error_code, speech, Options, TestApp};

#[tokio::test(flavor = "multi_thread")]
async fn a_postgres_outage_mid_processing_loses_nothing_and_bills_once() {
    let postgres = Proxy::start("127.0.0.1:5432").await;
    let app = TestApp::spawn_with(Options {
        postgres_addr: Some(postgres.addr()),
        ..Options::default()
    })
    .await;
    let (_, key) = app.new_account().await;
    let mut ids = Vec::new();
    for i in 0..6 {
        let wav = speech::wav_16k(&format!("Invoice number {i} is paid in full."));
        ids.push(app.submit_ok(&key, wav, "a.wav").await);
    }
    // Down while those jobs are claimed, run and committed.
    postgres.cut();
    tokio::time::sleep(Duration::from_secs(4)).await;
    postgres.restore();
    for id in &ids {
        let job = app.wait_for_job(&key, id, Duration::from_secs(180)).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        let usage = voxq_shared::db::usage::for_job(&app.db, id.parse().expect("uuid"))
            .await
            .expect("usage");
        let metrics: Vec<&str> = usage.iter().map(|u| u.metric.as_str()).collect();
        assert_eq!(metrics, ["audio_seconds", "processing_seconds"], "{id}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_redis_submits_fail_closed_results_still_read_and_all_resumes() {
    let redis = Proxy::start("127.0.0.1:6379").await;
    let app = TestApp::spawn_with(Options {
        redis_url: Some(format!("redis://{}/0", redis.addr())),
        ..Options::default()
    })
    .await;
    let (_, key) = app.new_account().await;
    let done = app
        .submit_ok(&key, speech::wav_16k("Before the outage."), "a.wav")
        .await;
    let job = app
        .wait_for_job(&key, &done, Duration::from_secs(120))
        .await;
    assert_eq!(job["status"], "succeeded");

    redis.cut();
    // Quotas cannot be counted: refused, not admitted unchecked.
    let refused = app
        .submit_audio(&key, speech::wav_16k("During the outage."), "b.wav")
        .await;
    assert_eq!(error_code(refused, 503).await, "service_unavailable");
    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status(), 503);
    // A finished job is read from Postgres.
    let job = app.get_json(&format!("/v1/jobs/{done}"), &key).await;
    assert_eq!(job["status"], "succeeded");
    assert!(job["result"]["text"].is_string(), "{job}");
    let accepted: i64 = sqlx::query_scalar("select count(*) from jobs")
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(accepted, 1, "nothing was accepted during the outage");

    redis.restore();
    let mut after = None;
    for _ in 0..50 {
        let response = app
            .submit_audio(&key, speech::wav_16k("After the outage."), "c.wav")
            .await;
        if response.status() == 202 {
            let body: serde_json::Value = response.json().await.expect("json");
            after = Some(body["id"].as_str().expect("id").to_owned());
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after = after.expect("submits resume once Redis is back");
    let job = app
        .wait_for_job(&key, &after, Duration::from_secs(120))
        .await;
    assert_eq!(job["status"], "succeeded", "{job}");
}
