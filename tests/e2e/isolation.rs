//! One account can never read, or even detect, another's job.

use crate::common;

use std::time::Duration;

use common::{error_code, speech, TestApp};

#[tokio::test(flavor = "multi_thread")]
async fn another_account_gets_404_for_a_job_and_the_owner_sees_it() {
    let app = TestApp::spawn().await;
    let (_, owner) = app.new_account().await;
    let (_, stranger) = app.new_account().await;
    let wav = speech::wav_16k("Can you tell me where the nearest hospital is?");
    let id = app.submit_ok(&owner, wav, "a.wav").await;

    // Before and after completion (the second read is served from Redis).
    assert_eq!(
        error_code(app.get_job(&stranger, &id).await, 404).await,
        "not_found"
    );
    let job = app
        .wait_for_job(&owner, &id, Duration::from_secs(300))
        .await;
    assert_eq!(job["status"], "succeeded");
    let cached = app.get_job(&owner, &id).await;
    assert_eq!(cached.status(), 200);
    let key = format!("{}:job:{id}", app.namespace);
    let mut redis = redis::Client::open(common::REDIS_URL)
        .expect("redis")
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let exists: bool = redis::cmd("EXISTS")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .expect("exists");
    assert!(exists, "finished job is cached");
    assert_eq!(
        error_code(app.get_job(&stranger, &id).await, 404).await,
        "not_found"
    );

    // The same transcript as text and as subtitles that parse back.
    let text = app.get_job_as(&owner, &id, "text").await;
    assert_eq!(text.trim(), job["result"]["text"].as_str().expect("text"));
    let duration = job["result"]["duration"].as_f64().expect("duration");
    for (format, sep, header) in [("srt", ',', ""), ("vtt", '.', "WEBVTT\n\n")] {
        let body = app.get_job_as(&owner, &id, format).await;
        let cues = body
            .strip_prefix(header)
            .unwrap_or_else(|| panic!("{format} header: {body}"));
        let mut last_end = 0.0;
        for (i, cue) in cues.trim_end().split("\n\n").enumerate() {
            let lines: Vec<&str> = cue.lines().collect();
            let timing = if format == "srt" {
                assert_eq!(lines[0], (i + 1).to_string(), "{body}");
                lines[1]
            } else {
                lines[0]
            };
            let (start, end) = timing.split_once(" --> ").expect("timing line");
            let seconds = |t: &str| {
                let (hms, ms) = t.split_once(sep).expect("millis separator");
                let p: Vec<f64> = hms.split(':').map(|x| x.parse().expect("number")).collect();
                p[0] * 3600.0 + p[1] * 60.0 + p[2] + ms.parse::<f64>().expect("ms") / 1000.0
            };
            let (start, end) = (seconds(start), seconds(end));
            assert!(
                start >= last_end && end > start && end <= duration + 0.01,
                "{body}"
            );
            assert!(!lines.last().expect("text").trim().is_empty());
            last_end = end;
        }
    }
    let response = app.get_job_format(&owner, &id, "docx").await;
    assert_eq!(error_code(response, 400).await, "bad_request");
    let response = app.get_job_format(&stranger, &id, "srt").await;
    assert_eq!(error_code(response, 404).await, "not_found");

    // Unknown and malformed ids answer exactly like someone else's job.
    let unknown = uuid::Uuid::now_v7().to_string();
    assert_eq!(
        error_code(app.get_job(&owner, &unknown).await, 404).await,
        "not_found"
    );
    assert_eq!(
        error_code(app.get_job(&owner, "../../etc/passwd").await, 404).await,
        "not_found"
    );
}
