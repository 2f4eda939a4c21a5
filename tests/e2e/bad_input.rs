//! Bad input of every kind gets a clear 4xx in the one error shape, nothing
//! crashes, and the next good job still succeeds.
//!
//! Longer than most files: the two upload tests each walk a whole
//! catalogue of bad audio against one spawned stack (one per case would
//! start a worker each time), then prove a good job still runs; the
//! helpers that forge lying headers (`ogg_claiming`, `flac_claiming`, …)
//! serve the test about them and sit beside it.

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

/// The CRC of an Ogg page (polynomial 0x04c11db7, unreflected), its own
/// CRC field counted as zero.
fn ogg_crc(page: &[u8]) -> u32 {
    let mut crc = 0u32;
    for (i, &byte) in page.iter().enumerate() {
        let byte = if (22..26).contains(&i) { 0 } else { byte };
        crc ^= u32::from(byte) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04c1_1db7
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The Ogg Vorbis file with its identification header saying `rate` and
/// `channels`, its page checksum made right again.
fn ogg_claiming(mut ogg: Vec<u8>, rate: u32, channels: u8) -> Vec<u8> {
    let segments = usize::from(ogg[26]);
    let body: usize = ogg[27..27 + segments].iter().map(|&s| usize::from(s)).sum();
    let packet = 27 + segments;
    assert_eq!(
        &ogg[packet..packet + 7],
        b"\x01vorbis",
        "an identification header"
    );
    ogg[packet + 11] = channels;
    ogg[packet + 12..packet + 16].copy_from_slice(&rate.to_le_bytes());
    let end = packet + body;
    let crc = ogg_crc(&ogg[..end]);
    ogg[22..26].copy_from_slice(&crc.to_le_bytes());
    ogg
}

/// The FLAC file with its STREAMINFO saying `rate` (20 bits).
fn flac_claiming(mut flac: Vec<u8>, rate: u32) -> Vec<u8> {
    // "fLaC", the block header, then 10 bytes before the rate.
    let at = 4 + 4 + 10;
    let mut packed = u64::from_be_bytes(flac[at..at + 8].try_into().expect("8 bytes"));
    packed = (packed & !(0xF_FFFF << 44)) | (u64::from(rate & 0xF_FFFF) << 44);
    flac[at..at + 8].copy_from_slice(&packed.to_be_bytes());
    flac
}

/// The FLAC file with a Vorbis comment block (right after STREAMINFO) whose
/// one comment claims `claimed` bytes: a decoder that allocates what the
/// header says before reading asks for gigabytes (found by ops/fuzz.sh).
fn flac_with_comment_claiming(flac: &[u8], claimed: u32) -> Vec<u8> {
    let mut block = Vec::new();
    block.extend_from_slice(&0u32.to_le_bytes()); // vendor string length
    block.extend_from_slice(&1u32.to_le_bytes()); // one comment
    block.extend_from_slice(&claimed.to_le_bytes());
    block.extend_from_slice(b"TITLE=x");
    let mut out = flac[..42].to_vec();
    out[4] &= 0x7f; // STREAMINFO is not the last block any more
    out.push(4); // VORBIS_COMMENT, not last
    out.extend_from_slice(&(block.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&block);
    out.extend_from_slice(&flac[42..]);
    out
}

/// A WAV whose `fmt ` chunk says `rate` and `channels`.
fn wav_claiming(mut wav: Vec<u8>, rate: u32, channels: u16) -> Vec<u8> {
    wav[22..24].copy_from_slice(&channels.to_le_bytes());
    wav[24..28].copy_from_slice(&rate.to_le_bytes());
    wav
}

#[tokio::test(flavor = "multi_thread")]
async fn audio_whose_headers_lie_is_refused_and_a_memory_capped_worker_survives_it() {
    let allow = common::local_fetch_env();
    let mut worker_env = allow.clone();
    // Far above what the worker needs, far below what a resampler sized
    // from a lying header would ask for.
    worker_env.push((common::ADDRESS_SPACE_MB.to_owned(), "4096".to_owned()));
    let mut app = TestApp::spawn_with(Options {
        api_env: allow,
        worker_env,
        ..Options::default()
    })
    .await;
    let (_, key) = app.new_account().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let source = speech::espeak_wav(dir.path(), "Thank you very much for your help yesterday.");
    let wav = speech::transcode(&source, "wav", 16_000, 1);
    let flac = speech::transcode(&source, "flac", 16_000, 1);
    let ogg = speech::transcode(&source, "ogg", 16_000, 1);
    let mp3 = speech::transcode(&source, "mp3", 16_000, 1);
    let mut garbled_mp3 = mp3.clone();
    for i in (400..garbled_mp3.len()).step_by(97) {
        garbled_mp3[i] ^= 0x5a;
    }
    let corpus: Vec<(&str, Vec<u8>)> = vec![
        ("wav-1ghz", wav_claiming(wav.clone(), 1_000_000_000, 1)),
        ("wav-4khz", wav_claiming(wav.clone(), 4_000, 1)),
        ("wav-0hz", wav_claiming(wav.clone(), 0, 1)),
        ("wav-64ch", wav_claiming(wav.clone(), 16_000, 64)),
        ("flac-1mhz", flac_claiming(flac.clone(), 1_000_000)),
        ("ogg-1ghz", ogg_claiming(ogg.clone(), 1_000_000_000, 1)),
        ("ogg-200ch", ogg_claiming(ogg.clone(), 16_000, 200)),
        ("mp3-garbled", garbled_mp3),
        ("flac-cut", flac[..flac.len() / 3].to_vec()),
        (
            "flac-comment-4gb",
            flac_with_comment_claiming(&flac, 0xF000_0000),
        ),
    ];

    // Uploads: refused at the door, each with a 4xx in the error shape.
    let mut refused = Vec::new();
    for (name, bytes) in &corpus {
        let response = app
            .submit_audio(&key, bytes.clone(), &format!("{name}.bin"))
            .await;
        let status = response.status().as_u16();
        if status == 202 {
            continue; // Damage a decoder can play through: the worker's turn.
        }
        assert!((400..500).contains(&status), "{name}: {status}");
        refused.push(*name);
        error_code(response, status).await;
    }
    for must in [
        "wav-1ghz",
        "wav-4khz",
        "wav-0hz",
        "wav-64ch",
        "flac-1mhz",
        "ogg-1ghz",
        "ogg-200ch",
    ] {
        assert!(refused.contains(&must), "{must} was accepted");
    }

    // Fetched by the worker: the same checks, a clean `failed` each time,
    // and the worker (under its address-space limit) lives on.
    let served = corpus.clone();
    let port = common::serve_local(axum::Router::new().route(
        "/{name}",
        axum::routing::get(
            move |axum::extract::Path(name): axum::extract::Path<String>| {
                let served = served.clone();
                async move {
                    served
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, b)| b.clone())
                        .unwrap_or_default()
                }
            },
        ),
    ))
    .await;
    for (name, _) in &corpus {
        let response = app
            .submit_form(
                &key,
                Form::new().text("audio_url", format!("http://127.0.0.1:{port}/{name}")),
            )
            .await;
        assert_eq!(response.status(), 202, "{name}");
        let id = response.json::<serde_json::Value>().await.expect("json")["id"]
            .as_str()
            .expect("id")
            .to_owned();
        let job = app.wait_for_job(&key, &id, Duration::from_secs(120)).await;
        let status = job["status"].as_str().expect("status");
        assert!(
            status == "failed" || (status == "succeeded" && !refused.contains(name)),
            "{name}: {job}"
        );
        if status == "failed" {
            let code = job["error"]["code"].as_str().expect("code");
            assert!(
                [
                    "unsupported_sample_rate",
                    "too_many_channels",
                    "invalid_audio",
                    "unsupported_media_type"
                ]
                .contains(&code),
                "{name}: {job}"
            );
        }
    }
    assert!(
        !app.worker_exited(Duration::from_millis(100)),
        "the worker died"
    );
    let good = app.submit_ok(&key, wav, "good.wav").await;
    let job = app
        .wait_for_job(&key, &good, Duration::from_secs(120))
        .await;
    assert_eq!(job["status"], "succeeded", "{job}");
}

/// JSON may carry U+0000 in a string; Postgres text may not. Every JSON
/// route refuses it before storing anything (schemathesis found the keys
/// and login routes answering 500).
#[tokio::test(flavor = "multi_thread")]
async fn nul_characters_in_json_bodies_are_refused_not_stored() {
    let app = TestApp::spawn_without_worker().await;
    let (_, key) = app.new_account().await;
    let admin = app.admin_key().await;
    let bodies: [(&str, &str, Option<&str>); 6] = [
        (
            "/v1/keys",
            r#"{"name":"a\u0000b","scopes":["jobs:read"]}"#,
            Some(&key),
        ),
        (
            "/v1/auth/login",
            r#"{"email":"\u0000@x.io","password":"0123456789ab"}"#,
            None,
        ),
        (
            "/v1/webhooks",
            r#"{"url":"https://example.com/\u0000","event_types":[]}"#,
            Some(&key),
        ),
        (
            "/v1/jobs",
            r#"{"kind":"translate","text":"Hi\u0000","target_language":"de"}"#,
            Some(&key),
        ),
        (
            "/v1/admin/accounts",
            r#"{"name":"acme\u0000","tier":"pro"}"#,
            Some(&admin),
        ),
        (
            "/v1/keys",
            r#"{"name":"ok","scopes":["jobs:read"],"\u0000":1}"#,
            Some(&key),
        ),
    ];
    for (path, body, token) in bodies {
        let mut request = app
            .http
            .post(format!("{}{path}", app.api_url))
            .header("content-type", "application/json")
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        assert_eq!(
            error_code(response, 422).await,
            "invalid_body",
            "{path} {body}"
        );
    }
    // Nothing was stored, and the same routes still work.
    let keys = app.get_json("/v1/keys", &key).await;
    assert_eq!(keys["keys"].as_array().map(Vec::len), Some(1), "{keys}");
    let created = app
        .call(
            reqwest::Method::POST,
            "/v1/keys",
            Some(&key),
            Some(serde_json::json!({"name": "fine", "scopes": ["jobs:read"]})),
        )
        .await;
    assert_eq!(created.status(), 201);
}
