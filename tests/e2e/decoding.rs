//! Decoding parameters reach the engines: a prompt teaches both Whisper
//! engines a spelling (through `/v1/jobs` and OpenAI's route), the first
//! temperature shows in the segments, segments carry `seek` and `tokens`,
//! and translations return their alternatives after the same best text.

use crate::common;

use std::time::Duration;

use crate::engines::spawn;
use common::{speech, TestApp};
use reqwest::multipart::{Form, Part};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(300);

/// Names tiny.en cannot spell from espeak-ng's voice alone.
const SPOKEN: &str = "Please call Siobhan Ngozi about the Quarvex report.";
const PROMPT: &str = "Siobhan Ngozi, Quarvex.";

/// Submits `wav` with `fields` and waits for the job to succeed.
async fn transcript(app: &TestApp, key: &str, wav: &[u8], fields: &[(&str, &str)]) -> Value {
    let id = app.submit_wav_with(key, wav.to_vec(), fields).await;
    let job = app.wait_for_job(key, &id, WAIT).await;
    assert_eq!(job["status"], "succeeded", "{fields:?}: {job}");
    job["result"].clone()
}

fn text(result: &Value) -> &str {
    result["text"].as_str().expect("text")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prompt_teaches_both_whisper_engines_a_spelling() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn(&dir).await;
    let (_, key) = app.new_account().await;
    let wav = speech::wav_16k(SPOKEN);

    for model in ["whisper-tiny.en", "whisper-tiny.en-cpp"] {
        let plain = transcript(&app, &key, &wav, &[("model", model)]).await;
        assert!(!text(&plain).contains("Quarvex"), "{model}: {plain}");
        let prompted = transcript(&app, &key, &wav, &[("model", model), ("prompt", PROMPT)]).await;
        for name in ["Siobhan", "Quarvex"] {
            assert!(text(&prompted).contains(name), "{model}: {prompted}");
        }
        // Segments say where their window starts and which tokens they are.
        let segment = &prompted["segments"][0];
        assert_eq!(segment["seek"], 0, "{model}: {segment}");
        let tokens = segment["tokens"].as_array().expect("tokens");
        assert!(tokens.len() >= 5, "{model}: {segment}");
        assert!(tokens.iter().all(Value::is_u64), "{model}: {segment}");
    }

    // OpenAI's route passes its `prompt` to the same engine.
    let form = Form::new()
        .part("file", Part::bytes(wav).file_name("speech.wav"))
        .text("model", "whisper-1")
        .text("prompt", PROMPT)
        .text("response_format", "verbose_json");
    let response = app
        .http
        .post(format!("{}/v1/audio/transcriptions", app.api_url))
        .bearer_auth(&key)
        .multipart(form)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert!(text(&body).contains("Quarvex"), "{body}");
    assert!(!body["segments"][0]["tokens"]
        .as_array()
        .expect("tokens")
        .is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_temperature_reaches_both_whisper_engines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn(&dir).await;
    let (_, key) = app.new_account().await;
    let wav = speech::wav_16k(&speech::text());

    let beam = transcript(&app, &key, &wav, &[]).await;
    let sampled = transcript(&app, &key, &wav, &[("temperature", "0.4")]).await;
    let temperatures = |result: &Value| -> Vec<f64> {
        result["segments"]
            .as_array()
            .expect("segments")
            .iter()
            .map(|s| s["temperature"].as_f64().expect("temperature"))
            .collect()
    };
    // Clean speech passes the checks at the first temperature tried; a
    // window that failed them would go higher, never lower.
    assert!(temperatures(&beam).iter().all(|&t| t == 0.0), "{beam}");
    let sampled_temperatures = temperatures(&sampled);
    assert!(!sampled_temperatures.is_empty(), "{sampled}");
    assert!(sampled_temperatures.iter().all(|&t| t >= 0.4), "{sampled}");
    assert!(!text(&sampled).trim().is_empty(), "{sampled}");

    // whisper.cpp samples too (it reports no per-segment temperature).
    let cpp = transcript(
        &app,
        &key,
        &wav,
        &[("model", "whisper-tiny.en-cpp"), ("temperature", "0.6")],
    )
    .await;
    assert!(!text(&cpp).trim().is_empty(), "{cpp}");
}

#[tokio::test(flavor = "multi_thread")]
async fn translations_return_distinct_alternatives_after_the_same_best_text() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn(&dir).await;
    let (_, key) = app.new_account().await;
    let source = "The cat sees a dog. The dog is happy!\n\nA new paragraph starts here.";

    // Submitted together, so that they may share a batch: a request with
    // alternatives must not change the other's result.
    let mut ids = Vec::new();
    for alternatives in [0, 2, 3] {
        let body = json!({"kind": "translate", "text": source, "target_language": "de",
                          "alternatives": alternatives});
        let response = app
            .call(reqwest::Method::POST, "/v1/jobs", Some(&key), Some(body))
            .await;
        let status = response.status();
        let body: Value = response.json().await.expect("json");
        assert_eq!(status, 202, "{body}");
        ids.push(body["id"].as_str().expect("id").to_owned());
    }
    let mut results = Vec::new();
    for id in &ids {
        let job = app.wait_for_job(&key, id, WAIT).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        results.push(job["result"].clone());
    }
    let best = text(&results[0]);
    assert!(results[0].get("alternatives").is_none(), "{}", results[0]);
    for (result, asked) in results[1..].iter().zip([2, 3]) {
        // The beam that finds the alternatives finds the same best text.
        assert_eq!(text(result), best, "{result}");
        let alternatives: Vec<&str> = result["alternatives"]
            .as_array()
            .expect("alternatives")
            .iter()
            .map(|a| a.as_str().expect("string"))
            .collect();
        assert!(
            (1..=asked).contains(&alternatives.len()),
            "{asked}: {result}"
        );
        for (i, alternative) in alternatives.iter().enumerate() {
            assert_ne!(*alternative, best, "{result}");
            assert!(!alternatives[..i].contains(alternative), "{result}");
            // Paragraphs are kept in every alternative.
            assert_eq!(alternative.split("\n\n").count(), 2, "{result}");
        }
    }
    // Out of range is refused before anything is queued.
    let response = app
        .call(
            reqwest::Method::POST,
            "/v1/jobs",
            Some(&key),
            Some(
                json!({"kind": "translate", "text": source, "target_language": "de",
                        "alternatives": 4}),
            ),
        )
        .await;
    assert_eq!(response.status(), 422);
}
