//! Per-address limits and login lockouts that an attacker can neither
//! escape (by rotating IPv6 addresses within a network) nor turn against an
//! account's owner (by failing logins with the owner's email).

use crate::common;

use common::{error_code, metric_value, Options, TestApp};
use reqwest::Method;
use serde_json::{json, Value};
use voxq_shared::auth::scope::Role;

const PASSWORD: &str = "correct horse battery staple 42";

async fn login(
    app: &TestApp,
    email: &str,
    password: &str,
    device: Option<&str>,
) -> reqwest::Response {
    let mut body = json!({ "email": email, "password": password });
    if let Some(device) = device {
        body["device_token"] = json!(device);
    }
    app.call(Method::POST, "/v1/auth/login", None, Some(body))
        .await
}

async fn device_token(response: reqwest::Response) -> String {
    let status = response.status();
    let body: Value = response.json().await.expect("json");
    assert_eq!(status, 200, "{body}");
    body["device_token"]
        .as_str()
        .expect("device token")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stranger_failing_logins_locks_out_strangers_but_not_the_owners_devices() {
    let app = TestApp::spawn_with(Options {
        worker: false,
        // The per-address login rate stays out of the way of the lockouts.
        api_env: vec![("VOXQ_LOGIN_BURST".into(), "100".into())],
        ..Options::default()
    })
    .await;
    let (account, _) = app.new_account().await;
    app.new_user(account, "ana@example.com", PASSWORD, Role::Member)
        .await;
    let laptop = device_token(login(&app, "ana@example.com", PASSWORD, None).await).await;
    let phone = device_token(login(&app, "ana@example.com", PASSWORD, None).await).await;
    assert_ne!(laptop, phone);

    // Someone else guesses: five failures lock out every untrusted client…
    for _ in 0..5 {
        let response = login(&app, "ana@example.com", "a wrong guess, again", None).await;
        assert_eq!(error_code(response, 401).await, "invalid_credentials");
    }
    let response = login(&app, "ana@example.com", PASSWORD, None).await;
    assert_eq!(error_code(response, 429).await, "login_locked");
    // …and a forged or borrowed token is no way around it.
    let last = if laptop.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{last}", &laptop[..laptop.len() - 1]);
    let response = login(&app, "ana@example.com", PASSWORD, Some(&forged)).await;
    assert_eq!(error_code(response, 429).await, "login_locked");
    app.new_user(account, "bob@example.com", PASSWORD, Role::Member)
        .await;
    let bobs = device_token(login(&app, "bob@example.com", PASSWORD, None).await).await;
    let response = login(&app, "ana@example.com", PASSWORD, Some(&bobs)).await;
    assert_eq!(error_code(response, 429).await, "login_locked");

    // The owner's devices still log in, and get fresh tokens.
    let laptop = device_token(login(&app, "ana@example.com", PASSWORD, Some(&laptop)).await).await;

    // Failures made with a device's token lock out that device only.
    for _ in 0..5 {
        let response = login(
            &app,
            "ana@example.com",
            "a wrong guess, again",
            Some(&laptop),
        )
        .await;
        assert_eq!(error_code(response, 401).await, "invalid_credentials");
    }
    let response = login(&app, "ana@example.com", PASSWORD, Some(&laptop)).await;
    assert_eq!(error_code(response, 429).await, "login_locked");
    device_token(login(&app, "ana@example.com", PASSWORD, Some(&phone)).await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ipv6_clients_share_limits_per_network_and_ipv4_clients_per_address() {
    let app = TestApp::spawn_with(Options {
        worker: false,
        api_env: vec![
            ("VOXQ_CLIENT_IP_HEADER".into(), "x-forwarded-for".into()),
            ("VOXQ_IP_RATE_PER_MINUTE".into(), "1".into()),
            ("VOXQ_IP_BURST".into(), "3".into()),
        ],
        ..Options::default()
    })
    .await;
    let from = |address: &'static str| {
        app.http
            .get(format!("{}/v1/me", app.api_url))
            .header("x-forwarded-for", address)
            .send()
    };
    // Four addresses of one /64: the fourth request is over the burst.
    for address in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:aaaa::3"] {
        let response = from(address).await.expect("request");
        assert_eq!(error_code(response, 401).await, "unauthorized", "{address}");
    }
    let response = from("2001:db8:1:2:ffff:ffff:ffff:ffff")
        .await
        .expect("request");
    assert_eq!(error_code(response, 429).await, "rate_limited");
    // Another network is another client.
    let response = from("2001:db8:1:3::1").await.expect("request");
    assert_eq!(error_code(response, 401).await, "unauthorized");
    // IPv4 addresses are clients of their own, the mapped form included.
    for _ in 0..3 {
        let response = from("192.0.2.7").await.expect("request");
        assert_eq!(error_code(response, 401).await, "unauthorized");
    }
    let response = from("::ffff:192.0.2.7").await.expect("request");
    assert_eq!(error_code(response, 429).await, "rate_limited");
    let response = from("192.0.2.8").await.expect("request");
    assert_eq!(error_code(response, 401).await, "unauthorized");
    let metrics = app.api_metrics().await;
    assert_eq!(
        metric_value(
            &metrics,
            "voxq_api_refusals_total",
            r#"reason="rate_limited""#
        ),
        2.0,
        "{metrics}"
    );
}
