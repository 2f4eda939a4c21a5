//! Scheduling: a long file never holds short jobs behind it, and one
//! account's burst does not starve another account. Also long-form
//! transcription: minutes of audio, no sentence dropped or repeated,
//! timestamps in order.

use crate::common;

use std::time::Duration;

use common::{speech, wer, Options, TestApp};
use futures::future::join_all;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(600);

fn finished_at(job: &Value) -> chrono::DateTime<chrono::Utc> {
    job["finished_at"]
        .as_str()
        .expect("finished_at")
        .parse()
        .expect("timestamp")
}

/// About three and a half minutes of speech (4.6 s a part): the four sentences, again
/// and again, with numbered lead-ins so no two windows look alike.
fn long_script() -> String {
    (1..=44)
        .map(|i| {
            format!(
                "Part {i}. {}",
                speech::SENTENCES[i % speech::SENTENCES.len()]
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test(flavor = "multi_thread")]
async fn short_jobs_finish_before_a_long_one_submitted_first() {
    let app = TestApp::spawn_with(Options {
        api_env: vec![("VOXQ_LONG_AUDIO_SECONDS".into(), "60".into())],
        ..Options::default()
    })
    .await;
    let (_, key) = app.new_account().await;
    let script = long_script();
    let long_wav = speech::wav_16k(&script);
    let long = app.submit_ok(&key, long_wav, "long.wav").await;
    let shorts = join_all(
        speech::SENTENCES
            .iter()
            .map(|s| app.submit_ok(&key, speech::wav_16k(s), "short.wav")),
    )
    .await;

    let long_job = app.wait_for_job(&key, &long, WAIT).await;
    assert_eq!(long_job["status"], "succeeded", "{long_job}");
    for id in &shorts {
        let job = app.wait_for_job(&key, id, WAIT).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        assert!(
            finished_at(&job) < finished_at(&long_job),
            "a short job waited for the long one"
        );
    }

    // The long transcript: every part, once, in order.
    let result = &long_job["result"];
    let duration = result["duration"].as_f64().expect("duration");
    assert!(duration >= 180.0, "only {duration} s of speech");
    let text = result["text"].as_str().expect("text");
    let error = wer::wer(&script, text);
    assert!(error <= 0.2, "WER {error:.2}: {text}");
    let mut last_end = 0.0;
    for segment in result["segments"].as_array().expect("segments") {
        let (start, end) = (
            segment["start"].as_f64().expect("start"),
            segment["end"].as_f64().expect("end"),
        );
        assert!(
            start >= last_end - 0.5 && start < end && end <= duration + 0.01,
            "{segment}"
        );
        last_end = end;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn one_accounts_burst_does_not_starve_another_account() {
    let app = TestApp::spawn_with(Options {
        api_env: vec![("VOXQ_FAIR_SHARE".into(), "2".into())],
        ..Options::default()
    })
    .await;
    let (_, busy) = app.new_account().await;
    let (_, other) = app.new_account().await;
    let sentences: Vec<String> = (0..12)
        .map(|i| {
            format!(
                "{} Number {i}.",
                speech::SENTENCES[i % speech::SENTENCES.len()]
            )
        })
        .collect();
    let wavs: Vec<Vec<u8>> = sentences.iter().map(|s| speech::wav_16k(s)).collect();
    let burst = join_all(wavs.into_iter().map(|w| app.submit_ok(&busy, w, "b.wav"))).await;
    let late = app
        .submit_ok(
            &other,
            speech::wav_16k("Good morning, how are you?"),
            "o.wav",
        )
        .await;

    let late_job = app.wait_for_job(&other, &late, WAIT).await;
    assert_eq!(late_job["status"], "succeeded");
    let mut after = 0;
    for id in &burst {
        let job = app.wait_for_job(&busy, id, WAIT).await;
        assert_eq!(job["status"], "succeeded");
        if finished_at(&job) > finished_at(&late_job) {
            after += 1;
        }
    }
    // Submitted last, it waited for at most the burst's fair share on its
    // lane, not for the whole burst.
    assert!(
        after >= 6,
        "only {after} of the burst's 12 jobs finished after it"
    );
}
