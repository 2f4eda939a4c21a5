//! Bad input of every kind gets a clear 4xx in the one error shape, nothing
//! crashes, and the next good job still succeeds.

use crate::common;

use std::time::Duration;

use common::{error_code, speech, Options, TestApp};
use reqwest::multipart::{Form, Part};

const UPLOAD_LIMIT: usize = 1_000_000;

#[tokio::test(flavor = "multi_thread")]
async fn bad_uploads_are_refused_with_clear_errors_and_the_service_keeps_working() {
    let app = TestApp::spawn_with(Options {
        api_env: vec![("VOXQ_MAX_UPLOAD_BYTES".into(), UPLOAD_LIMIT.to_string())],
        ..Options::default()
    })
    .await;
    let (_, key) = app.new_account().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let source = speech::espeak_wav(dir.path(), "Thank you very much for your help yesterday.");
    let mp3 = speech::transcode(&source, "mp3", 16_000, 1);

    // Empty file.
    let code = error_code(app.submit_audio(&key, Vec::new(), "empty.wav").await, 422).await;
    assert_eq!(code, "invalid_audio");

    // An mp3 cut inside its first frame.
    let truncated = mp3[..mp3.len().min(300)].to_vec();
    let response = app.submit_audio(&key, truncated, "cut.mp3").await;
    assert!(response.status().is_client_error(), "{}", response.status());
    error_code(response, 422).await;

    // Random bytes with an audio name.
    let junk: Vec<u8> = (0..50_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let code = error_code(app.submit_audio(&key, junk, "noise.wav").await, 415).await;
    assert_eq!(code, "unsupported_media_type");

    // A WAV header promising audio that is not there.
    let mut lying = speech::transcode(&source, "wav", 16_000, 1);
    lying.truncate(44);
    error_code(app.submit_audio(&key, lying, "header.wav").await, 422).await;

    // 0.05 s of audio.
    let mut short = speech::transcode(&source, "wav", 16_000, 1);
    short.truncate(44 + 1600);
    let code = error_code(app.submit_audio(&key, short, "short.wav").await, 422).await;
    assert_eq!(code, "audio_too_short");

    // Over the size limit.
    let big = speech::transcode(&source, "wav", 48_000, 2);
    let mut huge = big.clone();
    while huge.len() <= UPLOAD_LIMIT {
        huge.extend_from_slice(&big[44..]);
    }
    let code = error_code(app.submit_audio(&key, huge, "huge.wav").await, 413).await;
    assert_eq!(code, "payload_too_large");

    // Unknown language, unknown field, unknown model.
    let form = || Form::new().part("file", Part::bytes(mp3.clone()).file_name("a.mp3"));
    let code = error_code(
        app.submit_form(&key, form().text("language", "xx")).await,
        422,
    )
    .await;
    assert_eq!(code, "unknown_language");
    error_code(
        app.submit_form(&key, form().text("colour", "blue")).await,
        400,
    )
    .await;
    let code = error_code(
        app.submit_form(&key, form().text("model", "nope")).await,
        422,
    )
    .await;
    assert_eq!(code, "unknown_model");
    error_code(
        app.submit_form(&key, Form::new().text("language", "en"))
            .await,
        400,
    )
    .await;

    // Wrong content type and invalid JSON.
    let url = format!("{}/v1/jobs", app.api_url);
    let response = app.submit_raw(&key, "text/plain", "hello").await;
    error_code(response, 415).await;
    let response = app.submit_raw(&key, "application/json", "{not json").await;
    error_code(response, 400).await;
    // Text jobs: every field checked before anything is stored.
    let text_job = |fields: serde_json::Value| {
        let mut body =
            serde_json::json!({"kind": "translate", "text": "hola", "target_language": "en"});
        for (k, v) in fields.as_object().expect("object") {
            body[k] = v.clone();
        }
        body.to_string()
    };
    for (fields, code) in [
        (
            serde_json::json!({"target_language": "xx"}),
            "unknown_language",
        ),
        (
            serde_json::json!({"target_language": "english"}),
            "unknown_language",
        ),
        (serde_json::json!({"text": "   "}), "invalid_text"),
        (
            serde_json::json!({"text": "a".repeat(100_001)}),
            "text_too_long",
        ),
        (serde_json::json!({"model": "nllb-huge"}), "unknown_model"),
        (serde_json::json!({"kind": "summarise"}), "invalid_kind"),
    ] {
        let response = app
            .submit_raw(&key, "application/json", &text_job(fields.clone()))
            .await;
        assert_eq!(error_code(response, 422).await, code, "{fields}");
    }
    let response = app
        .submit_raw(
            &key,
            "application/json",
            r#"{"kind":"translate","text":"hi","target_language":"de","extra":1}"#,
        )
        .await;
    error_code(response, 400).await;

    // Credentials: none, malformed, wrong, hostile.
    let response = app
        .http
        .post(&url)
        .multipart(form())
        .send()
        .await
        .expect("send");
    assert_eq!(error_code(response, 401).await, "unauthorized");
    let wrong = key.replace(&key[10..14], "0000");
    assert_eq!(
        error_code(app.submit_form(&wrong, form()).await, 401).await,
        "unauthorized"
    );
    let (_, other_key) = app.new_account().await;
    let forged = format!(
        "{}{}",
        &other_key[..other_key.len() - 6],
        &key[key.len() - 6..]
    );
    error_code(app.submit_form(&forged, form()).await, 401).await;
    let response = app
        .http
        .get(format!("{url}/x"))
        .header("authorization", "Basic Zm9vOmJhcg==")
        .send()
        .await
        .expect("send");
    error_code(response, 401).await;
    let response = app
        .http
        .get(format!("{url}/x"))
        .header("authorization", format!("Bearer {}", "A".repeat(6000)))
        .send()
        .await
        .expect("send");
    error_code(response, 401).await;

    // Everything above was refused at the door: no job rows exist.
    let jobs: i64 = sqlx::query_scalar("select count(*) from jobs")
        .fetch_one(&app.db)
        .await
        .expect("count");
    assert_eq!(jobs, 0);

    // And the service still works end to end.
    let id = app.submit_ok(&key, mp3, "good.mp3").await;
    let job = app.wait_for_job(&key, &id, Duration::from_secs(300)).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let live = app
        .http
        .get(format!(
            "{}/health/live",
            app.worker_url.as_ref().expect("worker")
        ))
        .send()
        .await
        .expect("worker alive");
    assert_eq!(live.status(), 200);
}
