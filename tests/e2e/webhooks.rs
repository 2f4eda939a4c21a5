//! Webhooks: signed job events reach endpoints and per-job URLs, survive a
//! receiver outage with retries under one webhook-id, are logged per
//! attempt and can be redelivered; the SSRF guard refuses internal
//! addresses at registration and at send; 410 disables an endpoint.

use crate::common;

use std::time::{Duration, Instant};

use common::receiver::{Received, Receiver};
use common::{error_code, metric_value, speech, Options, TestApp};
use reqwest::Method;
use serde_json::{json, Value};
use voxq_shared::webhooks::verify;

/// An API whose webhooks may reach this machine's test receiver, with
/// retries a second apart.
async fn app_for_receiver(worker: bool) -> TestApp {
    TestApp::spawn_with(Options {
        worker,
        api_env: vec![
            ("VOXQ_WEBHOOK_ALLOW".into(), "127.0.0.1".into()),
            ("VOXQ_WEBHOOK_ALLOW_HTTP".into(), "true".into()),
            (
                "VOXQ_WEBHOOK_RETRY_SECONDS".into(),
                "1,1,1,1,1,1,1,1".into(),
            ),
        ],
        ..Options::default()
    })
    .await
}

async fn register(app: &TestApp, key: &str, url: &str, types: Value) -> (String, String) {
    let response = app
        .call(
            Method::POST,
            "/v1/webhooks",
            Some(key),
            Some(json!({ "url": url, "event_types": types })),
        )
        .await;
    let status = response.status();
    let body: Value = response.json().await.expect("json");
    assert_eq!(status, 201, "{body}");
    let secret = body["secret"].as_str().expect("secret").to_owned();
    assert!(secret.starts_with("whsec_"));
    (body["id"].as_str().expect("id").to_owned(), secret)
}

/// Waits until `done` holds for what the receiver got.
async fn wait_for(
    receiver: &Receiver,
    what: &str,
    done: impl Fn(&[Received]) -> bool,
) -> Vec<Received> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let got = receiver.received();
        if done(&got) {
            return got;
        }
        assert!(Instant::now() < deadline, "{what}: got {got:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn delivered(got: &[Received], event_type: &str) -> bool {
    got.iter()
        .any(|r| r.answered == 200 && r.event_type() == event_type)
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_events_survive_a_receiver_outage_under_one_webhook_id() {
    let receiver = Receiver::start().await;
    receiver.answer(503);
    let app = app_for_receiver(true).await;
    let (_, key) = app.new_account().await;
    let (endpoint, secret) = register(
        &app,
        &key,
        &receiver.url("hook"),
        json!(["job.started", "job.succeeded", "job.failed"]),
    )
    .await;

    let id = app
        .submit_ok(&key, speech::wav_16k("Send me a webhook."), "a.wav")
        .await;
    let job = app.wait_for_job(&key, &id, Duration::from_secs(120)).await;
    assert_eq!(job["status"], "succeeded");
    // Down for a while: several refused attempts of each event.
    wait_for(&receiver, "retries while down", |got| {
        got.iter()
            .filter(|r| r.event_type() == "job.succeeded")
            .count()
            >= 2
    })
    .await;
    receiver.answer(200);
    let got = wait_for(&receiver, "delivery once up", |got| {
        delivered(got, "job.started") && delivered(got, "job.succeeded")
    })
    .await;

    for r in &got {
        assert!(
            verify(&secret, &r.signature, &r.id, r.timestamp, &r.body),
            "bad signature: {r:?}"
        );
        assert!((chrono::Utc::now().timestamp() - r.timestamp).abs() < 300);
        let mut flipped = r.body.clone();
        flipped[0] ^= 1;
        assert!(!verify(&secret, &r.signature, &r.id, r.timestamp, &flipped));
        let event = r.json();
        // Thin payloads: ids, status, where the result is.
        assert_eq!(event["data"]["id"], id.as_str());
        assert_eq!(event["data"]["url"], format!("/v1/jobs/{id}"));
        assert!(event["data"].get("result").is_none());
    }
    // Every attempt of one event carries its one webhook-id.
    let succeeded: Vec<&Received> = got
        .iter()
        .filter(|r| r.event_type() == "job.succeeded")
        .collect();
    assert!(succeeded.len() >= 3, "{succeeded:?}");
    assert!(succeeded.iter().all(|r| r.id == succeeded[0].id));
    assert!(succeeded[0].id.starts_with("msg_"));
    assert_eq!(succeeded.iter().filter(|r| r.answered == 200).count(), 1);

    // The log shows each attempt: the refusals, then the success.
    let log = app
        .get_json(&format!("/v1/webhooks/{endpoint}/deliveries"), &key)
        .await;
    let delivery = log
        .as_array()
        .expect("list")
        .iter()
        .find(|d| d["event_type"] == "job.succeeded")
        .expect("succeeded delivery");
    assert_eq!(delivery["status"], "delivered", "{delivery}");
    let attempts = delivery["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), succeeded.len(), "{delivery}");
    assert_eq!(attempts[0]["status_code"], 503);
    assert_eq!(attempts[0]["response_excerpt"], "try later");
    assert_eq!(attempts.last().expect("last")["status_code"], 200);
    assert!(attempts.iter().all(|a| a["latency_ms"].as_i64().is_some()));
    // Counted too: the refused attempts as retries, the success with its lag.
    let metrics = app.api_metrics().await;
    let outcome = |o: &str| {
        let labels = format!(r#"outcome="{o}""#);
        metric_value(&metrics, "voxq_api_webhook_deliveries_total", &labels)
    };
    assert!(outcome("retry") >= 2.0, "{metrics}");
    assert!(outcome("delivered") >= 1.0, "{metrics}");
    let lagged = metric_value(&metrics, "voxq_api_webhook_delivery_lag_seconds_count", "");
    assert!(lagged >= 1.0, "{metrics}");

    // Manual redelivery: the same event, the same webhook-id.
    let before = receiver.received().len();
    let redelivered = app
        .call(
            Method::POST,
            &format!("/v1/webhooks/deliveries/{}/redeliver", delivery["id"]),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(redelivered.status(), 202);
    let got = wait_for(&receiver, "redelivery", |got| got.len() > before).await;
    assert_eq!(got[before].id, succeeded[0].id);

    // A job's own webhook_url, signed with the account's job secret.
    let job_secret = app.get_json("/v1/webhooks/job-secret", &key).await["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let response = app
        .call(
            Method::POST,
            "/v1/jobs",
            Some(&key),
            Some(json!({
                "kind": "translate", "text": "Hello.", "target_language": "de",
                "webhook_url": receiver.url("job"),
            })),
        )
        .await;
    assert_eq!(response.status(), 202);
    let job_id = response.json::<Value>().await.expect("json")["id"].clone();
    // No translation worker: the cancellation is this job's last event.
    let cancelled = app
        .call(
            Method::DELETE,
            &format!("/v1/jobs/{}", job_id.as_str().expect("id")),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(cancelled.status(), 200);
    let got = wait_for(&receiver, "the job's own webhook", |got| {
        got.iter()
            .any(|r| r.path == "/job" && r.event_type() == "job.cancelled")
    })
    .await;
    let own = got.iter().find(|r| r.path == "/job").expect("own");
    assert!(verify(
        &job_secret,
        &own.signature,
        &own.id,
        own.timestamp,
        &own.body
    ));
    assert!(!verify(
        &secret,
        &own.signature,
        &own.id,
        own.timestamp,
        &own.body
    ));
    let log = app
        .get_json(
            &format!("/v1/jobs/{}/webhooks", job_id.as_str().expect("id")),
            &key,
        )
        .await;
    assert!(log
        .as_array()
        .expect("list")
        .iter()
        .any(|d| d["url"] == receiver.url("job")));
}

#[tokio::test(flavor = "multi_thread")]
async fn internal_addresses_are_refused_at_registration_and_at_send() {
    // No allow-list: every internal spelling must be refused.
    let strict = TestApp::spawn_with(Options {
        worker: false,
        api_env: vec![("VOXQ_WEBHOOK_ALLOW_HTTP".into(), "true".into())],
        ..Options::default()
    })
    .await;
    let (_, key) = strict.new_account().await;
    for url in [
        "http://127.0.0.1/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0x7f000001/hook",
        "http://2130706433/hook",
        "http://localhost/hook",
        "ftp://example.com/hook",
        "http://user:pass@93.184.215.14/hook",
    ] {
        let response = strict
            .call(
                Method::POST,
                "/v1/webhooks",
                Some(&key),
                Some(json!({ "url": url })),
            )
            .await;
        assert_eq!(
            error_code(response, 422).await,
            "invalid_webhook_url",
            "{url}"
        );
        let job = strict
            .call(
                Method::POST,
                "/v1/jobs",
                Some(&key),
                Some(
                    json!({ "kind": "translate", "text": "Hi.", "target_language": "de",
                             "webhook_url": url }),
                ),
            )
            .await;
        assert_eq!(error_code(job, 422).await, "invalid_webhook_url", "{url}");
    }
    let unknown_type = strict
        .call(
            Method::POST,
            "/v1/webhooks",
            Some(&key),
            Some(json!({ "url": "http://93.184.215.14/", "event_types": ["job.exploded"] })),
        )
        .await;
    assert_eq!(error_code(unknown_type, 422).await, "invalid_event_type");

    // At send: a URL that passed once but now leads inside (as after a DNS
    // change) is checked again and never reached; a redirect to loopback is
    // not followed.
    let receiver = Receiver::start().await;
    receiver.answer(302);
    let app = app_for_receiver(false).await;
    let (account, key) = app.new_account().await;
    let (endpoint, _) = register(&app, &key, &receiver.url("hook"), json!([])).await;
    sqlx::query(
        "insert into webhook_endpoints (id, account_id, url, secret)
         values (gen_random_uuid(), $1, 'http://127.0.0.2:9/inside', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')",
    )
    .bind(account)
    .execute(&app.db)
    .await
    .expect("endpoint past registration");
    let id = app
        .submit_ok(&key, speech::wav_16k("Nobody home."), "a.wav")
        .await;
    let cancelled = app
        .call(Method::DELETE, &format!("/v1/jobs/{id}"), Some(&key), None)
        .await;
    assert_eq!(cancelled.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(60);
    let log = loop {
        let log = app.get_json(&format!("/v1/jobs/{id}/webhooks"), &key).await;
        let attempted = log
            .as_array()
            .expect("list")
            .iter()
            .filter(|d| !d["attempts"].as_array().expect("attempts").is_empty())
            .count();
        if attempted == 2 {
            break log;
        }
        assert!(Instant::now() < deadline, "{log}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for delivery in log.as_array().expect("list") {
        let first = &delivery["attempts"][0];
        if delivery["endpoint_id"] == endpoint.as_str() {
            assert_eq!(first["status_code"], 302, "{delivery}");
            assert_eq!(first["error"], "redirects are not followed");
        } else {
            assert!(first["status_code"].is_null(), "{delivery}");
            let error = first["error"].as_str().expect("error");
            assert!(error.starts_with("refused"), "{error}");
        }
        assert_ne!(delivery["status"], "delivered");
    }
    assert!(
        receiver.received().iter().all(|r| r.path == "/hook"),
        "only the registered path was reached"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_410_disables_the_endpoint_with_a_reason() {
    let receiver = Receiver::start().await;
    receiver.answer(410);
    let app = app_for_receiver(false).await;
    let (_, key) = app.new_account().await;
    let (endpoint, _) = register(&app, &key, &receiver.url("gone"), json!(["job.cancelled"])).await;
    let id = app.submit_ok(&key, speech::wav_16k("Gone."), "a.wav").await;
    let cancelled = app
        .call(Method::DELETE, &format!("/v1/jobs/{id}"), Some(&key), None)
        .await;
    assert_eq!(cancelled.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let shown = app
            .get_json(&format!("/v1/webhooks/{endpoint}"), &key)
            .await;
        if !shown["disabled_at"].is_null() {
            assert!(
                shown["disabled_reason"]
                    .as_str()
                    .expect("reason")
                    .contains("410"),
                "{shown}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "{shown}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(receiver.received().len(), 1, "no retry after 410");
    let metrics = app.api_metrics().await;
    assert_eq!(
        metric_value(&metrics, "voxq_api_webhook_deliveries_total", "disabled"),
        1.0,
        "{metrics}"
    );
    // Re-enabled by the account, it receives again.
    let enabled = app
        .call(
            Method::PATCH,
            &format!("/v1/webhooks/{endpoint}"),
            Some(&key),
            Some(json!({ "enabled": true })),
        )
        .await;
    let body: Value = enabled.json().await.expect("json");
    assert!(body["disabled_at"].is_null(), "{body}");
}
