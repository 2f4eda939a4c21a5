//! Chaos: `kill -9` of workers, over and over, and of an API in the middle
//! of submissions, while a few hundred jobs run. Then a checker confirms
//! the invariants: every job that got a 202 ends exactly once; usage
//! matches succeeded jobs, at most once per job and metric; Redis quota
//! counters equal Postgres after reconciliation; every ended job's webhook
//! arrived under one webhook-id; nothing is both dead-lettered and
//! succeeded.

use crate::common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use common::receiver::Receiver;
use common::{models_file, models_root, speech, Options, TestApp};
use lapin::options::{BasicAckOptions, BasicGetOptions};
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;
use voxq_shared::quota::Quotas;

const TEXT_JOBS: usize = 240;
const AUDIO_JOBS: usize = 24;

#[tokio::test(flavor = "multi_thread")]
async fn every_accepted_job_ends_once_billed_once_and_announced_through_kill_9s() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let models = models_file(
        dir.path(),
        &format!(
            "[[models]]\nname = \"whisper-tiny.en\"\nengine = \"ct2-whisper\"\npath = \"{}\"\n\
             default = true\n\n[[models]]\nname = \"translate-test\"\nengine = \"ct2-translate\"\n\
             path = \"{}\"\nthreads = 1\nbatch_size = 8\n",
            models_root().join("whisper-tiny.en").display(),
            models_root().join("translate-test").display(),
        ),
    );
    let mut app = TestApp::spawn_with(Options {
        api_env: vec![
            ("VOXQ_WEBHOOK_ALLOW".into(), "127.0.0.1".into()),
            ("VOXQ_WEBHOOK_ALLOW_HTTP".into(), "true".into()),
            (
                "VOXQ_WEBHOOK_RETRY_SECONDS".into(),
                "1,1,1,1,1,1,1,1,1,1".into(),
            ),
            ("VOXQ_JANITOR_INTERVAL".into(), "1".into()),
            ("VOXQ_IP_RATE_PER_MINUTE".into(), "100000".into()),
            ("VOXQ_IP_BURST".into(), "10000".into()),
        ],
        models_file: Some(models),
        worker_env: vec![
            ("VOXQ_LEASE_SECONDS".into(), "3".into()),
            ("VOXQ_MAX_ATTEMPTS".into(), "10".into()),
            ("VOXQ_THREADS".into(), "1".into()),
        ],
        ..Options::default()
    })
    .await;
    let (account, key) = app.new_account().await;
    let hook = app
        .call(
            Method::POST,
            "/v1/webhooks",
            Some(&key),
            Some(json!({ "url": receiver.url("hook"),
                         "event_types": ["job.succeeded", "job.failed", "job.cancelled"] })),
        )
        .await;
    assert_eq!(hook.status(), 201);
    let second = app.spawn_second_api();

    // Submissions go to both APIs, eight at a time; the second API is
    // killed a third of the way in. Only 202s count.
    let mut bodies: Vec<(bool, String)> = (0..TEXT_JOBS)
        .map(|i| (false, format!("Chaos sentence number {i}.")))
        .collect();
    bodies.extend((0..AUDIO_JOBS).map(|i| (true, format!("Audio clip number {i}."))));
    let clips: HashMap<String, Vec<u8>> = bodies
        .iter()
        .filter(|(audio, _)| *audio)
        .map(|(_, t)| (t.clone(), speech::wav_16k(t)))
        .collect();
    let mut accepted: Vec<String> = Vec::new();
    let started = Instant::now();
    let mut next_kill = Instant::now() + Duration::from_millis(1500);
    let mut kills = 0;
    let mut second_alive = true;
    for (n, chunk) in bodies.chunks(8).enumerate() {
        if second_alive && n * 8 >= bodies.len() / 3 {
            app.kill_api(&second);
            second_alive = false;
        }
        let sends = chunk.iter().enumerate().map(|(i, (audio, text))| {
            let base = if second_alive && i % 2 == 1 {
                second.clone()
            } else {
                app.api_url.clone()
            };
            let request = app.http.post(format!("{base}/v1/jobs")).bearer_auth(&key);
            let request = if *audio {
                request.multipart(reqwest::multipart::Form::new().part(
                    "file",
                    reqwest::multipart::Part::bytes(clips[text].clone()).file_name("c.wav"),
                ))
            } else {
                request.json(&json!({ "kind": "translate", "text": text, "target_language": "de" }))
            };
            request.send()
        });
        for response in futures::future::join_all(sends).await.into_iter().flatten() {
            if response.status() == 202 {
                let body: Value = response.json().await.expect("json");
                accepted.push(body["id"].as_str().expect("id").to_owned());
            }
        }
        if Instant::now() >= next_kill {
            assert!(app.signal_worker("KILL", Duration::from_secs(10)));
            kills += 1;
            app.start_worker();
            next_kill = Instant::now() + Duration::from_millis(1000 + (n as u64 * 397) % 2500);
        }
    }
    // Keep killing while the backlog drains, then let the last worker be.
    while started.elapsed() < Duration::from_secs(40) {
        tokio::time::sleep(Duration::from_millis(1500 + (kills as u64 * 311) % 2000)).await;
        assert!(app.signal_worker("KILL", Duration::from_secs(10)));
        kills += 1;
        app.start_worker();
    }
    assert!(
        accepted.len() > bodies.len() / 2,
        "{} accepted",
        accepted.len()
    );
    assert!(kills >= 5, "{kills} kills");

    // 1. Every accepted job ends, exactly once.
    let ids: Vec<Uuid> = accepted.iter().map(|i| i.parse().expect("uuid")).collect();
    let deadline = Instant::now() + Duration::from_secs(300);
    let statuses: HashMap<Uuid, String> = loop {
        let rows: Vec<(Uuid, String)> =
            sqlx::query_as("select id, status from jobs where id = any($1)")
                .bind(&ids)
                .fetch_all(&app.db)
                .await
                .expect("jobs");
        assert_eq!(rows.len(), ids.len(), "accepted jobs missing from Postgres");
        let open = rows
            .iter()
            .filter(|(_, s)| s == "queued" || s == "running")
            .count();
        if open == 0 {
            break rows.into_iter().collect();
        }
        assert!(Instant::now() < deadline, "{open} jobs never ended");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let succeeded: HashSet<Uuid> = statuses
        .iter()
        .filter(|(_, s)| *s == "succeeded")
        .map(|(id, _)| *id)
        .collect();
    assert!(
        succeeded.len() * 10 >= ids.len() * 9,
        "only {} of {} succeeded: {statuses:?}",
        succeeded.len(),
        ids.len()
    );

    // 2. Usage: one row per succeeded job and metric, none for the others.
    let usage: Vec<(Uuid, String, i64)> = sqlx::query_as(
        "select job_id, metric, count(*) from usage_records group by job_id, metric",
    )
    .fetch_all(&app.db)
    .await
    .expect("usage");
    assert!(usage.iter().all(|(_, _, n)| *n == 1), "double billing");
    let billed: HashSet<Uuid> = usage.iter().map(|(id, _, _)| *id).collect();
    assert_eq!(billed, succeeded, "usage rows must match succeeded jobs");
    assert!(usage.iter().any(|(_, m, _)| m == "text_chars"));

    // 3. Redis quota counters equal Postgres, compared as the chaos left
    // them: any drift fails here, before reconciliation could hide it.
    let redis = voxq_shared::cache::connect(common::REDIS_URL)
        .await
        .expect("redis");
    let quotas = Quotas::new(redis, &app.namespace);
    let day = voxq_shared::quota::today();
    let before = app.get_json("/v1/usage", &key).await;
    let mut held = quotas
        .read(account, day)
        .await
        .expect("read Redis")
        .expect("Redis holds the account's counters");
    let mut conn = app.db.acquire().await.expect("connection");
    let mut recorded = voxq_shared::quota::ledger::snapshot(&mut conn, account, day)
        .await
        .expect("Postgres counters");
    drop(conn);
    held.inflight.sort_by_key(|r| r.job_id);
    recorded.inflight.sort_by_key(|r| r.job_id);
    assert_eq!(held, recorded, "Redis drifted from Postgres");
    // Reconciliation then changes nothing.
    let truth = voxq_shared::quota::ledger::rebuild(&app.db, &quotas, account, day, false)
        .await
        .expect("reconcile");
    let after = app.get_json("/v1/usage", &key).await;
    let r = &after["resources"];
    assert_eq!(r["concurrent_jobs"]["used"], 0, "{after}");
    assert_eq!(
        r["text_chars"]["used"].as_f64(),
        Some(truth.used.text_chars as f64),
        "{after}"
    );
    assert_eq!(r["text_chars"]["reserved"].as_f64(), Some(0.0), "{after}");
    assert_eq!(
        r["requests"]["used"].as_f64(),
        Some(truth.requests as f64),
        "{after}"
    );
    eprintln!(
        "chaos: {} accepted, {} succeeded, {kills} worker kills; usage before reconciliation: {}",
        ids.len(),
        succeeded.len(),
        before["resources"]
    );

    // 4. Every ended job's webhook arrived, always under one webhook-id.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let got = receiver.received();
        let mut ids_per_job: HashMap<String, HashSet<String>> = HashMap::new();
        let mut delivered: HashSet<String> = HashSet::new();
        for r in &got {
            let event = r.json();
            let job = event["data"]["id"].as_str().unwrap_or("").to_owned();
            ids_per_job
                .entry(job.clone())
                .or_default()
                .insert(r.id.clone());
            if r.answered == 200 {
                delivered.insert(job);
            }
        }
        assert!(
            ids_per_job.values().all(|ids| ids.len() == 1),
            "one event, one webhook-id"
        );
        let missing = accepted
            .iter()
            .filter(|id| !delivered.contains(*id))
            .count();
        if missing == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} jobs' webhooks never arrived"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // 5. Nothing both dead-lettered and succeeded.
    let conn = voxq_shared::queue::connect(common::AMQP_URL)
        .await
        .expect("amqp");
    let channel = conn.create_channel().await.expect("channel");
    let dead_queue = voxq_shared::queue::Topology::new(&app.namespace).dead_letter_queue;
    let mut dead = Vec::new();
    while let Some(message) = channel
        .basic_get(&dead_queue, BasicGetOptions::default())
        .await
        .expect("get")
    {
        let parsed: Value = serde_json::from_slice(&message.delivery.data).expect("json");
        dead.push(parsed["job_id"].as_str().unwrap_or("").to_owned());
        message
            .delivery
            .acker
            .ack(BasicAckOptions::default())
            .await
            .expect("ack");
    }
    for id in &dead {
        let id: Uuid = id.parse().expect("uuid");
        assert!(!succeeded.contains(&id), "{id} dead-lettered and succeeded");
    }
    let _ = conn.close(200, "done").await;
}
