//! Generated speech in every supported container, sample rate and channel
//! layout goes through API, queue and worker and comes back as text.

use crate::common;

use std::time::Duration;

use common::{speech, wer::wer, TestApp};

#[tokio::test(flavor = "multi_thread")]
async fn speech_in_every_format_rate_and_layout_is_transcribed_within_25_percent_wer() {
    let app = TestApp::spawn().await;
    let (_, key) = app.new_account().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let reference = speech::text();
    let source = speech::espeak_wav(dir.path(), &reference);

    let mut jobs = Vec::new();
    for format in ["wav", "mp3", "flac", "ogg"] {
        for rate in [8_000, 16_000, 44_100, 48_000] {
            for channels in [1, 2] {
                let bytes = speech::transcode(&source, format, rate, channels);
                let name = format!("speech.{format}");
                let id = app.submit_ok(&key, bytes, &name).await;
                jobs.push((format!("{format} {rate} Hz {channels} ch"), id));
            }
        }
    }

    let mut failures = Vec::new();
    for (label, id) in &jobs {
        let job = app.wait_for_job(&key, id, Duration::from_secs(600)).await;
        assert_eq!(job["status"], "succeeded", "{label}: {job}");
        let result = &job["result"];
        let text = result["text"].as_str().expect("text");
        let rate = wer(&reference, text);
        if rate > 0.25 {
            failures.push(format!("{label}: WER {rate:.2}: {text}"));
        }
        assert_eq!(result["language"], "en");
        let duration = result["duration"].as_f64().expect("duration");
        assert!(
            (5.0..30.0).contains(&duration),
            "{label}: duration {duration}"
        );
        let segments = result["segments"].as_array().expect("segments");
        assert!(!segments.is_empty(), "{label}");
        let mut last_end = 0.0;
        for s in segments {
            let (start, end) = (
                s["start"].as_f64().expect("start"),
                s["end"].as_f64().expect("end"),
            );
            assert!(
                start >= last_end - 1e-6 && end > start && end <= duration + 0.01,
                "{label}: {s}"
            );
            last_end = end;
        }
        assert!(job["attempts"] == 1, "{label}: {job}");
    }
    assert!(
        failures.is_empty(),
        "WER above 25%:\n{}",
        failures.join("\n")
    );
}
