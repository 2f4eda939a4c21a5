//! Webhook receivers that misbehave: answers no log can hold as text, and
//! receivers that never answer. Neither may wedge a delivery or delay other
//! accounts; endpoints per account are capped.

use crate::common;

use std::time::{Duration, Instant};

use common::receiver::Receiver;
use common::{error_code, Options, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

async fn app_with(env: &[(&str, &str)]) -> TestApp {
    let mut api_env: Vec<(String, String)> = vec![
        ("VOXQ_WEBHOOK_ALLOW".into(), "127.0.0.1".into()),
        ("VOXQ_WEBHOOK_ALLOW_HTTP".into(), "true".into()),
    ];
    api_env.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    // Sends go straight to the checked address, whatever the environment's
    // proxies say: every delivery these tests wait for proves it.
    api_env.extend(common::dead_proxies());
    TestApp::spawn_with(Options {
        worker: false,
        api_env,
        ..Options::default()
    })
    .await
}

async fn register(app: &TestApp, key: &str, url: &str) -> reqwest::Response {
    app.call(
        Method::POST,
        "/v1/webhooks",
        Some(key),
        Some(json!({ "url": url, "event_types": ["job.cancelled"] })),
    )
    .await
}

async fn registered(app: &TestApp, key: &str, url: &str) -> String {
    let response = register(app, key, url).await;
    let status = response.status();
    let body: Value = response.json().await.expect("json");
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().expect("id").to_owned()
}

/// A `job.cancelled` event for the account: a text job (no worker runs)
/// submitted and cancelled.
async fn cancelled_job(app: &TestApp, key: &str) {
    let response = app.submit_text(key, "Guten Morgen.").await;
    assert_eq!(response.status(), 202);
    let id = response.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let response = app
        .call(Method::DELETE, &format!("/v1/jobs/{id}"), Some(key), None)
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_with_nul_bytes_and_broken_utf8_are_logged_and_the_delivery_ends() {
    let receiver = Receiver::start().await;
    receiver.answer(500);
    receiver.answer_body(b"oops\0\xff\xfe\x00 end");
    let app = app_with(&[("VOXQ_WEBHOOK_RETRY_SECONDS", "1,1")]).await;
    let (_, key) = app.new_account().await;
    let endpoint = registered(&app, &key, &receiver.url("hostile")).await;
    cancelled_job(&app, &key).await;

    let deadline = Instant::now() + Duration::from_secs(60);
    let delivery = loop {
        let log = app
            .get_json(&format!("/v1/webhooks/{endpoint}/deliveries"), &key)
            .await;
        let first = log.as_array().and_then(|l| l.first()).cloned();
        if let Some(d) = first.filter(|d| d["status"] != "pending") {
            break d;
        }
        assert!(Instant::now() < deadline, "still pending: {log}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Three attempts (the first and two retries), each logged, then given up.
    assert_eq!(delivery["status"], "failed", "{delivery}");
    let attempts = delivery["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 3, "{delivery}");
    for attempt in attempts {
        assert_eq!(attempt["status_code"], 500);
        let excerpt = attempt["response_excerpt"].as_str().expect("excerpt");
        assert!(excerpt.starts_with("oops\u{fffd}"), "{excerpt:?}");
        assert!(excerpt.ends_with(" end"), "{excerpt:?}");
        assert!(!excerpt.contains('\0'));
    }
    assert_eq!(receiver.received().len(), 3, "no send after giving up");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_that_never_answers_holds_a_few_sends_and_delays_no_other_account() {
    let stuck = Receiver::start().await;
    stuck.delay(Duration::from_secs(120));
    let prompt = Receiver::start().await;
    let app = app_with(&[
        ("VOXQ_WEBHOOK_TIMEOUT", "60"),
        ("VOXQ_WEBHOOK_ENDPOINT_CONCURRENCY", "2"),
    ])
    .await;
    let (_, hostile) = app.new_account().await;
    registered(&app, &hostile, &stuck.url("stuck")).await;
    for _ in 0..5 {
        cancelled_job(&app, &hostile).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while stuck.received().len() < 2 {
        assert!(Instant::now() < deadline, "the stuck receiver got nothing");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Another account's event arrives while the stuck sends still hang
    // (they would take a minute to time out).
    let (_, other) = app.new_account().await;
    registered(&app, &other, &prompt.url("prompt")).await;
    let sent = Instant::now();
    cancelled_job(&app, &other).await;
    while prompt.received().is_empty() {
        assert!(
            sent.elapsed() < Duration::from_secs(30),
            "another account's delivery waited on a stuck receiver"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The stuck endpoint never had more than its two sends in flight.
    assert_eq!(stuck.received().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn endpoints_per_account_are_capped() {
    let receiver = Receiver::start().await;
    let app = app_with(&[("VOXQ_WEBHOOK_MAX_ENDPOINTS", "2")]).await;
    let (_, key) = app.new_account().await;
    let first = registered(&app, &key, &receiver.url("a")).await;
    registered(&app, &key, &receiver.url("b")).await;
    let refused = register(&app, &key, &receiver.url("c")).await;
    assert_eq!(error_code(refused, 409).await, "too_many_endpoints");
    // The cap is per account.
    let (_, other) = app.new_account().await;
    registered(&app, &other, &receiver.url("d")).await;
    // Room again once one is deleted.
    let deleted = app
        .call(
            Method::DELETE,
            &format!("/v1/webhooks/{first}"),
            Some(&key),
            None,
        )
        .await;
    assert!(deleted.status().is_success());
    registered(&app, &key, &receiver.url("c")).await;
}
