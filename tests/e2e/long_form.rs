//! Long recordings with pauses and a long near-silent stretch, through API,
//! queue and worker on both Whisper engines: real timestamps after the
//! first 30 s window, nothing invented over the silence, nothing said
//! twice, and the text as good as on short clips.

use crate::common;

use std::time::{Duration, Instant};

use crate::engines::models_toml;

/// The CTranslate2 model once more at one thread per call, so that a long
/// job's windows are decoded side by side (one call per core).
fn with_side_by_side_model() -> String {
    format!(
        "{}\n[[models]]\nname = \"{SIDE_BY_SIDE}\"\nengine = \"ct2-whisper\"\npath = \"{}/whisper-tiny.en\"\nthreads = 1\n",
        models_toml(),
        common::spawning::models_root().display()
    )
}

const SIDE_BY_SIDE: &str = "whisper-tiny.en-1t";
use common::long_speech::{self, LongRecording};
use common::{models_file, wer, Options, TestApp};
use reqwest::multipart::{Form, Part};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(600);
/// How far a segment may start from the sentence it starts with.
const START_TOLERANCE: f64 = 0.5;
/// tiny.en on espeak-ng's voice: the short-clip tests allow 0.25. Measured
/// here: 0.06-0.10 with detection; 0.13 without, where the window after the
/// silence is judged silent as a whole (the reference's no-speech rule)
/// and the two sentences at its end go with it.
const MAX_WER: f64 = 0.15;

/// What is wrong with one transcript of `recording`; `timed`: its
/// segments must also sit on the speech.
fn problems(recording: &LongRecording, verbose: &Value, max_wer: f64, timed: bool) -> Vec<String> {
    let mut problems = Vec::new();
    let text = verbose["text"].as_str().unwrap_or_default();
    let error = wer::wer(&recording.text(), text);
    if error > max_wer {
        problems.push(format!("WER {error:.3} above {max_wer}"));
    }
    let segments = verbose["segments"].as_array().cloned().unwrap_or_default();
    let (quiet_from, quiet_to) = recording.silence;
    // Without detection, Whisper may invent a short phrase over and over
    // inside the silent stretch ("Thank you." in each window, seen on
    // whisper.cpp under load): that is text over silence, which detection
    // is there to remove, not a spoken sentence said twice.
    let spoken: Vec<&str> = segments
        .iter()
        .filter(|s| {
            let middle =
                (s["start"].as_f64().unwrap_or(0.0) + s["end"].as_f64().unwrap_or(0.0)) / 2.0;
            timed || !(quiet_from..quiet_to).contains(&middle)
        })
        .filter_map(|s| s["text"].as_str())
        .collect();
    let repeated = long_speech::repeated_runs(&spoken.join(" "));
    if !repeated.is_empty() {
        problems.push(format!("said twice: {repeated:?}"));
    }
    let mut splits = 0;
    for segment in &segments {
        let start = segment["start"].as_f64().unwrap_or(-1.0);
        let end = segment["end"].as_f64().unwrap_or(-1.0);
        let said = segment["text"].as_str().unwrap_or_default();
        if end - start >= 29.0 {
            problems.push(format!("a bare 30 s window: {start}-{end} {said}"));
        }
        if !timed {
            continue;
        }
        if start < quiet_to - START_TOLERANCE && end > quiet_from + START_TOLERANCE {
            problems.push(format!("text over the silence: {start}-{end} {said}"));
        }
        let nearest = recording
            .sentences
            .iter()
            .map(|s| (s.0 - start).abs())
            .fold(f64::INFINITY, f64::min);
        // Whisper may end a segment inside a sentence; the next one then
        // starts there, not in a pause.
        let inside = recording
            .sentences
            .iter()
            .any(|s| start > s.0 + START_TOLERANCE && start < s.1);
        if inside {
            splits += 1;
        } else if nearest > START_TOLERANCE {
            problems.push(format!(
                "starts {nearest:.2} s from any sentence: {start}-{end} {said}"
            ));
        }
    }
    if splits * 5 > segments.len() {
        problems.push(format!(
            "{splits} of {} segments start inside a sentence",
            segments.len()
        ));
    }
    problems
}

/// One finished job of the long recording.
struct Run {
    model: &'static str,
    vad: bool,
    verbose: Value,
    srt: String,
}

#[tokio::test(flavor = "multi_thread")]
async fn long_recordings_with_pauses_and_silence_get_true_timestamps_on_both_engines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = TestApp::spawn_with(Options {
        models_file: Some(models_file(dir.path(), &with_side_by_side_model())),
        ..Options::default()
    })
    .await;
    let (_, key) = app.new_account().await;
    let recording = long_speech::recording(40.0);
    assert!(recording.duration > 120.0, "{}", recording.duration);

    // Detection is on by default for audio this long; `vad=false` decodes
    // the whole recording window by window.
    let mut jobs = Vec::new();
    for model in ["whisper-tiny.en", "whisper-tiny.en-cpp"] {
        for vad in [true, false] {
            let mut fields = vec![("model", model)];
            if !vad {
                fields.push(("vad", "false"));
            }
            let id = app
                .submit_wav_with(&key, recording.wav.clone(), &fields)
                .await;
            jobs.push((model, vad, id));
        }
    }
    // The side-by-side model's job goes in after the others have ended, so
    // that it does not reorder them: whisper.cpp's decoding states are
    // pooled, and its sampling at fallback temperatures depends on the jobs
    // decoded before.
    let mut runs = finished(&app, &key, jobs).await;
    let id = app
        .submit_wav_with(&key, recording.wav.clone(), &[("model", SIDE_BY_SIDE)])
        .await;
    runs.extend(finished(&app, &key, vec![(SIDE_BY_SIDE, true, id)]).await);

    let mut report = Vec::new();
    for run in &runs {
        let mut found = problems(&recording, &run.verbose, MAX_WER, run.vad);
        found.extend(subtitle_problems(&run.srt, text(&run.verbose)));
        if run.vad {
            found.extend(speech_problems(&recording, &run.verbose));
            // Chunks decoded apart read as well as the whole recording.
            let sequential = runs
                .iter()
                .find(|r| r.model == run.model.trim_end_matches("-1t") && !r.vad)
                .map(|r| wer::wer(&recording.text(), text(&r.verbose)))
                .unwrap_or(0.0);
            let chunked = wer::wer(&recording.text(), text(&run.verbose));
            if chunked > sequential + 0.02 {
                found.push(format!(
                    "WER {chunked:.3} with VAD, {sequential:.3} without"
                ));
            }
        } else if !run.verbose["speech"].is_null() {
            found.push("speech spans listed with vad=false".into());
        }
        if !found.is_empty() {
            report.push(format!(
                "{} vad={}: {}\n{}",
                run.model,
                run.vad,
                found.join("\n"),
                serde_json::to_string_pretty(&run.verbose["segments"]).unwrap_or_default()
            ));
        }
    }
    assert!(report.is_empty(), "{}", report.join("\n\n"));
}

/// The jobs' results once they have succeeded.
async fn finished(app: &TestApp, key: &str, jobs: Vec<(&'static str, bool, String)>) -> Vec<Run> {
    let mut runs = Vec::new();
    for (model, vad, id) in jobs {
        let job = app.wait_for_job(key, &id, WAIT).await;
        assert_eq!(job["status"], "succeeded", "{model} vad={vad}: {job}");
        let verbose: Value =
            serde_json::from_str(&app.get_job_as(key, &id, "verbose_json").await).expect("json");
        let srt = app.get_job_as(key, &id, "srt").await;
        runs.push(Run {
            model,
            vad,
            verbose,
            srt,
        });
    }
    runs
}

/// What makes `srt` hard to read or untrue to `transcript`: a cue with
/// more than one sentence, over two lines of 42 characters or 7 s on
/// screen, cues out of order, or words other than the transcript's.
fn subtitle_problems(srt: &str, transcript: &str) -> Vec<String> {
    let seconds = |t: &str| -> f64 {
        let (hms, ms) = t.trim().split_once(',').unwrap_or(("0:0:0", "0"));
        let parts: Vec<f64> = hms.split(':').filter_map(|p| p.parse().ok()).collect();
        parts.iter().fold(0.0, |acc, p| acc * 60.0 + p) + ms.parse::<f64>().unwrap_or(0.0) / 1000.0
    };
    let mut problems = Vec::new();
    let mut words = Vec::new();
    let mut last_start = 0.0;
    for cue in srt.trim().split("\n\n") {
        let lines: Vec<&str> = cue.lines().collect();
        let Some((start, end)) = lines.get(1).and_then(|t| t.split_once(" --> ")) else {
            problems.push(format!("cue without timing: {cue:?}"));
            continue;
        };
        let (start, end) = (seconds(start), seconds(end));
        let text = &lines[2..];
        let ends = text
            .iter()
            .flat_map(|l| l.split_whitespace())
            .filter(|w| w.ends_with(['.', '?', '!']))
            .count();
        if ends > 1 || text.len() > 2 || text.iter().any(|l| l.chars().count() > 42) {
            problems.push(format!(
                "cue holds {ends} sentences on {} lines: {cue:?}",
                text.len()
            ));
        }
        if end - start > 7.001 || start < last_start {
            problems.push(format!("cue timing: {cue:?}"));
        }
        last_start = start;
        words.extend(text.iter().flat_map(|l| l.split_whitespace()));
    }
    let said: Vec<&str> = transcript.split_whitespace().collect();
    if words != said {
        problems.push("the cues' words differ from the transcript".into());
    }
    problems
}

fn text(verbose: &Value) -> &str {
    verbose["text"].as_str().unwrap_or_default()
}

/// With detection on: speech spans listed, none inside the silent stretch.
fn speech_problems(recording: &LongRecording, verbose: &Value) -> Vec<String> {
    let Some(spans) = verbose["speech"].as_array() else {
        return vec!["no speech spans in the result".into()];
    };
    let (quiet_from, quiet_to) = recording.silence;
    let mut problems = Vec::new();
    if spans.len() < recording.sentences.len() / 2 {
        problems.push(format!("only {} speech spans", spans.len()));
    }
    for span in spans {
        let (start, end) = (
            span["start"].as_f64().unwrap_or(-1.0),
            span["end"].as_f64().unwrap_or(-1.0),
        );
        if start < quiet_to - START_TOLERANCE && end > quiet_from + START_TOLERANCE {
            problems.push(format!("speech found in the silence: {start}-{end}"));
        }
    }
    problems
}

#[tokio::test(flavor = "multi_thread")]
async fn audio_without_speech_gives_an_empty_transcript_billed_for_its_length() {
    let app = TestApp::spawn().await;
    let (_, key) = app.new_account().await;
    // Longer than the automatic threshold, and a short clip that asks.
    let long = app
        .submit_wav_with(&key, long_speech::silence_wav(45.0), &[])
        .await;
    let short = app
        .submit_wav_with(&key, long_speech::silence_wav(8.0), &[("vad", "true")])
        .await;
    for (id, seconds) in [(long, 45.0), (short, 8.0)] {
        let job = app.wait_for_job(&key, &id, WAIT).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        let result = &job["result"];
        assert_eq!(result["text"], "", "{result}");
        assert_eq!(result["segments"], serde_json::json!([]), "{result}");
        assert_eq!(result["speech"], serde_json::json!([]), "{result}");
        assert_eq!(result["duration"], seconds, "{result}");
        let billed = app.billed_audio_seconds(&id).await;
        assert!((billed - seconds).abs() < 0.1, "billed {billed}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_of_many_chunks_reports_progress_and_stops_between_batches() {
    let app = TestApp::spawn().await;
    let (_, key) = app.new_account().await;
    // Three times the long recording: some twenty chunks, three batches.
    let recording = long_speech::recording(40.0);
    let wav = long_speech::repeated(&recording.wav, 3);
    let id = app.submit_wav_with(&key, wav, &[]).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let job = app.get_json(&format!("/v1/jobs/{id}"), &key).await;
        if job["status"] == "running" && job["progress"]["seconds_done"].as_f64() > Some(0.0) {
            break;
        }
        assert!(Instant::now() < deadline, "no progress: {job}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let path = format!("/v1/jobs/{id}");
    // Stopped after the batch in progress, not at the end of the job.
    app.cancel_and_wait_for_stop(&key, &id, Duration::from_secs(120))
        .await;
    let job = app.get_json(&path, &key).await;
    assert_eq!(job["status"], "cancelled", "{job}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_vad_settings_are_refused_with_the_field_named() {
    let app = TestApp::spawn_without_worker().await;
    let (_, key) = app.new_account().await;
    let wav = common::speech::wav_16k("Hello there.");
    for (field, value) in [
        ("vad", "sometimes"),
        ("vad_threshold", "1.5"),
        ("vad_threshold", "NaN"),
        ("vad_min_silence_ms", "-5"),
        ("vad_speech_pad_ms", "99999999"),
    ] {
        let form = Form::new()
            .part(
                "file",
                Part::bytes(wav.clone())
                    .file_name("a.wav")
                    .mime_str("audio/wav")
                    .expect("mime"),
            )
            .text(field, value);
        let response = app.submit_form(&key, form).await;
        assert_eq!(response.status(), 422, "{field}={value}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["error"]["code"], "invalid_parameter", "{body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(field), "{field}: {message}");
    }
}
