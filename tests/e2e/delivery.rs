//! Delivery guarantees: the outbox publishes what was accepted while the
//! broker was away, consumers come back by themselves, idempotency keys
//! replay instead of duplicating, cancellation releases quota, long-polls
//! and event streams wake on events, and a stopping worker hands its job
//! back.
//!
//! Longer than most files: one test per delivery guarantee, each proven
//! against real processes and faults (a proxy that cuts the broker,
//! SIGTERM, a killed worker); the tests share their helpers
//! (`outbox_backlog` counts for the broker's outage and for a lost worker
//! alike) and read best side by side, one guarantee building on another.

use crate::common;

use std::time::{Duration, Instant};

use common::proxy::Proxy;
use common::{error_code, long_speech, metric_value, speech, Options, TestApp};
use futures::future::join_all;
use futures::StreamExt;
use reqwest::Method;
use serde_json::{json, Value};

async fn job_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("select count(*) from jobs")
        .fetch_one(&app.db)
        .await
        .expect("count")
}

async fn outbox_backlog(app: &TestApp) -> i64 {
    voxq_shared::db::outbox::backlog(&app.db)
        .await
        .expect("backlog")
}

async fn submit_keyed(app: &TestApp, key: &str, idem: &str, body: Value) -> reqwest::Response {
    app.http
        .post(format!("{}/v1/jobs", app.api_url))
        .bearer_auth(key)
        .header("idempotency-key", idem)
        .json(&body)
        .send()
        .await
        .expect("request")
}

fn text_job(text: &str) -> Value {
    json!({ "kind": "translate", "text": text, "target_language": "de" })
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_accepted_while_the_broker_is_down_run_when_it_returns_and_consumers_resume() {
    let proxy = Proxy::start("127.0.0.1:5672").await;
    let app = TestApp::spawn_with(Options {
        amqp_url: proxy.amqp_url(),
        ..Options::default()
    })
    .await;
    let (_, key) = app.new_account().await;
    let wav = speech::wav_16k("Please call me back tomorrow morning.");
    let first = app.submit_ok(&key, wav.clone(), "a.wav").await;
    let done = app
        .wait_for_job(&key, &first, Duration::from_secs(120))
        .await;
    assert_eq!(done["status"], "succeeded", "{done}");

    proxy.cut();
    let mut ids = Vec::new();
    for i in 0..3 {
        // Different bytes each: no answer from the result cache.
        let wav = speech::wav_16k(&format!("Order number {} is ready.", i + 2));
        ids.push(app.submit_ok(&key, wav, "b.wav").await);
    }
    assert_eq!(
        outbox_backlog(&app).await,
        3,
        "unpublished jobs wait in the outbox"
    );
    for id in &ids {
        let job: Value = app.get_job(&key, id).await.json().await.expect("json");
        assert_eq!(job["status"], "queued");
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    proxy.restore();

    for id in &ids {
        let job = app.wait_for_job(&key, id, Duration::from_secs(180)).await;
        assert_eq!(job["status"], "succeeded", "{job}");
    }
    assert_eq!(outbox_backlog(&app).await, 0);
    let metrics = app.worker_metrics().await;
    assert!(
        metric_value(&metrics, "voxq_worker_rabbitmq_reconnects_total", "") >= 1.0,
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idempotency_key_replays_byte_for_byte_and_refuses_another_request() {
    let app = TestApp::spawn_without_worker().await;
    let (_, key) = app.new_account().await;

    let first = submit_keyed(&app, &key, "order-1", text_job("Good morning.")).await;
    assert_eq!(first.status(), 202);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let location = first.headers()["location"].clone();
    let body = first.bytes().await.expect("body");

    // Same meaning, other key order and spacing.
    let replay = app
        .http
        .post(format!("{}/v1/jobs", app.api_url))
        .bearer_auth(&key)
        .header("idempotency-key", "\"order-1\"")
        .header("content-type", "application/json")
        .body(r#"{ "target_language": "de", "text": "Good morning.", "kind": "translate" }"#)
        .send()
        .await
        .expect("request");
    assert_eq!(replay.status(), 202);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(replay.headers()["location"], location);
    assert_eq!(replay.bytes().await.expect("body"), body);
    assert_eq!(job_count(&app).await, 1);
    // Keys live in Postgres: a Redis flush forgets none.
    app.flush_redis().await;
    let after_flush = submit_keyed(&app, &key, "order-1", text_job("Good morning.")).await;
    assert_eq!(after_flush.headers()["idempotent-replayed"], "true");
    assert_eq!(after_flush.bytes().await.expect("body"), body);
    assert_eq!(job_count(&app).await, 1);

    let other = submit_keyed(&app, &key, "order-1", text_job("Good evening.")).await;
    assert_eq!(error_code(other, 422).await, "idempotency_key_reused");

    // Keys are per account: another account's same key is its own.
    let (_, key_b) = app.new_account().await;
    let theirs = submit_keyed(&app, &key_b, "order-1", text_job("Good morning.")).await;
    assert_eq!(theirs.status(), 202);
    assert_ne!(theirs.bytes().await.expect("body"), body);

    // A failed request is not remembered.
    let invalid = submit_keyed(&app, &key, "order-2", json!({ "kind": "translate" })).await;
    assert_eq!(invalid.status(), 422);
    let valid = submit_keyed(&app, &key, "order-2", text_job("Thank you.")).await;
    assert_eq!(valid.status(), 202);

    for bad in ["", &"k".repeat(256), "tab\there"] {
        let response = submit_keyed(&app, &key, bad, text_job("Hello.")).await;
        assert_eq!(error_code(response, 400).await, "bad_request", "{bad:?}");
    }

    // The multipart boundary differs on every request; the meaning not.
    let wav = speech::wav_16k("Hello there.");
    let upload = || {
        app.http
            .post(format!("{}/v1/jobs", app.api_url))
            .bearer_auth(&key)
            .header("idempotency-key", "upload-1")
            .multipart(reqwest::multipart::Form::new().part(
                "file",
                reqwest::multipart::Part::bytes(wav.clone()).file_name("a.wav"),
            ))
            .send()
    };
    let a = upload().await.expect("request");
    assert_eq!(a.status(), 202);
    let b = upload().await.expect("request");
    assert_eq!(b.headers()["idempotent-replayed"], "true");
    assert_eq!(
        a.bytes().await.expect("body"),
        b.bytes().await.expect("body")
    );
    assert_eq!(job_count(&app).await, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_duplicates_create_one_job_and_one_quota_charge() {
    let app = TestApp::spawn_without_worker().await;
    let (_, key) = app.new_account().await;
    let responses =
        join_all((0..12).map(|_| submit_keyed(&app, &key, "burst-1", text_job("One job only."))))
            .await;
    let mut bodies = Vec::new();
    for response in responses {
        match response.status().as_u16() {
            202 => bodies.push(response.bytes().await.expect("body")),
            409 => assert_eq!(error_code(response, 409).await, "idempotency_in_progress"),
            other => panic!("unexpected {other}"),
        }
    }
    assert!(!bodies.is_empty());
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(job_count(&app).await, 1);
    let usage = app.get_json("/v1/usage", &key).await;
    assert_eq!(usage["resources"]["concurrent_jobs"]["used"], 1, "{usage}");
    assert_eq!(usage["resources"]["requests"]["used"], 1.0, "{usage}");
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_a_queued_job_releases_its_quota_and_the_worker_skips_it() {
    let mut app = TestApp::spawn_without_worker().await;
    let (_, key) = app.new_account().await;
    let (_, other) = app.new_account().await;
    let id = app
        .submit_ok(&key, speech::wav_16k("Cancel me please."), "a.wav")
        .await;
    let before = app.get_json("/v1/usage", &key).await;
    assert_eq!(before["resources"]["concurrent_jobs"]["used"], 1);

    let path = format!("/v1/jobs/{id}");
    let theirs = app.call(Method::DELETE, &path, Some(&other), None).await;
    assert_eq!(theirs.status(), 404);
    let cancelled = app.call(Method::DELETE, &path, Some(&key), None).await;
    assert_eq!(cancelled.status(), 200);
    let view: Value = cancelled.json().await.expect("json");
    assert_eq!(view["status"], "cancelled");
    // Twice is fine, through either spelling.
    let again = app
        .call(Method::POST, &format!("{path}/cancel"), Some(&key), None)
        .await;
    assert_eq!(again.status(), 200);
    let after = app.get_json("/v1/usage", &key).await;
    assert_eq!(after["resources"]["concurrent_jobs"]["used"], 0, "{after}");

    // The message is still queued; a worker acknowledges it unrun.
    app.start_worker();
    let deadline = Instant::now() + Duration::from_secs(120);
    while metric_value(
        &app.worker_metrics().await,
        "voxq_worker_jobs_skipped_total",
        "",
    ) < 1.0
    {
        assert!(
            Instant::now() < deadline,
            "the cancelled job's message was not consumed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let job = app.get_json(&path, &key).await;
    assert_eq!(job["status"], "cancelled");
    let usage = voxq_shared::db::usage::for_job(&app.db, id.parse().expect("uuid"))
        .await
        .expect("usage");
    assert!(usage.is_empty(), "{usage:?}");

    // A finished job cannot be cancelled.
    let done = app
        .submit_ok(&key, speech::wav_16k("Finish me."), "b.wav")
        .await;
    let job = app
        .wait_for_job(&key, &done, Duration::from_secs(120))
        .await;
    assert_eq!(job["status"], "succeeded");
    let late = app
        .call(
            Method::DELETE,
            &format!("/v1/jobs/{done}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(error_code(late, 409).await, "job_finished");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_poll_answers_when_the_job_ends_and_an_event_stream_follows_it() {
    let mut app = TestApp::spawn_without_worker().await;
    let (_, key) = app.new_account().await;
    let id = app
        .submit_ok(&key, speech::wav_16k("Wait for me."), "a.wav")
        .await;

    // No worker: the wait runs out and shows the job as it is.
    let started = Instant::now();
    let job = app.get_json(&format!("/v1/jobs/{id}?wait=2"), &key).await;
    assert_eq!(job["status"], "queued");
    assert!(started.elapsed() >= Duration::from_secs(2));
    let too_long = app.get_job_format(&key, &id, "json&wait=61").await;
    assert_eq!(too_long.status(), 400);

    let stream = app
        .http
        .get(format!("{}/v1/jobs/{id}/events", app.api_url))
        .bearer_auth(&key)
        .send()
        .await
        .expect("events");
    assert_eq!(stream.status(), 200);
    assert!(stream.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("text/event-stream"));
    let events = tokio::spawn(async move {
        let mut body = String::new();
        let mut chunks = stream.bytes_stream();
        while let Some(chunk) = chunks.next().await {
            body.push_str(&String::from_utf8_lossy(&chunk.expect("chunk")));
        }
        body
    });
    // A second API instance serves the long-poll: the worker's event
    // reaches it through Redis.
    let second = app.spawn_second_api();
    let waiter = {
        let http = app.http.clone();
        let url = format!("{second}/v1/jobs/{id}?wait=60");
        let key = key.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let job: Value = http
                .get(url)
                .bearer_auth(key)
                .send()
                .await
                .expect("wait")
                .json()
                .await
                .expect("json");
            (job, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    app.start_worker();
    let (job, waited) = waiter.await.expect("waiter");
    assert_eq!(job["status"], "succeeded", "{job}");
    assert!(waited < Duration::from_secs(60), "{waited:?}");

    let body = tokio::time::timeout(Duration::from_secs(30), events)
        .await
        .expect("the stream ends after the job")
        .expect("events task");
    let statuses: Vec<String> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| {
            let v: Value = serde_json::from_str(d.trim()).expect("event JSON");
            assert_eq!(v["id"], id.as_str());
            v["status"].as_str().expect("status").to_owned()
        })
        .collect();
    assert_eq!(
        statuses.first().map(String::as_str),
        Some("queued"),
        "{body}"
    );
    assert_eq!(
        statuses.last().map(String::as_str),
        Some("succeeded"),
        "{body}"
    );
    assert!(statuses.iter().any(|s| s == "running"), "{body}");
}

/// Decoded window by window, every 30 s window a safe point; with voice
/// activity detection the safe points are between batches of chunks
/// (tests/e2e/long_form.rs).
const SEQUENTIAL: &[(&str, &str)] = &[("vad", "false")];

/// Over two minutes of varied sentences with pauses: several windows,
/// each a safe point, none of them slow to decode (text that repeats
/// itself sends Whisper through every fallback temperature, tens of
/// seconds per window on two cores).
fn long_speech() -> Vec<u8> {
    long_speech::recording(5.0).wav
}

/// Waits until the job is running with some progress; returns its view.
async fn wait_for_progress(app: &TestApp, key: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let job = app.get_json(&format!("/v1/jobs/{id}"), key).await;
        if job["status"] == "running"
            && job["progress"]["seconds_done"].as_f64().unwrap_or(0.0) > 0.0
        {
            return job;
        }
        assert!(Instant::now() < deadline, "no progress: {job}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_job_reports_progress_and_stops_when_cancelled() {
    let app = TestApp::spawn().await;
    let (_, key) = app.new_account().await;
    let id = app.submit_wav_with(&key, long_speech(), SEQUENTIAL).await;
    let running = wait_for_progress(&app, &key, &id).await;
    let total = running["progress"]["seconds_total"]
        .as_f64()
        .expect("total");
    assert!(total > 30.0, "{running}");

    let path = format!("/v1/jobs/{id}");
    // The worker stops at its next window instead of running to the end.
    app.cancel_and_wait_for_stop(&key, &id, Duration::from_secs(60))
        .await;
    let job = app.get_json(&path, &key).await;
    assert_eq!(job["status"], "cancelled");
    assert!(job.get("result").is_none(), "{job}");
    let usage = voxq_shared::db::usage::for_job(&app.db, id.parse().expect("uuid"))
        .await
        .expect("usage");
    assert!(usage.is_empty(), "{usage:?}");
    let after = app.get_json("/v1/usage", &key).await;
    assert_eq!(after["resources"]["concurrent_jobs"]["used"], 0, "{after}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_long_job_hands_it_back_and_another_worker_finishes_it() {
    let mut app = TestApp::spawn_with(Options {
        worker_env: vec![("VOXQ_SHUTDOWN_GRACE".into(), "1".into())],
        ..Options::default()
    })
    .await;
    let (_, key) = app.new_account().await;
    let id = app.submit_wav_with(&key, long_speech(), SEQUENTIAL).await;
    wait_for_progress(&app, &key, &id).await;
    assert!(
        app.signal_worker("TERM", Duration::from_secs(30)),
        "the worker did not stop within its grace period"
    );
    let job = app.get_json(&format!("/v1/jobs/{id}"), &key).await;
    assert_eq!(job["status"], "queued", "{job}");
    assert_eq!(job["attempts"], 0, "an interrupted run is not an attempt");

    app.start_worker();
    let job = app.wait_for_job(&key, &id, Duration::from_secs(300)).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["attempts"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queued_job_knows_its_place_and_when_it_should_start() {
    let app = TestApp::spawn_without_worker().await;
    let (_, key) = app.new_account().await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let wav = speech::wav_16k(&format!("Job number {i}."));
        ids.push(app.submit_ok(&key, wav, "a.wav").await);
    }
    let job = app.get_json(&format!("/v1/jobs/{}", ids[2]), &key).await;
    assert_eq!(job["queue"]["position"], 3, "{job}");
    assert!(
        job["queue"].get("estimated_start_at").is_none(),
        "no history yet: {job}"
    );

    // The first one ran, taking ten seconds: two ahead of the last becomes
    // one, expected about ten seconds from now.
    sqlx::query(
        "update jobs set status = 'succeeded', started_at = now() - interval '10 seconds',
                finished_at = now()
         where id = $1",
    )
    .bind(ids[0].parse::<uuid::Uuid>().expect("uuid"))
    .execute(&app.db)
    .await
    .expect("finish the first");
    let job = app.get_json(&format!("/v1/jobs/{}", ids[2]), &key).await;
    assert_eq!(job["queue"]["position"], 2, "{job}");
    let eta: chrono::DateTime<chrono::Utc> = job["queue"]["estimated_start_at"]
        .as_str()
        .expect("estimate")
        .parse()
        .expect("RFC 3339");
    let seconds = (eta - chrono::Utc::now()).num_milliseconds() as f64 / 1000.0;
    assert!((5.0..15.0).contains(&seconds), "{seconds} s: {job}");
    // Running and finished jobs have no place in line.
    let first = app.get_json(&format!("/v1/jobs/{}", ids[0]), &key).await;
    assert!(first.get("queue").is_none(), "{first}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_job_leaves_the_broker_and_its_lease_brings_it_back_when_its_worker_dies() {
    let mut app = TestApp::spawn_with(Options {
        api_env: vec![("VOXQ_JANITOR_INTERVAL".into(), "1".into())],
        worker_env: vec![("VOXQ_LEASE_SECONDS".into(), "3".into())],
        ..Options::default()
    })
    .await;
    let (_, key) = app.new_account().await;
    let id = app.submit_wav_with(&key, long_speech(), SEQUENTIAL).await;
    wait_for_progress(&app, &key, &id).await;
    let uuid: uuid::Uuid = id.parse().expect("uuid");
    // Acknowledged at claim: RabbitMQ's consumer timeout cannot cut it.
    let (detached, leased): (bool, bool) =
        sqlx::query_as("select detached, lease_until > now() from jobs where id = $1")
            .bind(uuid)
            .fetch_one(&app.db)
            .await
            .expect("job");
    assert!(detached && leased);

    assert!(app.signal_worker("KILL", Duration::from_secs(10)));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let job = app.get_json(&format!("/v1/jobs/{id}"), &key).await;
        if job["status"] == "queued" {
            break;
        }
        assert!(Instant::now() < deadline, "lease never ran out: {job}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.start_worker();
    let job = app.wait_for_job(&key, &id, Duration::from_secs(300)).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["attempts"], 2);
    assert_eq!(outbox_backlog(&app).await, 0);
}

/// A WAV whose bytes carry `marker` in a JUNK chunk before its data.
fn wav_with_marker(text: &str, marker: &str) -> Vec<u8> {
    let wav = speech::wav_16k(text);
    let at = wav
        .windows(4)
        .position(|w| w == b"data")
        .expect("data chunk");
    let mut chunk = b"JUNK".to_vec();
    let mut body = marker.as_bytes().to_vec();
    if body.len() % 2 == 1 {
        body.push(0);
    }
    chunk.extend_from_slice(&(body.len() as u32).to_le_bytes());
    chunk.extend_from_slice(&body);
    let mut out = wav[..at].to_vec();
    out.extend_from_slice(&chunk);
    out.extend_from_slice(&wav[at..]);
    let riff = (out.len() - 8) as u32;
    out[4..8].copy_from_slice(&riff.to_le_bytes());
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_that_crashes_every_worker_ends_failed_in_the_dead_letter_queue() {
    let mut app = TestApp::spawn_with(Options {
        worker_env: vec![
            ("VOXQ_CHAOS_ABORT_ON".into(), "VOXQ-POISON".into()),
            ("VOXQ_MAX_ATTEMPTS".into(), "2".into()),
        ],
        ..Options::default()
    })
    .await;
    let (_, key) = app.new_account().await;
    let id = app
        .submit_ok(&key, wav_with_marker("Poison.", "VOXQ-POISON"), "p.wav")
        .await;
    // Each claim kills its worker; a supervisor (here, the test) starts
    // another, until the job has used up its attempts.
    for crash in 0..2 {
        assert!(
            app.worker_exited(Duration::from_secs(60)),
            "crash {crash}: the worker did not die"
        );
        app.start_worker();
    }
    let job = app.wait_for_job(&key, &id, Duration::from_secs(60)).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "worker_crashed", "{job}");
    assert_eq!(job["attempts"], 3);
    assert_eq!(app.dead_letters().await, 1);
    let usage = voxq_shared::db::usage::for_job(&app.db, id.parse().expect("uuid"))
        .await
        .expect("usage");
    assert!(usage.is_empty(), "{usage:?}");
    // The worker that refused it is alive and works.
    let next = app
        .submit_ok(&key, speech::wav_16k("Still standing."), "ok.wav")
        .await;
    let job = app.wait_for_job(&key, &next, Duration::from_secs(60)).await;
    assert_eq!(job["status"], "succeeded", "{job}");
}

/// A worker killed between committing a job's success and settling its
/// quota in Redis leaves the job's reservation held there. Its message was
/// never acknowledged, so it comes back; the next worker finds the job
/// ended and settles it: no concurrent-jobs slot or reserved seconds held
/// for good, and the audio counted as used once.
#[tokio::test(flavor = "multi_thread")]
async fn a_worker_killed_after_the_commit_leaves_no_quota_held() {
    let mut app = TestApp::spawn_with(Options {
        worker_env: doomed_at_commit(),
        ..Options::default()
    })
    .await;
    let (_, key) = app.new_account().await;
    let id = commit_and_die(&mut app, &key).await;
    app.start_worker();
    assert_settled_once(&app, &key, &id).await;
}

/// The same for a long job, whose delivery was acknowledged when it was
/// leased: no message comes back, so the API's janitor settles the ended
/// job once its lease has run out.
#[tokio::test(flavor = "multi_thread")]
async fn a_long_job_whose_worker_died_after_the_commit_leaves_no_quota_held() {
    let mut app = TestApp::spawn_with(Options {
        api_env: vec![
            ("VOXQ_JANITOR_INTERVAL".into(), "1".into()),
            // The marked sentence is a long job.
            ("VOXQ_LONG_AUDIO_SECONDS".into(), "1".into()),
        ],
        // Long enough that the held reservation is seen before the
        // janitor may settle it (renewed every 2 s, so at least 6 s after
        // the commit), short enough to keep the test quick.
        worker_env: [
            doomed_at_commit(),
            vec![("VOXQ_LEASE_SECONDS".into(), "8".into())],
        ]
        .concat(),
        ..Options::default()
    })
    .await;
    let (_, key) = app.new_account().await;
    let id = commit_and_die(&mut app, &key).await;
    let uuid: uuid::Uuid = id.parse().expect("uuid");
    let (detached,): (bool,) = sqlx::query_as("select detached from jobs where id = $1")
        .bind(uuid)
        .fetch_one(&app.db)
        .await
        .expect("job");
    assert!(detached, "the job was not leased as a long job");
    // No worker runs from here on: only the janitor can settle it.
    assert_settled_once(&app, &key, &id).await;
    let (detached, lease): (bool, Option<chrono::DateTime<chrono::Utc>>) =
        sqlx::query_as("select detached, lease_until from jobs where id = $1")
            .bind(uuid)
            .fetch_one(&app.db)
            .await
            .expect("job");
    assert!(!detached && lease.is_none(), "its lease was kept");
}

/// A worker that aborts right after committing the success of a job
/// whose audio carries `VOXQ-DOOMED`.
fn doomed_at_commit() -> Vec<(String, String)> {
    vec![
        ("VOXQ_CHAOS_ABORT_ON".into(), "VOXQ-DOOMED".into()),
        ("VOXQ_CHAOS_ABORT_AT".into(), "commit".into()),
    ]
}

/// Submits a doomed job and waits for its worker to die after the commit:
/// the job succeeded and its reservation is still held, nothing used.
async fn commit_and_die(app: &mut TestApp, key: &str) -> String {
    let audio = wav_with_marker("Committed, then killed.", "VOXQ-DOOMED");
    let id = app.submit_ok(key, audio, "doomed.wav").await;
    assert!(
        app.worker_exited(Duration::from_secs(60)),
        "the worker did not die after its commit"
    );
    let job = app.wait_for_job(key, &id, Duration::from_secs(10)).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let before = usage(app, key).await;
    assert_eq!(
        before["resources"]["concurrent_jobs"]["used"], 1,
        "{before}"
    );
    assert_eq!(
        before["resources"]["audio_seconds"]["used"], 0.0,
        "{before}"
    );
    id
}

async fn usage(app: &TestApp, key: &str) -> Value {
    let response = app
        .http
        .get(format!("{}/v1/usage", app.api_url))
        .bearer_auth(key)
        .send()
        .await
        .expect("usage");
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.expect("json")
}

/// Waits until the account holds no job in flight, then checks that the
/// job's reservation is gone and its audio counted as used exactly as
/// billed, once.
async fn assert_settled_once(app: &TestApp, key: &str, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let after = loop {
        let now = usage(app, key).await;
        if now["resources"]["concurrent_jobs"]["used"] == 0 {
            break now;
        }
        assert!(
            Instant::now() < deadline,
            "the reservation stayed held: {now}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let audio = &after["resources"]["audio_seconds"];
    assert_eq!(audio["reserved"], 0.0, "{after}");
    let billed = voxq_shared::db::usage::for_job(&app.db, id.parse().expect("uuid"))
        .await
        .expect("usage records");
    let seconds = billed
        .iter()
        .find(|r| r.metric == "audio_seconds")
        .map(|r| r.quantity)
        .expect("audio billed");
    let used = audio["used"].as_f64().expect("used");
    // Redis counts milliseconds, rounded up.
    assert!(
        (used - seconds).abs() < 0.002,
        "used {used} s, billed {seconds} s"
    );
    // One record per metric: billed once.
    assert_eq!(billed.len(), 2, "{billed:?}");
}

/// Long-polls and event streams are capped per account: the next one is a
/// clear 429, another account still waits, and a slot comes back when a
/// waiting request ends.
#[tokio::test(flavor = "multi_thread")]
async fn waiting_requests_are_capped_per_account() {
    let app = TestApp::spawn_with(Options {
        worker: false,
        api_env: vec![("VOXQ_MAX_WAITING_PER_ACCOUNT".into(), "2".into())],
        ..Options::default()
    })
    .await;
    let (_, key) = app.new_account().await;
    let id = app.submit_ok(&key, speech::wav_16k("Wait."), "a.wav").await;
    let wait = |seconds: u64| {
        let (http, url, key) = (
            app.http.clone(),
            format!("{}/v1/jobs/{id}?wait={seconds}", app.api_url),
            key.clone(),
        );
        tokio::spawn(async move { http.get(url).bearer_auth(key).send().await.expect("wait") })
    };
    let first = wait(4);
    let stream = app
        .http
        .get(format!("{}/v1/jobs/{id}/events", app.api_url))
        .bearer_auth(&key)
        .send()
        .await
        .expect("events");
    assert_eq!(stream.status(), 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Both slots are taken: a third waiting request is refused at once.
    let refused = app.get_job_format(&key, &id, "json&wait=10").await;
    assert!(refused.headers().get("retry-after").is_some());
    assert_eq!(common::error_code(refused, 429).await, "too_many_waiting");
    // A plain read never waits and is never refused.
    assert_eq!(app.get_job(&key, &id).await.status(), 200);
    // Another account has its own slots.
    let (_, other) = app.new_account().await;
    let theirs = app
        .submit_ok(&other, speech::wav_16k("Me too."), "b.wav")
        .await;
    let answer = app.get_job_format(&other, &theirs, "json&wait=1").await;
    assert_eq!(answer.status(), 200);
    // The stream closed and the long-poll answered: the slots come back.
    drop(stream);
    assert_eq!(first.await.expect("first").status(), 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        app.get_job_format(&key, &id, "json&wait=1").await.status(),
        200
    );
}
