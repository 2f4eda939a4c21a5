//! The metrics that drive scaling and alerts, read from the real listeners:
//! queue depth, consumers and age while no worker runs; each phase of a
//! job's time on the worker; the gauges back at zero once the jobs are done.

use std::time::{Duration, Instant};

use crate::common;

use common::{metric_value, speech, TestApp};

const MODEL: &str = "whisper-tiny.en";

/// Reads the API's metrics until `holds` is true of them (readings are
/// refreshed every few seconds), or fails with the last text.
async fn api_metrics_until(app: &TestApp, what: &str, holds: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = app.api_metrics().await;
        if holds(&metrics) {
            return metrics;
        }
        assert!(Instant::now() < deadline, "{what}:\n{metrics}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The value of the series `name` whose labels are exactly `labels`, in
/// whatever order the exposition lists them.
fn series(metrics: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    wanted.sort();
    metrics.lines().find_map(|line| {
        let (head, value) = line.rsplit_once(' ')?;
        let (found, labels) = match head.split_once('{') {
            Some((found, rest)) => (found, rest.strip_suffix('}')?),
            None => (head, ""),
        };
        let mut have: Vec<String> = labels
            .split(',')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        have.sort();
        (found == name && have == wanted).then(|| value.parse().ok())?
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn queues_and_job_phases_show_in_the_metrics_and_return_to_zero() {
    let mut app = TestApp::spawn_without_worker().await;
    let (_, key) = app.new_account().await;

    // Three different sentences: the same audio would be answered from
    // the result cache, without inference.
    let mut ids = Vec::new();
    for text in [
        "Metrics are counted.",
        "Every job is timed.",
        "Queues are read.",
    ] {
        ids.push(
            app.submit_ok(&key, speech::wav_16k(text), "speech.wav")
                .await,
        );
    }
    let queue = format!("{}.jobs.{MODEL}.interactive", app.namespace);
    let lane = [
        ("queue", queue.as_str()),
        ("model", MODEL),
        ("lane", "interactive"),
    ];
    let model = [("model", MODEL)];
    let metrics = api_metrics_until(&app, "three jobs queued", |m| {
        series(m, "voxq_api_jobs_queued", &model) == Some(3.0)
            && series(m, "voxq_api_queue_messages_ready", &lane) == Some(3.0)
    })
    .await;
    assert_eq!(
        series(&metrics, "voxq_api_queue_consumers", &lane),
        Some(0.0),
        "no worker consumes the queue yet:\n{metrics}"
    );
    let age = series(&metrics, "voxq_api_queue_oldest_age_seconds", &model);
    assert!(age.is_some_and(|a| a > 0.0), "{metrics}");
    assert_eq!(
        series(&metrics, "voxq_api_jobs_running", &model),
        Some(0.0),
        "{metrics}"
    );
    for store in ["postgres", "redis", "rabbitmq"] {
        let up = series(&metrics, "voxq_api_store_up", &[("store", store)]);
        assert_eq!(up, Some(1.0), "{store}:\n{metrics}");
    }
    assert_eq!(series(&metrics, "voxq_api_outbox_pending", &[]), Some(0.0));
    assert_eq!(
        series(&metrics, "voxq_api_queue_dead_letters", &[]),
        Some(0.0)
    );
    assert_eq!(
        metric_value(&metrics, "voxq_api_jobs_submitted_total", "transcribe"),
        3.0,
        "{metrics}"
    );

    app.start_worker();
    for id in &ids {
        let job = app.wait_for_job(&key, id, Duration::from_secs(120)).await;
        assert_eq!(job["status"], "succeeded", "{job}");
    }
    let metrics = api_metrics_until(&app, "queue drained, worker consuming", |m| {
        series(m, "voxq_api_jobs_queued", &model) == Some(0.0)
            && series(m, "voxq_api_jobs_running", &model) == Some(0.0)
            && series(m, "voxq_api_queue_messages_ready", &lane) == Some(0.0)
            && series(m, "voxq_api_queue_consumers", &lane).is_some_and(|c| c >= 1.0)
    })
    .await;
    assert_eq!(
        series(&metrics, "voxq_api_queue_oldest_age_seconds", &model),
        Some(0.0),
        "{metrics}"
    );

    let worker = app.worker_metrics().await;
    for phase in ["queue_wait", "prepare", "inference", "write"] {
        let labels = [("kind", "transcribe"), ("model", MODEL), ("phase", phase)];
        let count = series(&worker, "voxq_worker_job_phase_seconds_count", &labels);
        assert_eq!(count, Some(3.0), "{phase}:\n{worker}");
        let sum = series(&worker, "voxq_worker_job_phase_seconds_sum", &labels);
        assert!(sum.is_some_and(|s| s > 0.0), "{phase}:\n{worker}");
    }
    // The oldest job waited at least as long as it had when read above.
    let labels = [
        ("kind", "transcribe"),
        ("model", MODEL),
        ("phase", "queue_wait"),
    ];
    let waited = series(&worker, "voxq_worker_job_phase_seconds_sum", &labels);
    assert!(waited >= age, "{waited:?} < {age:?}:\n{worker}");
    assert_eq!(
        series(
            &worker,
            "voxq_worker_model_loaded",
            &[("engine", "ct2-whisper"), ("model", MODEL)]
        ),
        Some(1.0),
        "{worker}"
    );
    assert_eq!(
        series(&worker, "voxq_worker_jobs_in_progress", &model),
        Some(0.0),
        "{worker}"
    );
    let now = chrono::Utc::now().timestamp() as f64;
    let heartbeat = series(&worker, "voxq_worker_heartbeat_timestamp_seconds", &[]);
    assert!(
        heartbeat.is_some_and(|h| (now - h).abs() < 30.0),
        "{heartbeat:?} vs {now}"
    );
}
