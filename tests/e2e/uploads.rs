//! Large uploads: spooled outside memory, stored byte for byte, recognised
//! by their whole content for idempotency, refused past the limit, and
//! nothing left behind in the spool directory.

use crate::common::{error_code, Options, TestApp};

use reqwest::multipart::{Form, Part};

/// A 16 kHz mono WAV of `seconds` of a quiet tone, sample values varying so
/// that every byte range differs from every other.
fn tone_wav(seconds: u32) -> Vec<u8> {
    let samples = 16_000 * seconds;
    let data = samples * 2;
    let mut wav = Vec::with_capacity(44 + data as usize);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    for field in [16u32.to_le_bytes(), [1, 0, 1, 0], 16_000u32.to_le_bytes()] {
        wav.extend_from_slice(&field);
    }
    wav.extend_from_slice(&32_000u32.to_le_bytes());
    wav.extend_from_slice(&[2, 0, 16, 0]);
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data.to_le_bytes());
    for i in 0..samples {
        let t = i as f32 / 16_000.0;
        let value = (t * 440.0 * std::f32::consts::TAU).sin() * 800.0 + (i % 7) as f32;
        wav.extend_from_slice(&(value as i16).to_le_bytes());
    }
    wav
}

async fn upload(app: &TestApp, key: &str, idem: &str, wav: &[u8]) -> reqwest::Response {
    app.http
        .post(format!("{}/v1/jobs", app.api_url))
        .bearer_auth(key)
        .header("idempotency-key", idem)
        .multipart(Form::new().part("file", Part::bytes(wav.to_vec()).file_name("big.wav")))
        .send()
        .await
        .expect("request")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_upload_is_spooled_stored_whole_and_fingerprinted_whole() {
    let spool = tempfile::tempdir().expect("spool dir");
    let app = TestApp::spawn_with(Options {
        worker: false,
        api_env: vec![
            (
                "VOXQ_UPLOAD_DIR".into(),
                spool.path().to_string_lossy().into_owned(),
            ),
            (
                "VOXQ_MAX_UPLOAD_BYTES".into(),
                (4 * 1024 * 1024).to_string(),
            ),
        ],
        ..Options::default()
    })
    .await;
    let (_, key) = app.new_account().await;
    // 3 MiB: past what the API keeps in memory.
    let wav = tone_wav(100);
    assert!(wav.len() > 3 * 1024 * 1024);

    let first = upload(&app, &key, "big-1", &wav).await;
    assert_eq!(first.status(), 202);
    let first = first.bytes().await.expect("body");
    let id: uuid::Uuid = serde_json::from_slice::<serde_json::Value>(&first).expect("json")["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let (stored, size, seconds): (Vec<u8>, i64, f64) = sqlx::query_as(
        "select data, size_bytes, duration_seconds from job_inputs where job_id = $1",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .expect("stored input");
    assert_eq!(size as usize, wav.len());
    assert!(stored == wav, "the stored upload differs from the sent one");
    assert!((seconds - 100.0).abs() < 0.01, "{seconds}");

    // The same bytes replay; bytes that differ only in the last sample,
    // far past the first mebibyte, are another request.
    let again = upload(&app, &key, "big-1", &wav).await;
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.bytes().await.expect("body"), first);
    let mut changed = wav.clone();
    if let Some(last) = changed.last_mut() {
        *last ^= 0x40;
    }
    let other = upload(&app, &key, "big-1", &changed).await;
    assert_eq!(error_code(other, 422).await, "idempotency_key_reused");

    // Past the limit: refused as it arrives, and the API goes on.
    let huge = tone_wav(140);
    let refused = upload(&app, &key, "huge-1", &huge).await;
    assert_eq!(error_code(refused, 413).await, "payload_too_large");
    let small = upload(&app, &key, "small-1", &tone_wav(2)).await;
    assert_eq!(small.status(), 202);

    // Spooled files are unnamed: none outlives its request.
    let left: Vec<_> = std::fs::read_dir(spool.path())
        .expect("spool dir")
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
