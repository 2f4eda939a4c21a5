//! Audio by URL: the worker fetches it under the SSRF guard, bills what it
//! really lasted, and fails the job with a reason when the fetch cannot
//! work; internal addresses are refused at submit.

use crate::common;

use std::time::Duration;

use axum::routing::get;
use common::{error_code, serve_local, speech, Options, TestApp};
use reqwest::multipart::{Form, Part};

/// Serves `bytes` at `/a.wav` (and 404 elsewhere) on a free local port.
async fn serve(bytes: Vec<u8>) -> u16 {
    serve_local(axum::Router::new().route("/a.wav", get(move || async move { bytes }))).await
}

async fn submit_url(app: &TestApp, key: &str, url: &str) -> reqwest::Response {
    app.submit_form(key, Form::new().text("audio_url", url.to_owned()))
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn audio_by_url_is_fetched_transcribed_and_billed_for_what_it_lasted() {
    let mut allow = common::local_fetch_env();
    // The fetch goes straight to the address that was checked, whatever
    // proxy the environment names.
    allow.extend(common::dead_proxies());
    let app = TestApp::spawn_with(Options {
        api_env: allow.clone(),
        worker_env: allow,
        ..Options::default()
    })
    .await;
    let (_, key) = app.new_account().await;
    let port = serve(speech::wav_16k("I would like to order a cup of coffee.")).await;

    let response = submit_url(&app, &key, &format!("http://127.0.0.1:{port}/a.wav")).await;
    let status = response.status();
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().expect("id").to_owned();
    let job = app.wait_for_job(&key, &id, Duration::from_secs(120)).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let text = job["result"]["text"].as_str().expect("text").to_lowercase();
    assert!(text.contains("coffee"), "{text}");
    let billed = app.billed_audio_seconds(&id).await;
    assert!((1.0..10.0).contains(&billed), "billed {billed}");
    let quota = app.get_json("/v1/usage", &key).await;
    assert_eq!(
        quota["resources"]["audio_seconds"]["reserved"], 0.0,
        "{quota}"
    );

    // Nothing there: the job fails with the reason, once.
    let missing = submit_url(&app, &key, &format!("http://127.0.0.1:{port}/gone.wav")).await;
    let id: serde_json::Value = missing.json().await.expect("json");
    let job = app
        .wait_for_job(
            &key,
            id["id"].as_str().expect("id"),
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "fetch_failed", "{job}");
    assert_eq!(job["attempts"], 1);

    // Internal addresses outside the allow-list, refused at submit.
    for url in [
        "http://10.0.0.1/a.wav",
        "http://169.254.169.254/",
        "http://[::1]/a.wav",
    ] {
        let refused = submit_url(&app, &key, url).await;
        assert_eq!(error_code(refused, 422).await, "invalid_audio_url", "{url}");
    }
    let both = app
        .submit_form(
            &key,
            Form::new()
                .part(
                    "file",
                    Part::bytes(speech::wav_16k("Hi.")).file_name("a.wav"),
                )
                .text("audio_url", format!("http://127.0.0.1:{port}/a.wav")),
        )
        .await;
    assert_eq!(error_code(both, 400).await, "bad_request");
}

/// A long job that fails for a while goes back to the broker through the
/// retry delays; its lease must go with it, or the janitor, seeing the
/// lease run out while the message waits, queues it a second time and two
/// workers run it at once.
#[tokio::test(flavor = "multi_thread")]
async fn a_retried_long_job_is_not_queued_twice_when_its_lease_runs_out() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    const FAILURES: usize = 3;
    let allow = common::local_fetch_env();
    let mut worker_env = allow.clone();
    worker_env.extend([
        ("VOXQ_LEASE_SECONDS".to_owned(), "1".to_owned()),
        ("VOXQ_MAX_ATTEMPTS".to_owned(), "5".to_owned()),
    ]);
    let mut api_env = allow;
    api_env.push(("VOXQ_JANITOR_INTERVAL".to_owned(), "1".to_owned()));
    let mut app = TestApp::spawn_with(Options {
        api_env,
        worker_env,
        ..Options::default()
    })
    .await;
    // A second worker that a second copy of the job would reach.
    app.start_extra_worker(&[]);
    let (_, key) = app.new_account().await;

    // 503 three times, then the audio: the last wait in the retry delays
    // (4 to 8 s) is well past the lease (1 s) and a janitor pass (1 s).
    let requests = Arc::new(AtomicUsize::new(0));
    let wav = speech::wav_16k("Thank you very much.");
    let seen = requests.clone();
    let flaky = axum::Router::new().route(
        "/flaky.wav",
        get(move || {
            let (seen, wav) = (seen.clone(), wav.clone());
            async move {
                if seen.fetch_add(1, Ordering::SeqCst) < FAILURES {
                    Err(axum::http::StatusCode::SERVICE_UNAVAILABLE)
                } else {
                    Ok(wav)
                }
            }
        }),
    );
    let port = serve_local(flaky).await;

    let response = submit_url(&app, &key, &format!("http://127.0.0.1:{port}/flaky.wav")).await;
    let body: serde_json::Value = response.json().await.expect("json");
    let id = body["id"].as_str().expect("id").to_owned();
    let job = app.wait_for_job(&key, &id, Duration::from_secs(120)).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    // Let a stray copy, if there were one, reach a worker and fetch.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(requests.load(Ordering::SeqCst), FAILURES + 1);
    let attempts: i32 = sqlx::query_scalar("select attempts from jobs where id = $1::uuid")
        .bind(&id)
        .fetch_one(&app.db)
        .await
        .expect("attempts");
    assert_eq!(attempts as usize, FAILURES + 1);
}

/// A fetch that outlasts the lease several times over: the heartbeat keeps
/// the lease from the claim on, so the janitor never queues the job again
/// and a second worker never fetches it.
#[tokio::test(flavor = "multi_thread")]
async fn a_slow_fetch_keeps_its_lease_and_runs_once() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    let allow = common::local_fetch_env();
    let mut worker_env = allow.clone();
    worker_env.push(("VOXQ_LEASE_SECONDS".to_owned(), "1".to_owned()));
    let mut api_env = allow;
    api_env.push(("VOXQ_JANITOR_INTERVAL".to_owned(), "1".to_owned()));
    let mut app = TestApp::spawn_with(Options {
        api_env,
        worker_env,
        ..Options::default()
    })
    .await;
    app.start_extra_worker(&[]);
    let (_, key) = app.new_account().await;

    let requests = Arc::new(AtomicUsize::new(0));
    let wav = speech::wav_16k("Thank you very much.");
    let seen = requests.clone();
    let slow = axum::Router::new().route(
        "/slow.wav",
        get(move || {
            let (seen, wav) = (seen.clone(), wav.clone());
            async move {
                seen.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(6)).await;
                wav
            }
        }),
    );
    let port = serve_local(slow).await;

    let response = submit_url(&app, &key, &format!("http://127.0.0.1:{port}/slow.wav")).await;
    let body: serde_json::Value = response.json().await.expect("json");
    let id = body["id"].as_str().expect("id").to_owned();
    let job = app.wait_for_job(&key, &id, Duration::from_secs(120)).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        requests.load(Ordering::SeqCst),
        1,
        "fetched by a second worker"
    );
    let attempts: i32 = sqlx::query_scalar("select attempts from jobs where id = $1::uuid")
        .bind(&id)
        .fetch_one(&app.db)
        .await
        .expect("attempts");
    assert_eq!(attempts, 1);
}
