//! OpenAI's official SDKs (Python and Node.js, ops/fetch-clients.sh)
//! against the OpenAI-compatible routes of a running API and worker:
//! every response format, word timestamps, speech translation, the model
//! list, and the SDKs' own exceptions for a wrong key, a spent quota and a
//! bad parameter. Then what the SDKs rely on: the same request sent again
//! waits on the same job, and a result that takes too long is a clear
//! error naming its job.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{speech, wer::wer, TestApp};
use reqwest::multipart::{Form, Part};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

/// Where ops/fetch-clients.sh installs the SDKs.
fn clients_dir() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache"));
    cache.join("voxq/clients")
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/e2e/clients")
        .join(name)
}

/// Runs a client script; its standard output is one JSON object.
fn run_client(program: &Path, script: &Path, env: &[(&str, String)]) -> Value {
    assert!(
        program.exists(),
        "{} is missing: ops/test.sh installs the clients (ops/fetch-clients.sh)",
        program.display()
    );
    let output = Command::new(program)
        .arg(script)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("the client runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{} failed: {}\n{stdout}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// An account of its own (derived keys are per account) and one whose
/// daily audio is spent.
async fn client_env(
    app: &TestApp,
    admin: &str,
    audio: &Path,
) -> (Uuid, Vec<(&'static str, String)>) {
    let (account, key) = app.new_account().await;
    let (spent, spent_key) = app.new_account().await;
    let response = app
        .call(
            Method::PATCH,
            &format!("/v1/admin/accounts/{spent}"),
            Some(admin),
            Some(json!({"limits": {"audio_seconds_per_day": 1}})),
        )
        .await;
    assert_eq!(response.status(), 200);
    let env = vec![
        ("BASE", format!("{}/v1", app.api_url)),
        ("KEY", key),
        ("WRONG_KEY", "voxq_notakey_0000000000000000".to_owned()),
        ("QUOTA_KEY", spent_key),
        ("AUDIO", audio.display().to_string()),
    ];
    (account, env)
}

/// What both SDKs must have seen.
fn judge(sdk: &str, out: &Value, reference: &str) {
    let close = |label: &str, text: &str| {
        let rate = wer(reference, text);
        assert!(rate < 0.25, "{sdk} {label}: WER {rate:.2}: {text}");
    };
    close("json", out["json"].as_str().expect("json text"));
    close("text", out["text"].as_str().expect("text"));
    let srt = out["srt"].as_str().expect("srt");
    assert!(srt.starts_with("1\n00:00:0"), "{sdk} srt: {srt}");
    assert!(srt.contains(" --> "), "{sdk} srt: {srt}");
    let vtt = out["vtt"].as_str().expect("vtt");
    assert!(vtt.starts_with("WEBVTT"), "{sdk} vtt: {vtt}");
    let verbose = &out["verbose"];
    assert_eq!(verbose["task"], "transcribe", "{sdk}: {verbose}");
    assert_eq!(verbose["language"], "english", "{sdk}: {verbose}");
    close(
        "verbose_json",
        verbose["text"].as_str().expect("verbose text"),
    );
    let duration = verbose["duration"].as_f64().expect("duration");
    assert!((5.0..30.0).contains(&duration), "{sdk}: {duration}");
    let segments = verbose["segments"].as_array().expect("segments");
    assert!(!segments.is_empty(), "{sdk}");
    for (i, s) in segments.iter().enumerate() {
        assert_eq!(s["id"], i, "{sdk}: {s}");
        for field in [
            "seek",
            "start",
            "end",
            "temperature",
            "avg_logprob",
            "compression_ratio",
            "no_speech_prob",
        ] {
            assert!(s[field].is_number(), "{sdk}: segment {field}: {s}");
        }
        assert!(s["tokens"].is_array(), "{sdk}: {s}");
    }
    let words = verbose["words"].as_array().expect("words");
    assert!(words.len() >= 20, "{sdk}: {} words", words.len());
    let mut last = 0.0;
    for w in words {
        let (start, end) = (
            w["start"].as_f64().expect("start"),
            w["end"].as_f64().expect("end"),
        );
        assert!(
            start >= last - 0.5 && end >= start && end <= duration + 0.1,
            "{sdk}: {w}"
        );
        assert!(
            !w["word"].as_str().expect("word").starts_with(' '),
            "{sdk}: {w}"
        );
        last = start;
    }
    // tiny.en's transcript already is English.
    close(
        "translation",
        out["translation"].as_str().expect("translation"),
    );
    let models = out["models"].as_array().expect("models");
    assert!(
        models.iter().any(|m| m == "whisper-tiny.en"),
        "{sdk}: {models:?}"
    );

    let refused = |case: &str, class: &str, status: u16, code: &str| {
        let e = &out[case];
        assert_eq!(e["class"], class, "{sdk} {case}: {e}");
        assert_eq!(e["status"], status, "{sdk} {case}: {e}");
        // Python's `body` is the error object, as is Node's `error`.
        assert_eq!(e["body"]["code"], code, "{sdk} {case}: {e}");
        assert!(
            e["body"]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{sdk} {case}: {e}"
        );
        assert!(
            e["body"].get("type").is_some() && e["body"].get("param").is_some(),
            "{sdk} {case}: {e}"
        );
    };
    refused("wrong_key", "AuthenticationError", 401, "invalid_api_key");
    refused("quota", "RateLimitError", 429, "insufficient_quota");
    refused("bad_format", "BadRequestError", 400, "invalid_value");
    assert_eq!(
        out["bad_format"]["body"]["param"], "response_format",
        "{sdk}"
    );
    refused("bad_model", "BadRequestError", 400, "unknown_model");
    assert_eq!(out["bad_model"]["body"]["param"], "model", "{sdk}");
}

async fn jobs_of(app: &TestApp, account: Uuid) -> i64 {
    sqlx::query_scalar("select count(*) from jobs where account_id = $1")
        .bind(account)
        .fetch_one(&app.db)
        .await
        .expect("count")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_official_python_and_node_sdks_transcribe_translate_and_raise_their_own_errors() {
    let app = TestApp::spawn().await;
    let admin = app.admin_key().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let reference = speech::text();
    let audio = speech::espeak_wav(dir.path(), &reference);
    let clients = clients_dir();

    let (account, env) = client_env(&app, &admin, &audio).await;
    let python = run_client(
        &clients.join("python/bin/python"),
        &script("openai_python.py"),
        &env,
    );
    judge("python", &python, &reference);
    // json, text, srt, vtt, verbose_json and a translation: six jobs.
    assert_eq!(jobs_of(&app, account).await, 6);

    // The same request again waits on the job it made: no new job, no
    // second charge, the same text.
    let key = &env[1].1;
    let usage_before: Value = app.get_json("/v1/usage", key).await;
    let again = transcribe(&app, key, std::fs::read(&audio).expect("audio"), &[]).await;
    assert_eq!(again.0, 200, "{}", again.1);
    assert_eq!(again.1["text"], python["json"]);
    assert_eq!(jobs_of(&app, account).await, 6);
    let usage_after: Value = app.get_json("/v1/usage", key).await;
    for resource in ["requests", "audio_seconds", "processing_seconds"] {
        assert_eq!(
            usage_before["resources"][resource], usage_after["resources"][resource],
            "{resource}"
        );
    }

    let (_, mut env) = client_env(&app, &admin, &audio).await;
    let module = clients.join("node/node_modules/openai");
    env.push(("OPENAI_MODULE", module.display().to_string()));
    let node = run_client(Path::new("/usr/bin/node"), &script("openai_node.cjs"), &env);
    judge("node", &node, &reference);
}

/// Posts an OpenAI transcription form; returns the status and the body.
async fn transcribe(
    app: &TestApp,
    key: &str,
    wav: Vec<u8>,
    fields: &[(&str, &str)],
) -> (u16, Value) {
    let mut form = Form::new()
        .part("file", Part::bytes(wav).file_name("speech.wav"))
        .text("model", "whisper-1");
    for (name, value) in fields {
        form = form.text(name.to_string(), value.to_string());
    }
    let response = app
        .http
        .post(format!("{}/v1/audio/transcriptions", app.api_url))
        .bearer_auth(key)
        .multipart(form)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json body"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_result_past_the_wait_is_an_error_naming_its_job_and_a_retry_waits_on_the_same_job() {
    // No worker: the job stays queued.
    let app = TestApp::spawn_with(common::Options {
        worker: false,
        api_env: vec![("VOXQ_RESULT_WAIT".into(), "1".into())],
        ..common::Options::default()
    })
    .await;
    let (account, key) = app.new_account().await;
    let wav = speech::wav_16k("Thank you very much for your help yesterday.");

    let (status, body) = transcribe(&app, &key, wav.clone(), &[]).await;
    assert_eq!(status, 504, "{body}");
    let error = &body["error"];
    assert_eq!(error["code"], "job_pending", "{body}");
    assert_eq!(error["type"], "server_error", "{body}");
    let id: Uuid = sqlx::query_scalar("select id from jobs where account_id = $1")
        .bind(account)
        .fetch_one(&app.db)
        .await
        .expect("one job");
    let message = error["message"].as_str().expect("message");
    assert!(message.contains(&format!("/v1/jobs/{id}")), "{message}");

    // A retry (as the SDKs make after a 5xx) waits on that job.
    let (status, body) = transcribe(&app, &key, wav.clone(), &[]).await;
    assert_eq!(status, 504, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .expect("message")
        .contains(&id.to_string()));
    assert_eq!(jobs_of(&app, account).await, 1);
    // Another request (another format) is another job.
    let (status, _) = transcribe(&app, &key, wav.clone(), &[("response_format", "text")]).await;
    assert_eq!(status, 504);
    assert_eq!(jobs_of(&app, account).await, 2);
    // A cancelled job is not waited on again: the same request makes a new one.
    let response = app
        .call(
            Method::POST,
            &format!("/v1/jobs/{id}/cancel"),
            Some(&key),
            None,
        )
        .await;
    assert!(response.status().is_success(), "{}", response.status());
    let (status, body) = transcribe(&app, &key, wav, &[]).await;
    assert_eq!(status, 504, "{body}");
    assert!(!body["error"]["message"]
        .as_str()
        .expect("message")
        .contains(&id.to_string()));
    assert_eq!(jobs_of(&app, account).await, 3);
}

/// Extra multipart fields sent beside the file and model.
type Fields<'a> = &'a [(&'a str, &'a str)];

#[tokio::test(flavor = "multi_thread")]
async fn openai_routes_refuse_bad_parameters_in_openais_error_shape() {
    let app = TestApp::spawn_without_worker().await;
    let (_, key) = app.new_account().await;
    let wav = speech::wav_16k("Hello.");
    let cases: [(Fields, &str, &str); 5] = [
        (&[("temperature", "7")], "temperature", "invalid_parameter"),
        (&[("language", "xx")], "language", "unknown_language"),
        (
            &[("timestamp_granularities[]", "word")],
            "timestamp_granularities",
            "invalid_value",
        ),
        (&[("stream", "true")], "stream", "invalid_value"),
        (&[("colour", "blue")], "colour", "unknown_parameter"),
    ];
    for (fields, param, code) in cases {
        let (status, body) = transcribe(&app, &key, wav.clone(), fields).await;
        assert_eq!(status, 400, "{fields:?}: {body}");
        assert_eq!(body["error"]["param"], param, "{body}");
        assert_eq!(body["error"]["code"], code, "{body}");
        assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    }
    // Not audio at all.
    let (status, body) = transcribe(&app, &key, b"not audio".to_vec(), &[]).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["param"], "file", "{body}");
    // No key: OpenAI's shape too, from the authentication layer.
    let response = app
        .http
        .post(format!("{}/v1/audio/transcriptions", app.api_url))
        .multipart(Form::new().text("model", "whisper-1"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "invalid_api_key", "{body}");
}
