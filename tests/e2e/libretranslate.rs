//! The LibreTranslate-compatible routes against a running API and a
//! worker serving the generated translation model: libretranslatepy
//! (ops/fetch-clients.sh) translating, listing languages, detecting, and
//! raising for a wrong key, a spent quota and a bad language; then what
//! other clients send: JSON lists, HTML, `auto`, keys in headers, forms,
//! and the refusals, all in LibreTranslate's shapes.
//!
//! Longer than most files: the second test runs every body a
//! LibreTranslate client may send, and every refusal, against one spawned
//! API and translation worker rather than starting one per case; it
//! shares `spawn` and its models file with the client library's test.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{models_file, models_root, Options, TestApp};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

/// English the test model translates, long enough to detect.
const TEXT: &str = "The cat sees a dog. The dog is happy!";
const GERMAN: &str = "Der Hund ist glücklich und die Katze schläft im Garten.";

fn models_toml() -> String {
    format!(
        r#"
[[models]]
name = "translate-test"
engine = "ct2-translate"
path = "{root}/translate-test"
threads = 1
max_decoding_length = 12
default = true
"#,
        root = models_root().display()
    )
}

async fn spawn(dir: &tempfile::TempDir, api_env: Vec<(String, String)>) -> TestApp {
    TestApp::spawn_with(Options {
        models_file: Some(models_file(dir.path(), &models_toml())),
        api_env,
        ..Options::default()
    })
    .await
}

fn python() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache"));
    cache.join("voxq/clients/python/bin/python")
}

/// An account whose daily characters are spent after one.
async fn spent_key(app: &TestApp) -> String {
    let admin = app.admin_key().await;
    let (spent, key) = app.new_account().await;
    let response = app
        .call(
            Method::PATCH,
            &format!("/v1/admin/accounts/{spent}"),
            Some(&admin),
            Some(json!({"limits": {"text_chars_per_day": 1}})),
        )
        .await;
    assert_eq!(response.status(), 200);
    key
}

async fn translate_jobs(app: &TestApp, account: Uuid) -> i64 {
    sqlx::query_scalar("select count(*) from jobs where account_id = $1 and kind = 'translate'")
        .bind(account)
        .fetch_one(&app.db)
        .await
        .expect("count")
}

/// A LibreTranslate error: the status and a non-empty `{"error": "…"}`.
fn assert_refused(answer: &Value, status: u16, case: &str) {
    assert_eq!(answer["status"], status, "{case}: {answer}");
    let message = answer["body"]["error"].as_str().unwrap_or("");
    assert!(!message.is_empty(), "{case}: {answer}");
    assert_eq!(
        answer["body"].as_object().map(|o| o.len()),
        Some(1),
        "{case}: {answer}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn libretranslatepy_translates_lists_detects_and_raises_for_key_quota_and_language() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn(&dir, Vec::new()).await;
    let (account, key) = app.new_account().await;
    let quota_key = spent_key(&app).await;
    let program = python();
    assert!(
        program.exists(),
        "{} is missing: ops/test.sh installs the clients (ops/fetch-clients.sh)",
        program.display()
    );
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/clients/libretranslate_python.py");
    let output = Command::new(&program)
        .arg(&script)
        .env("BASE", &app.api_url)
        .env("KEY", &key)
        .env("WRONG_KEY", "voxq_notakey_0000000000000000")
        .env("QUOTA_KEY", &quota_key)
        .env("TEXT", TEXT)
        .env("GERMAN", GERMAN)
        .output()
        .expect("the client runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the client failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out: Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));

    let languages = out["languages"].as_array().expect("languages");
    let codes: Vec<&str> = languages
        .iter()
        .filter_map(|l| l["code"].as_str())
        .collect();
    assert_eq!(codes, ["de", "en", "es", "fr"], "{out}");
    let english = &languages[1];
    assert_eq!(english["name"], "English");
    assert_eq!(english["targets"], json!(["de", "es", "fr"]));
    let translation = out["translation"].as_str().expect("translatedText");
    assert!(!translation.trim().is_empty(), "{out}");
    assert_eq!(out["detected"][0]["language"], "de", "{out}");
    let confidence = out["detected"][0]["confidence"]
        .as_f64()
        .expect("confidence");
    assert!(confidence > 0.0 && confidence <= 100.0, "{out}");

    // `auto` detected German and translated it.
    assert!(
        out["auto"].as_str().is_some_and(|t| !t.trim().is_empty()),
        "{out}"
    );
    // A list: one translation per text, the language detected once for
    // the request (one job, one source) and given per text.
    let list = &out["list"];
    assert_eq!(
        list["translatedText"].as_array().map(Vec::len),
        Some(2),
        "{out}"
    );
    assert_eq!(
        list["detectedLanguage"].as_array().map(Vec::len),
        Some(2),
        "{out}"
    );
    let html = out["html"]["translatedText"].as_str().expect("html");
    assert!(
        html.starts_with("<p class=\"x\">") && html.ends_with("</p>"),
        "{out}"
    );

    assert_refused(&out["wrong_key"], 403, "wrong key");
    assert_refused(&out["no_key"], 403, "no key");
    assert_refused(&out["quota"], 429, "spent quota");
    assert_refused(&out["bad_language"], 400, "bad language");
    // Each translation was a job like any other: the text, auto, the
    // list, the HTML.
    assert_eq!(translate_jobs(&app, account).await, 4);
}

/// Posts LibreTranslate JSON and returns the status and body.
async fn post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let response = app
        .http
        .post(format!("{}{path}", app.api_url))
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_html_auto_detection_and_refusals_answer_in_libretranslates_shapes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = vec![("VOXQ_MAX_TEXT_CHARS".to_owned(), "300".to_owned())];
    let app = spawn(&dir, env).await;
    let (account, key) = app.new_account().await;

    // A list in, a list out, in its order.
    let (status, body) = post(
        &app,
        "/translate",
        json!({"q": [TEXT, "Hello world.", ""], "source": "en", "target": "de", "api_key": key}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let list = body["translatedText"].as_array().expect("a list");
    assert_eq!(list.len(), 3, "{body}");
    assert!(
        list[..2]
            .iter()
            .all(|t| t.as_str().is_some_and(|t| !t.trim().is_empty())),
        "{body}"
    );
    assert_eq!(list[2], "", "{body}");
    assert!(body.get("detectedLanguage").is_none(), "{body}");
    // The same request again (a client retrying) waits on the same job.
    let (status, again) = post(
        &app,
        "/translate",
        json!({"q": [TEXT, "Hello world.", ""], "source": "en", "target": "de", "api_key": key}),
    )
    .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again, body);
    assert_eq!(translate_jobs(&app, account).await, 1);
    // `auto`: the language detected among those the model translates.
    let (status, body) = post(
        &app,
        "/translate",
        json!({"q": "The weather is nice today and the children are playing outside.",
               "source": "auto", "target": "fr", "api_key": key, "alternatives": 2}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["detectedLanguage"]["language"], "en", "{body}");
    assert!(
        body["detectedLanguage"]["confidence"]
            .as_f64()
            .is_some_and(|c| c > 0.0),
        "{body}"
    );
    let alternatives = body["alternatives"].as_array().expect("alternatives");
    assert!(alternatives.len() <= 2, "{body}");

    // HTML: the text between the tags translated, the markup as it was.
    let html = "<p class=\"intro\" data-x='a>b'>The cat sees a dog.</p>\n<br/>\
                <b>Tom &amp; Jerry</b><!-- keep me --><script>if (1 < 2) {}</script>";
    let (status, body) = post(
        &app,
        "/translate",
        json!({"q": html, "source": "en", "target": "de", "format": "html", "api_key": key}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let out = body["translatedText"].as_str().expect("html");
    assert!(out.starts_with("<p class=\"intro\" data-x='a>b'>"), "{out}");
    assert!(out.contains("</p>\n<br/><b>"), "{out}");
    assert!(
        out.ends_with("</b><!-- keep me --><script>if (1 < 2) {}</script>"),
        "{out}"
    );
    assert!(
        !out.contains("The cat sees a dog."),
        "not translated: {out}"
    );
    // Hostile HTML is refused or answered, never a crash.
    let hostile = format!("{}x{}", "<div>".repeat(5000), "<a href=\"".repeat(100));
    let (status, body) = post(
        &app,
        "/translate",
        json!({"q": hostile, "source": "en", "target": "de", "format": "html", "api_key": key}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let out = body["translatedText"].as_str().expect("html");
    assert!(out.starts_with(&"<div>".repeat(5000)), "{out}");
    assert!(out.ends_with(&"<a href=\"".repeat(100)), "{out}");

    // The key in X-API-Key or Authorization; a form or multipart body.
    for (name, value) in [
        ("x-api-key", key.clone()),
        ("authorization", format!("Bearer {key}")),
    ] {
        let response = app
            .http
            .post(format!("{}/detect", app.api_url))
            .header(name, value)
            .json(&json!({"q": GERMAN}))
            .send()
            .await
            .expect("detect");
        assert_eq!(response.status(), 200, "{name}");
        let detected: Value = response.json().await.expect("json");
        assert_eq!(detected[0]["language"], "de", "{detected}");
    }
    let form = reqwest::multipart::Form::new()
        .text("q", TEXT)
        .text("source", "en")
        .text("target", "es")
        .text("api_key", key.clone());
    let response = app
        .http
        .post(format!("{}/translate", app.api_url))
        .multipart(form)
        .send()
        .await
        .expect("multipart");
    assert_eq!(response.status(), 200);
    let response = app
        .http
        .get(format!("{}/languages?api_key={key}", app.api_url))
        .send()
        .await
        .expect("languages");
    assert_eq!(response.status(), 200);

    // Refusals: 400 with LibreTranslate's `{"error": …}`.
    let too_long = "word ".repeat(100);
    for (body, case) in [
        (json!({"source": "en", "target": "de"}), "missing q"),
        (
            json!({"q": "  ", "source": "en", "target": "de"}),
            "empty q",
        ),
        (
            json!({"q": [], "source": "en", "target": "de"}),
            "empty list",
        ),
        (json!({"q": TEXT, "target": "de"}), "missing source"),
        (json!({"q": TEXT, "source": "en"}), "missing target"),
        (
            json!({"q": too_long, "source": "en", "target": "de"}),
            "too long",
        ),
        (
            json!({"q": too_long, "source": "auto", "target": "de"}),
            "too long to detect",
        ),
        (
            json!({"q": too_long, "source": "en", "target": "en"}),
            "too long to hand back",
        ),
        (
            json!({"q": TEXT, "source": "en", "target": "xx"}),
            "unknown language",
        ),
        (
            json!({"q": TEXT, "source": "en", "target": "it"}),
            "unsupported pair",
        ),
        (
            json!({"q": TEXT, "source": "en", "target": "de", "format": "pdf"}),
            "bad format",
        ),
        (
            json!({"q": TEXT, "source": "en", "target": "de", "alternatives": 9}),
            "alternatives",
        ),
        (
            json!({"q": "12345", "source": "auto", "target": "de"}),
            "undetectable",
        ),
        (
            json!({"q": {"a": 1}, "source": "en", "target": "de"}),
            "q an object",
        ),
    ] {
        let mut body = body;
        body["api_key"] = json!(key);
        let (status, answer) = post(&app, "/translate", body).await;
        assert_eq!(status, 400, "{case}: {answer}");
        assert!(
            answer["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{case}: {answer}"
        );
    }
    // Text already in the target language comes back as sent, markup and
    // all, without a job.
    let (status, answer) = post(
        &app,
        "/translate",
        json!({"q": ["<p>Hello, <b>you</b> &amp; me</p>", TEXT], "source": "en",
               "target": "en", "format": "html", "api_key": key}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["translatedText"],
        json!(["<p>Hello, <b>you</b> &amp; me</p>", TEXT])
    );
    let (status, answer) = post(&app, "/detect", json!({"api_key": key})).await;
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = post(
        &app,
        "/translate",
        json!({"q": TEXT, "source": "en", "target": "de"}),
    )
    .await;
    assert_eq!(status, 403, "{answer}");
    assert!(answer["error"].is_string(), "{answer}");
    // Malformed JSON is a 400 in the same shape.
    let response = app
        .http
        .post(format!("{}/translate", app.api_url))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .expect("malformed");
    assert_eq!(response.status(), 400);
    assert!(response.json::<Value>().await.expect("json")["error"].is_string());

    // Only the requests that translated made jobs: the list (once), auto,
    // the HTML, the hostile HTML (its one letter), the multipart form;
    // the refused ones made none.
    assert_eq!(translate_jobs(&app, account).await, 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_address_rate_limit_comes_before_a_body_is_read() {
    let app = TestApp::spawn_with(Options {
        worker: false,
        api_env: vec![
            ("VOXQ_IP_RATE_PER_MINUTE".into(), "1".into()),
            ("VOXQ_IP_BURST".into(), "3".into()),
            // A body limit of about 66 KB (12 × 100 characters + 64 KiB).
            ("VOXQ_MAX_TEXT_CHARS".into(), "100".into()),
        ],
        ..Options::default()
    })
    .await;
    // No key: the burst's requests are read and refused for the key.
    let body = json!({"q": TEXT, "source": "en", "target": "de"});
    for _ in 0..3 {
        let (status, answer) = post(&app, "/translate", body.clone()).await;
        assert_eq!(status, 403, "{answer}");
    }
    // Past the burst, a body over the limit is refused for the address,
    // not read (reading it would answer 413).
    let oversized = json!({"q": "x".repeat(80_000), "source": "en", "target": "de"});
    let (status, answer) = post(&app, "/translate", oversized).await;
    assert_eq!(status, 429, "{answer}");
    assert!(answer["error"].is_string(), "{answer}");
}
