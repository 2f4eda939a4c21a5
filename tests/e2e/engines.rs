//! The three engines end to end through API, queue and worker: whisper.cpp
//! on the converted tiny.en against CTranslate2, translation on the
//! generated model (language codes, sentences, paragraphs, batching, the
//! result cache), speech translation with language detection, the model
//! list and the output formats.
//!
//! Longer than most files: every test here runs on the one set of test
//! models (`models_toml` and `spawn`, which `decoding` and `long_form`
//! use too) and shares the output checks (`check_srt`, `check_vtt`,
//! `check_words`) and submit helpers; a test per engine or format
//! elsewhere would take those with it or duplicate them.

use crate::common;

use std::time::Duration;

use common::{error_code, metric_value, models_file, models_root, speech, wer, Options, TestApp};
use futures::future::join_all;
use reqwest::multipart::{Form, Part};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(300);

pub(crate) fn models_toml() -> String {
    let root = models_root();
    format!(
        r#"
[[models]]
name = "whisper-tiny.en"
engine = "ct2-whisper"
path = "{root}/whisper-tiny.en"
threads = 2
batch_size = 4
default = true

[[models]]
name = "whisper-tiny.en-cpp"
engine = "whisper-cpp"
path = "{root}/ggml-tiny.en.bin"
threads = 2

[[models]]
name = "whisper-base"
engine = "ct2-whisper"
path = "{root}/whisper-base"
threads = 2

[[models]]
name = "translate-test"
engine = "ct2-translate"
path = "{root}/translate-test"
threads = 1
batch_size = 4
max_decoding_length = 12
default = true

[[models]]
name = "translate-test-spm"
engine = "ct2-translate"
path = "{root}/translate-test-spm"
threads = 1
max_decoding_length = 12
"#,
        root = root.display()
    )
}

/// An API and a worker serving every test model.
pub(crate) async fn spawn(dir: &tempfile::TempDir) -> TestApp {
    TestApp::spawn_with(Options {
        models_file: Some(models_file(dir.path(), &models_toml())),
        ..Options::default()
    })
    .await
}

async fn submit_json(app: &TestApp, key: &str, body: Value) -> reqwest::Response {
    app.call(reqwest::Method::POST, "/v1/jobs", Some(key), Some(body))
        .await
}

async fn accepted_id(response: reqwest::Response) -> String {
    let status = response.status();
    let body: Value = response.json().await.expect("json");
    assert_eq!(status, 202, "{body}");
    body["id"].as_str().expect("id").to_owned()
}

fn audio_form(wav: Vec<u8>, fields: &[(&str, &str)]) -> Form {
    let mut form = Form::new().part(
        "file",
        Part::bytes(wav)
            .file_name("speech.wav")
            .mime_str("audio/wav")
            .expect("mime"),
    );
    for (name, value) in fields {
        form = form.text(name.to_string(), value.to_string());
    }
    form
}

async fn succeeded(app: &TestApp, key: &str, id: &str) -> Value {
    let job = app.wait_for_job(key, id, WAIT).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    job
}

/// Parses SRT back: cue numbers count up, times increase and stay
/// within `duration`.
fn check_srt(srt: &str, duration: f64) -> usize {
    let to_seconds = |t: &str| {
        let (hms, ms) = t.trim().split_once(',').expect("comma");
        let parts: Vec<f64> = hms.split(':').map(|p| p.parse().expect("n")).collect();
        parts[0] * 3600.0 + parts[1] * 60.0 + parts[2] + ms.parse::<f64>().expect("ms") / 1000.0
    };
    let mut last = 0.0;
    let mut cues = 0;
    for (i, block) in srt.trim().split("\n\n").enumerate() {
        let lines: Vec<&str> = block.lines().collect();
        assert_eq!(lines[0], (i + 1).to_string(), "{srt}");
        let (start, end) = lines[1].split_once(" --> ").expect("timing line");
        let (start, end) = (to_seconds(start), to_seconds(end));
        assert!(
            start >= last - 1e-3 && start <= end && end <= duration + 0.01,
            "{srt}"
        );
        assert!(!lines[2].trim().is_empty());
        last = start;
        cues += 1;
    }
    cues
}

/// The (start, end) of each segment of a list.
fn spans(segments: &Value) -> Vec<(f64, f64)> {
    segments
        .as_array()
        .expect("segments")
        .iter()
        .map(|s| {
            (
                s["start"].as_f64().expect("s"),
                s["end"].as_f64().expect("e"),
            )
        })
        .collect()
}

/// Parses WebVTT back: the header, then cues whose `HH:MM:SS.mmm` times
/// increase and stay within `duration`, each with text.
fn check_vtt(vtt: &str, duration: f64) -> usize {
    let body = vtt.strip_prefix("WEBVTT\n\n").expect("WEBVTT header");
    let to_seconds = |t: &str| {
        let parts: Vec<f64> = t.trim().split(':').map(|p| p.parse().expect("n")).collect();
        assert_eq!(parts.len(), 3, "{t}");
        parts[0] * 3600.0 + parts[1] * 60.0 + parts[2]
    };
    let mut last = 0.0;
    let mut cues = 0;
    for block in body.trim().split("\n\n") {
        let lines: Vec<&str> = block.lines().collect();
        let (start, end) = lines[0].split_once(" --> ").expect("timing line");
        let (start, end) = (to_seconds(start), to_seconds(end));
        assert!(
            start >= last - 1e-3 && start <= end && end <= duration + 0.01,
            "{vtt}"
        );
        assert!(lines.len() >= 2 && !lines[1].trim().is_empty(), "{vtt}");
        last = start;
        cues += 1;
    }
    cues
}

/// Every segment's words: their text is the segment's, their times
/// increase and stay within the segment (which follows its words) and the
/// audio, and each has a probability. Returns the number of words.
fn check_words(result: &Value) -> usize {
    let duration = result["duration"].as_f64().expect("duration");
    let mut count = 0;
    let mut last_end = 0.0;
    for segment in result["segments"].as_array().expect("segments") {
        let words = segment["words"].as_array().expect("words");
        assert!(!words.is_empty(), "{segment}");
        let (start, end) = (
            segment["start"].as_f64().expect("s"),
            segment["end"].as_f64().expect("e"),
        );
        let mut text = String::new();
        for word in words {
            let (s, e) = (
                word["start"].as_f64().expect("s"),
                word["end"].as_f64().expect("e"),
            );
            assert!(s >= last_end - 1e-3 && s <= e, "{segment}");
            assert!(
                s >= start - 1e-3 && e <= end + 1e-3 && e <= duration + 0.05,
                "{segment}"
            );
            let p = word["probability"].as_f64().expect("probability");
            assert!((0.0..=1.0).contains(&p), "{word}");
            text.push_str(word["word"].as_str().expect("word"));
            last_end = e;
            count += 1;
        }
        assert_eq!(
            text.trim(),
            segment["text"].as_str().expect("text"),
            "{segment}"
        );
    }
    count
}

#[tokio::test(flavor = "multi_thread")]
async fn the_converted_ggml_model_transcribes_like_the_ctranslate2_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn(&dir).await;
    let (account, key) = app.new_account().await;
    let mut errors = Vec::new();
    // The CTranslate2 model's results from concurrent jobs (batch size 4).
    let mut concurrent = Vec::new();
    for model in ["whisper-tiny.en", "whisper-tiny.en-cpp"] {
        let ids = join_all(speech::SENTENCES.iter().map(|sentence| {
            let form = audio_form(speech::wav_16k(sentence), &[("model", model)]);
            async { accepted_id(app.submit_form(&key, form).await).await }
        }))
        .await;
        let mut hypothesis = String::new();
        for id in &ids {
            let job = succeeded(&app, &key, id).await;
            assert_eq!(job["params"]["model"], model);
            let verbose: Value =
                serde_json::from_str(&app.get_job_as(&key, id, "verbose_json").await)
                    .expect("json");
            assert_eq!(verbose["language"], "en");
            if model == "whisper-tiny.en" {
                concurrent.push(verbose.clone());
            }
            let duration = verbose["duration"].as_f64().expect("duration");
            for segment in verbose["segments"].as_array().expect("segments") {
                assert!(segment["avg_logprob"].as_f64().expect("avg_logprob") <= 0.0);
                assert!(segment["no_speech_prob"].as_f64().is_some());
            }
            assert!(check_srt(&app.get_job_as(&key, id, "srt").await, duration) >= 1);
            assert!(check_vtt(&app.get_job_as(&key, id, "vtt").await, duration) >= 1);
            hypothesis.push_str(verbose["text"].as_str().expect("text"));
            hypothesis.push(' ');
        }
        let error = wer::wer(&speech::text(), &hypothesis);
        assert!(error <= 0.25, "{model}: WER {error:.2}: {hypothesis}");
        errors.push(error);

        let sentence = speech::SENTENCES[0];
        let form = audio_form(
            speech::wav_16k(sentence),
            &[("model", model), ("timestamp_granularities[]", "word")],
        );
        let id = accepted_id(app.submit_form(&key, form).await).await;
        let job = succeeded(&app, &key, &id).await;
        assert_eq!(job["params"]["word_timestamps"], true);
        let words = check_words(&job["result"]);
        let spoken = sentence.split_whitespace().count();
        assert!(
            words.abs_diff(spoken) <= 2,
            "{model}: {words} words for {spoken}: {}",
            job["result"]
        );
    }
    // Batching: the same clips one at a time give exactly what they gave
    // together (the cache is off, so they really run again).
    let metrics = app.worker_metrics().await;
    let jobs = metric_value(&metrics, "voxq_worker_batch_jobs_sum", "whisper-tiny.en");
    let calls = metric_value(&metrics, "voxq_worker_batch_jobs_count", "whisper-tiny.en");
    assert!(
        jobs > calls,
        "no call batched two jobs: {jobs} jobs in {calls} calls"
    );
    sqlx::query("update accounts set result_cache = 'off' where id = $1")
        .bind(account)
        .execute(&app.db)
        .await
        .expect("opt out of the cache");
    for (sentence, together) in speech::SENTENCES.iter().zip(&concurrent) {
        let form = audio_form(speech::wav_16k(sentence), &[("model", "whisper-tiny.en")]);
        let id = accepted_id(app.submit_form(&key, form).await).await;
        let alone = succeeded(&app, &key, &id).await;
        assert_eq!(&alone["result"], together, "{sentence}");
    }

    // The conversion must not cost accuracy. It may gain some: the ggml
    // file keeps f16 weights where the CTranslate2 path runs int8, and one
    // word flipped on these 35 is already 3 points.
    assert!(
        errors[1] <= errors[0] + 0.05,
        "WER ct2 {:.3} vs whisper.cpp {:.3}",
        errors[0],
        errors[1]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn text_translation_maps_language_codes_keeps_paragraphs_batches_and_caches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn(&dir).await;
    let (account, key) = app.new_account().await;

    // The model list: what the worker serves, with kinds and languages.
    let models = app.get_json("/v1/models", &key).await;
    let list = models["data"].as_array().expect("data");
    let names: Vec<&str> = list.iter().filter_map(|m| m["name"].as_str()).collect();
    for name in [
        "translate-test",
        "whisper-base",
        "whisper-tiny.en",
        "whisper-tiny.en-cpp",
    ] {
        assert!(names.contains(&name), "{models}");
    }
    let translator = list
        .iter()
        .find(|m| m["name"] == "translate-test")
        .expect("translator");
    assert_eq!(translator["kinds"], json!(["translate"]));
    assert_eq!(translator["workers"], 1);
    let languages = translator["languages"].as_array().expect("languages");
    for code in ["de", "deu_Latn", "es", "eng_Latn"] {
        assert!(languages.contains(&json!(code)), "{translator}");
    }

    let text = "The cat sees a dog. The dog is happy!\n\nA new paragraph starts here.";
    let translate =
        |target: &str| json!({"kind": "translate", "text": text, "target_language": target});
    let iso = accepted_id(submit_json(&app, &key, translate("de")).await).await;
    let nllb = accepted_id(submit_json(&app, &key, translate("deu_Latn")).await).await;
    let iso_job = succeeded(&app, &key, &iso).await;
    let nllb_job = succeeded(&app, &key, &nllb).await;
    assert_eq!(iso_job["params"]["model"], "translate-test");
    let result = &iso_job["result"];
    assert_eq!(result["sentences"], 3, "{result}");
    let out = result["text"].as_str().expect("text");
    assert_eq!(out.split("\n\n").count(), 2, "{out:?}");
    assert!(out.split("\n\n").all(|p| !p.trim().is_empty()), "{out:?}");
    // `de` and `deu_Latn` are the same language to the model.
    assert_eq!(nllb_job["result"]["text"], result["text"]);
    assert_eq!(app.get_job_as(&key, &iso, "text").await, format!("{out}\n"));
    assert_eq!(app.get_job_format(&key, &iso, "srt").await.status(), 400);

    // The same job again is answered from the result cache, still billed
    // (the account's policy is the default, `bill`).
    let again = accepted_id(submit_json(&app, &key, translate("de")).await).await;
    assert_eq!(
        succeeded(&app, &key, &again).await["result"],
        iso_job["result"]
    );
    let hits: Vec<bool> = sqlx::query_scalar("select cache_hit from jobs order by created_at")
        .fetch_all(&app.db)
        .await
        .expect("jobs");
    assert_eq!(hits, [false, false, true]);
    let metrics = app.worker_metrics().await;
    assert_eq!(
        metric_value(&metrics, "voxq_worker_cache_hits_total", "translate"),
        1.0
    );
    let usage = voxq_shared::db::usage::for_job(&app.db, again.parse().expect("uuid"))
        .await
        .expect("usage");
    let billed: Vec<&str> = usage.iter().map(|u| u.metric.as_str()).collect();
    assert!(billed.contains(&"text_chars"), "{usage:?}");

    // An account that opts out always runs its jobs; one on `free` gets
    // its hits unbilled.
    let admin = app.admin_key().await;
    for (policy, hit) in [("off", false), ("free", true)] {
        let patched = app
            .call(
                reqwest::Method::PATCH,
                &format!("/v1/admin/accounts/{account}"),
                Some(&admin),
                Some(json!({ "result_cache": policy })),
            )
            .await;
        assert_eq!(patched.status(), 200);
        assert_eq!(
            patched.json::<Value>().await.expect("json")["result_cache"],
            policy
        );
        let id = accepted_id(submit_json(&app, &key, translate("de")).await).await;
        let job = succeeded(&app, &key, &id).await;
        assert_eq!(job["result"], iso_job["result"]);
        let cache_hit: bool = sqlx::query_scalar("select cache_hit from jobs where id = $1::uuid")
            .bind(&id)
            .fetch_one(&app.db)
            .await
            .expect("job");
        assert_eq!(cache_hit, hit, "{policy}");
        let usage = voxq_shared::db::usage::for_job(&app.db, id.parse().expect("uuid"))
            .await
            .expect("usage");
        assert_eq!(usage.is_empty(), policy == "free", "{policy}: {usage:?}");
    }
    let bad = app
        .call(
            reqwest::Method::PATCH,
            &format!("/v1/admin/accounts/{account}"),
            Some(&admin),
            Some(json!({ "result_cache": "sometimes" })),
        )
        .await;
    assert_eq!(bad.status(), 422);

    // Refused at submission: an unknown code, a code the model lacks, a
    // model nobody serves, a speech model for text.
    for (body, code) in [
        (translate("xx"), "unknown_language"),
        (translate("ita_Latn"), "unsupported_language"),
        (
            json!({"kind": "translate", "text": text, "target_language": "de", "model": "nope"}),
            "unknown_model",
        ),
        (
            json!({"kind": "translate", "text": text, "target_language": "de", "model": "whisper-base"}),
            "unknown_model",
        ),
    ] {
        assert_eq!(
            error_code(submit_json(&app, &key, body).await, 422).await,
            code
        );
    }

    // Batching: the same texts, concurrently, give what they gave alone.
    sqlx::query("update accounts set result_cache = 'off' where id = $1")
        .bind(account)
        .execute(&app.db)
        .await
        .expect("opt out of the cache");
    let texts: Vec<String> = (0..6)
        .map(|i| format!("Sentence number {i} is here. The river is quiet today."))
        .collect();
    let mut alone = Vec::new();
    for t in &texts {
        let body = json!({"kind": "translate", "text": t, "target_language": "es"});
        let id = accepted_id(submit_json(&app, &key, body).await).await;
        alone.push(succeeded(&app, &key, &id).await["result"]["text"].clone());
    }
    let ids = join_all(texts.iter().map(|t| {
        let body = json!({"kind": "translate", "text": t, "target_language": "es"});
        async { accepted_id(submit_json(&app, &key, body).await).await }
    }))
    .await;
    for (id, expected) in ids.iter().zip(&alone) {
        assert_eq!(&succeeded(&app, &key, id).await["result"]["text"], expected);
    }
    let metrics = app.worker_metrics().await;
    let jobs = metric_value(&metrics, "voxq_worker_batch_jobs_sum", "translate-test");
    let calls = metric_value(&metrics, "voxq_worker_batch_jobs_count", "translate-test");
    assert!(
        jobs > calls,
        "no call batched two jobs: {jobs} jobs in {calls} calls"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_opus_mt_style_model_translates_with_its_sentencepiece_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn(&dir).await;
    let (_, key) = app.new_account().await;

    // Its `>>deu<<` tokens are offered under the codes clients use.
    let models = app.get_json("/v1/models", &key).await;
    let model = models["data"]
        .as_array()
        .expect("data")
        .iter()
        .find(|m| m["name"] == "translate-test-spm")
        .expect("the SentencePiece model is served")
        .clone();
    assert_eq!(model["kinds"], json!(["translate"]));
    let languages = model["languages"].as_array().expect("languages");
    for code in ["de", "deu_Latn", "es", "spa_Latn", "fr", "fra_Latn"] {
        assert!(languages.contains(&json!(code)), "{model}");
    }
    assert!(!languages.contains(&json!("en")), "{model}");

    let text = "The cat sees a dog. A new friend reads!\n\nThe river is quiet today.";
    let translate = |target: &str| {
        json!({"kind": "translate", "text": text, "target_language": target,
               "model": "translate-test-spm"})
    };
    let iso = accepted_id(submit_json(&app, &key, translate("de")).await).await;
    let nllb = accepted_id(submit_json(&app, &key, translate("deu_Latn")).await).await;
    let spanish = accepted_id(submit_json(&app, &key, translate("es")).await).await;
    let iso_job = succeeded(&app, &key, &iso).await;
    let result = &iso_job["result"];
    assert_eq!(result["sentences"], 3, "{result}");
    let out = result["text"].as_str().expect("text");
    assert_eq!(out.split("\n\n").count(), 2, "{out:?}");
    assert!(out.split("\n\n").all(|p| !p.trim().is_empty()), "{out:?}");
    // Joined by target.spm: text, not pieces, language tokens or unknowns.
    for leak in ['\u{2581}', '\u{2047}', '>', '<'] {
        assert!(!out.contains(leak), "{leak:?} in {out:?}");
    }
    // `de` and `deu_Latn` are one token to the model; `es` is another,
    // and the language token steers the output.
    let nllb_job = succeeded(&app, &key, &nllb).await;
    assert_eq!(nllb_job["result"]["text"], result["text"]);
    let spanish_job = succeeded(&app, &key, &spanish).await;
    assert_ne!(spanish_job["result"]["text"], result["text"]);

    // A language it has no token for is refused at submission.
    for target in ["it", "en"] {
        assert_eq!(
            error_code(submit_json(&app, &key, translate(target)).await, 422).await,
            "unsupported_language",
            "{target}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_multilingual_model_detects_and_transcribes_spanish_and_german() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn(&dir).await;
    let (_, key) = app.new_account().await;
    let samples = [
        (
            "es",
            "Buenos días. Me gustaría comprar un billete de tren para mañana. \
             La estación está cerca del mercado.",
        ),
        (
            "de",
            "Guten Morgen. Ich möchte eine Fahrkarte nach Berlin kaufen. \
             Der Zug fährt um zehn Uhr ab.",
        ),
    ];
    let ids = join_all(samples.iter().map(|(language, text)| {
        let form = audio_form(
            speech::wav_16k_voice(language, text),
            &[
                ("model", "whisper-base"),
                ("timestamp_granularities", "word"),
            ],
        );
        async { accepted_id(app.submit_form(&key, form).await).await }
    }))
    .await;
    for ((language, text), id) in samples.iter().zip(&ids) {
        let job = succeeded(&app, &key, id).await;
        let result = &job["result"];
        assert_eq!(result["language"], *language, "{result}");
        let probability = result["language_probability"]
            .as_f64()
            .expect("probability");
        assert!(probability > 0.5, "{result}");
        let error = wer::wer(text, result["text"].as_str().expect("text"));
        assert!(error <= 0.35, "{language}: WER {error:.2}: {result}");
        check_words(result);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn speech_translation_detects_the_language_and_renders_each_target() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn(&dir).await;
    let (_, key) = app.new_account().await;
    let spanish = "Buenos días. Me gustaría comprar un billete de tren para mañana.";
    let form = audio_form(
        speech::wav_16k_voice("es", spanish),
        &[
            ("kind", "speech_translate"),
            ("model", "whisper-base"),
            ("target_languages", "en,de"),
        ],
    );
    let id = accepted_id(app.submit_form(&key, form).await).await;
    let job = succeeded(&app, &key, &id).await;
    assert_eq!(job["kind"], "speech_translate");
    assert_eq!(job["params"]["translation_model"], "translate-test");
    let result = &job["result"];
    assert_eq!(result["language"], "es", "{result}");
    assert!(
        result["language_probability"]
            .as_f64()
            .expect("probability")
            > 0.5
    );
    let source = spans(&result["segments"]);
    assert!(!source.is_empty());
    let english = result["translations"]["en"]["text"].as_str().expect("en");
    assert!(!english.trim().is_empty(), "{result}");
    // Non-English targets keep the source's timings, segment for segment.
    let german = spans(&result["translations"]["de"]["segments"]);
    assert_eq!(german, source);
    let duration = result["duration"].as_f64().expect("duration");
    for language in ["en", "de"] {
        let srt = app
            .get_job_as(&key, &id, &format!("srt&language={language}"))
            .await;
        assert!(check_srt(&srt, duration) >= 1, "{language}: {srt}");
        let vtt = app
            .get_job_as(&key, &id, &format!("vtt&language={language}"))
            .await;
        assert!(check_vtt(&vtt, duration) >= 1, "{language}: {vtt}");
    }
    assert_eq!(
        app.get_job_format(&key, &id, "srt&language=fr")
            .await
            .status(),
        400
    );

    // Refused at submission: no targets, a target no model translates into,
    // an English-only model asked for a language it cannot hear.
    let wav = speech::wav_16k("Hello there.");
    for (fields, code) in [
        (vec![("kind", "speech_translate")], "invalid_language"),
        (
            vec![("kind", "speech_translate"), ("target_languages", "it")],
            "unsupported_language",
        ),
        (vec![("language", "de")], "unsupported_language"),
        (vec![("target_languages", "de")], "invalid_kind"),
        (
            vec![("timestamp_granularities[]", "phoneme")],
            "invalid_parameter",
        ),
    ] {
        let response = app
            .submit_form(&key, audio_form(wav.clone(), &fields))
            .await;
        assert_eq!(error_code(response, 422).await, code, "{fields:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn speech_translation_runs_on_a_worker_with_both_models() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = models_root();
    let model = |name: &str, engine: &str| {
        format!(
            "[[models]]\nname = \"{name}\"\nengine = \"{engine}\"\npath = \"{}\"\nthreads = 1\n",
            root.join(name).display()
        )
    };
    let whisper = model("whisper-base", "ct2-whisper");
    let translator = model("translate-test", "ct2-translate");
    let write = |file: &str, body: String| {
        let path = dir.path().join(file);
        std::fs::write(&path, body).expect("models file");
        path.display().to_string()
    };
    let whisper_only = write("whisper.toml", whisper.clone());
    let translator_only = write("translator.toml", translator.clone());
    let both = write("both.toml", format!("{whisper}\n{translator}"));
    let mut app = TestApp::spawn_with(Options {
        models_file: Some(whisper_only.into()),
        ..Options::default()
    })
    .await;
    app.start_extra_worker(&[("VOXQ_MODELS_FILE", &translator_only)]);
    let (_, key) = app.new_account().await;
    wait_for_workers(&app, &key, "translate-test", 1).await;

    let wav = speech::wav_16k("I would like a cup of coffee, please.");
    let form = |targets: &str| {
        audio_form(
            wav.clone(),
            &[
                ("kind", "speech_translate"),
                ("model", "whisper-base"),
                ("target_languages", targets),
            ],
        )
    };
    // Both models are served, but by different workers: no worker could
    // finish the job, so it is refused rather than failed later.
    let apart = app.submit_form(&key, form("de")).await;
    assert_eq!(error_code(apart, 422).await, "models_apart");
    // English comes from Whisper itself: no translation model needed.
    let english = accepted_id(app.submit_form(&key, form("en")).await).await;
    let job = succeeded(&app, &key, &english).await;
    assert!(job["params"]["translation_model"].is_null(), "{job}");

    // A worker with both: now accepted, and the whisper-only worker hands
    // its share of the jobs to it instead of failing them.
    let full = app.start_extra_worker(&[("VOXQ_MODELS_FILE", &both)]);
    wait_for_workers(&app, &key, "whisper-base", 2).await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(accepted_id(app.submit_form(&key, form("de")).await).await);
    }
    for id in &ids {
        let job = succeeded(&app, &key, id).await;
        let german = &job["result"]["translations"]["de"];
        assert!(!german["text"].as_str().unwrap_or("").is_empty(), "{job}");
        let attempts: i32 = sqlx::query_scalar("select attempts from jobs where id = $1::uuid")
            .bind(id)
            .fetch_one(&app.db)
            .await
            .expect("attempts");
        assert_eq!(attempts, 1, "a hand-back is not an attempt");
    }
    let handed = metric_value(
        &app.worker_metrics().await,
        "voxq_worker_jobs_handed_back_total",
        "",
    );
    assert!(
        handed >= 1.0,
        "the whisper-only worker took none of the jobs"
    );
    let full_metrics = app.metrics_at(&full).await;
    let processed = metric_value(
        &full_metrics,
        "voxq_worker_jobs_processed_total",
        "speech_translate",
    );
    assert_eq!(processed, 4.0, "{full_metrics}");
}

/// Waits until `GET /v1/models` shows `count` workers serving `name`.
async fn wait_for_workers(app: &TestApp, key: &str, name: &str, count: u64) {
    for _ in 0..100 {
        let models = app.get_json("/v1/models", key).await;
        let serving = models["data"]
            .as_array()
            .and_then(|list| list.iter().find(|m| m["name"] == name))
            .map_or(0, |m| m["workers"].as_u64().unwrap_or(0));
        if serving >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{name} never had {count} workers");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_that_cannot_load_a_model_runs_degraded_and_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let body = format!(
        "{}\n[[models]]\nname = \"broken\"\nengine = \"ct2-translate\"\npath = \"{}\"\n",
        models_toml(),
        dir.path().join("missing").display()
    );
    let app = TestApp::spawn_with(Options {
        models_file: Some(models_file(dir.path(), &body)),
        worker_env: vec![("VOXQ_MODEL_LOAD_ATTEMPTS".into(), "2".into())],
        ..Options::default()
    })
    .await;
    let url = app.worker_url.clone().expect("worker");
    let health: Value = app
        .http
        .get(format!("{url}/health/live"))
        .send()
        .await
        .expect("health")
        .json()
        .await
        .expect("json");
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["failed"][0]["name"], "broken");
    let (_, key) = app.new_account().await;
    let models = app.get_json("/v1/models", &key).await;
    assert!(!models.to_string().contains("\"broken\""), "{models}");
    let body =
        json!({"kind": "translate", "text": "Hi.", "target_language": "de", "model": "broken"});
    assert_eq!(
        error_code(submit_json(&app, &key, body).await, 422).await,
        "unknown_model"
    );
}

/// A job that outlasts its lease many times over, on each engine: the
/// heartbeat renews the lease whatever the engine reports (whisper.cpp
/// reports no progress), so the janitor never takes it back and a second
/// worker never runs it.
#[tokio::test(flavor = "multi_thread")]
async fn a_long_job_under_a_short_lease_runs_once_on_each_engine() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut app = TestApp::spawn_with(Options {
        models_file: Some(models_file(dir.path(), &models_toml())),
        api_env: vec![
            ("VOXQ_JANITOR_INTERVAL".into(), "1".into()),
            ("VOXQ_LONG_AUDIO_SECONDS".into(), "30".into()),
        ],
        worker_env: vec![("VOXQ_LEASE_SECONDS".into(), "1".into())],
        ..Options::default()
    })
    .await;
    app.start_extra_worker(&[]);
    let (_, key) = app.new_account().await;
    let wav = common::long_speech::recording(1.0).wav;
    let mut ids = Vec::new();
    for model in ["whisper-tiny.en", "whisper-tiny.en-cpp"] {
        let form = audio_form(wav.clone(), &[("model", model), ("vad", "false")]);
        ids.push((model, accepted_id(app.submit_form(&key, form).await).await));
    }
    for (model, id) in ids {
        let job = succeeded(&app, &key, &id).await;
        assert_eq!(job["attempts"], 1, "{model} ran more than once: {job}");
        let uuid: uuid::Uuid = id.parse().expect("uuid");
        let (queue, seconds): (String, f64) = sqlx::query_as(
            "select queue, extract(epoch from finished_at - started_at)::float8
             from jobs where id = $1",
        )
        .bind(uuid)
        .fetch_one(&app.db)
        .await
        .expect("job row");
        assert!(queue.ends_with(".long"), "{model}: queue {queue}");
        // Several leases long, or the test proves nothing.
        assert!(seconds > 3.0, "{model} ran {seconds} s");
    }
}
