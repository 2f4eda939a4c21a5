//! A redelivered message for a finished job is acknowledged without running
//! or billing again.

use crate::common;

use std::time::{Duration, Instant};

use common::{metric_value, speech, TestApp};
use lapin::options::BasicPublishOptions;
use lapin::BasicProperties;
use voxq_shared::job::{JobKind, JobMessage, JobParams};
use voxq_shared::queue::{Lane, Topology};

#[tokio::test(flavor = "multi_thread")]
async fn the_same_job_message_twice_gives_one_result_and_one_set_of_usage_records() {
    let app = TestApp::spawn().await;
    let (account_id, key) = app.new_account().await;
    let wav = speech::wav_16k("I would like to order a cup of coffee.");
    let id = app.submit_ok(&key, wav, "a.wav").await;

    // The same message again, as the broker would redeliver it, twice.
    let message = JobMessage {
        job_id: id.parse().expect("uuid"),
        account_id,
        kind: JobKind::Transcribe,
        model: "whisper-tiny.en".into(),
        params: JobParams {
            model: Some("whisper-tiny.en".into()),
            ..JobParams::default()
        },
    };
    let topology = Topology::new(&app.namespace);
    let conn = voxq_shared::queue::connect(common::AMQP_URL)
        .await
        .expect("amqp");
    let channel = conn.create_channel().await.expect("channel");
    for _ in 0..2 {
        channel
            .basic_publish(
                &topology.exchange,
                &Topology::routing_key("whisper-tiny.en", Lane::Interactive),
                BasicPublishOptions::default(),
                &serde_json::to_vec(&message).expect("json"),
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
    }

    let first = app.wait_for_job(&key, &id, Duration::from_secs(300)).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let metrics = app.worker_metrics().await;
        if metric_value(&metrics, "voxq_worker_jobs_skipped_total", "transcribe") >= 2.0 {
            assert_eq!(
                metric_value(&metrics, "voxq_worker_jobs_processed_total", "transcribe"),
                1.0
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "duplicates not consumed:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let usage = voxq_shared::db::usage::for_job(&app.db, message.job_id)
        .await
        .expect("usage");
    let metrics: Vec<&str> = usage.iter().map(|u| u.metric.as_str()).collect();
    assert_eq!(metrics, ["audio_seconds", "processing_seconds"]);
    assert!((usage[0].quantity - 3.0).abs() < 2.0, "{usage:?}");
    let again = app
        .get_job(&key, &id)
        .await
        .json::<serde_json::Value>()
        .await
        .expect("json");
    assert_eq!(again["result"], first["result"]);
    assert_eq!(again["attempts"], 1);
}

/// A message the broker dead-letters (its delivery limit reached) leaves
/// its job open; a worker's sweep ends it `failed`, releases its quota and
/// leaves the operators' copy of the message in the dead-letter queue.
#[tokio::test(flavor = "multi_thread")]
async fn a_dead_lettered_message_ends_its_job_failed_and_frees_its_quota() {
    let mut app = TestApp::spawn_without_worker().await;
    let (account_id, key) = app.new_account().await;
    // A translation job: no worker of this test serves its model, so only
    // the sweep can end it.
    let response = app.submit_text(&key, "Guten Morgen.").await;
    assert_eq!(response.status(), 202);
    let id: uuid::Uuid = response.json::<serde_json::Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let usage = app.get_json("/v1/usage", &key).await;
    assert_eq!(usage["resources"]["concurrent_jobs"]["used"], 1, "{usage}");

    // The broker's dead-lettering, as it would route the message.
    let message = JobMessage {
        job_id: id,
        account_id,
        kind: JobKind::Translate,
        model: "opus-mt-de-en".into(),
        params: JobParams::default(),
    };
    let topology = Topology::new(&app.namespace);
    let conn = voxq_shared::queue::connect(common::AMQP_URL)
        .await
        .expect("amqp");
    let channel = conn.create_channel().await.expect("channel");
    // The worker declares the topology; declare it first so the copies
    // have their queues.
    topology.declare(&channel).await.expect("topology");
    channel
        .basic_publish(
            &topology.dead_letter_exchange,
            "opus-mt-de-en.interactive",
            BasicPublishOptions::default(),
            &serde_json::to_vec(&message).expect("json"),
            BasicProperties::default(),
        )
        .await
        .expect("publish")
        .await
        .expect("confirm");
    let _ = conn.close(200, "done").await;

    app.start_worker();
    let deadline = Instant::now() + Duration::from_secs(60);
    let job = loop {
        let job = app.get_json(&format!("/v1/jobs/{id}"), &key).await;
        if job["status"] != "queued" {
            break job;
        }
        assert!(Instant::now() < deadline, "never swept: {job}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "dead_lettered", "{job}");
    let usage = app.get_json("/v1/usage", &key).await;
    let resources = &usage["resources"];
    assert_eq!(resources["concurrent_jobs"]["used"], 0, "{usage}");
    assert_eq!(resources["text_chars"]["reserved"], 0.0, "{usage}");
    assert_eq!(resources["text_chars"]["used"], 0.0, "not billed: {usage}");
    assert_eq!(app.dead_letters().await, 1, "the operators' copy stays");
}
