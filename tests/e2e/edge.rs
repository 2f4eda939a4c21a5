//! Hardening at the edge: security headers, CORS from configuration, size
//! limits, and a production mode that refuses unsafe configuration.

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::{bin_dir, error_code, Options, TestApp};
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn answers_carry_security_headers_and_cors_follows_the_configured_origins() {
    let app = TestApp::spawn_with(Options {
        worker: false,
        api_env: vec![
            ("VOXQ_CORS_ORIGINS".into(), "https://app.example.com".into()),
            ("VOXQ_HSTS".into(), "true".into()),
        ],
        ..Options::default()
    })
    .await;
    let (_, key) = app.new_account().await;
    for response in [
        app.call(Method::GET, "/v1/me", Some(&key), None).await,
        app.call(Method::GET, "/v1/me", None, None).await,
        app.get("/health/live").await,
    ] {
        let h = response.headers();
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(
            h["content-security-policy"],
            "default-src 'none'; frame-ancestors 'none'"
        );
        assert_eq!(h["cache-control"], "no-store");
        assert!(h["strict-transport-security"]
            .to_str()
            .expect("ascii")
            .starts_with("max-age="));
    }
    let preflight = |origin: &'static str| {
        app.http
            .request(Method::OPTIONS, format!("{}/v1/jobs", app.api_url))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let allowed = preflight("https://app.example.com")
        .await
        .expect("preflight");
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let refused = preflight("https://evil.example.net")
        .await
        .expect("preflight");
    assert!(refused
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_headers_and_bodies_are_refused_and_proxy_headers_are_not_trusted_by_default() {
    let app = TestApp::spawn_without_worker().await;
    let (_, key) = app.new_account().await;
    let response = app
        .http
        .get(format!("{}/v1/me", app.api_url))
        .bearer_auth(&key)
        .header("x-padding", "a".repeat(8000))
        .header("x-padding-2", "b".repeat(9000))
        .send()
        .await
        .expect("send");
    assert_eq!(error_code(response, 431).await, "headers_too_large");
    let big = json!({ "name": "k".repeat(70 * 1024) });
    let response = app
        .call(Method::POST, "/v1/keys", Some(&key), Some(big))
        .await;
    assert_eq!(response.status(), 413);

    // Without VOXQ_CLIENT_IP_HEADER a forged X-Forwarded-For changes
    // nothing: the failed logins all count against 127.0.0.1.
    for i in 0..12 {
        app.http
            .post(format!("{}/v1/auth/login", app.api_url))
            .header("x-forwarded-for", format!("203.0.113.{i}"))
            .json(&json!({ "email": "x@example.com", "password": "wrong wrong wrong" }))
            .send()
            .await
            .expect("send");
    }
    let ips: Vec<Option<String>> =
        sqlx::query_scalar("select distinct ip from audit_log where action = 'login.failed'")
            .fetch_all(&app.db)
            .await
            .expect("ips");
    assert_eq!(ips, vec![Some("127.0.0.1".to_owned())]);
    // And the service still answers.
    assert_eq!(
        app.call(Method::GET, "/v1/me", Some(&key), None)
            .await
            .status(),
        200
    );
}

/// Runs `voxq-api` with `env` and returns its exit status and output; it
/// must exit by itself (validation happens before any connection).
fn run_api(env: &[(&str, &str)], wait: Duration) -> (bool, String) {
    let mut child = Command::new(bin_dir().join("voxq-api"))
        .env("VOXQ_API_BIND", "127.0.0.1:0")
        .env("VOXQ_API_METRICS_BIND", "127.0.0.1:0")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start voxq-api");
    let deadline = std::time::Instant::now() + wait;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let output = child.wait_with_output().expect("output");
            let text = String::from_utf8_lossy(&output.stderr).into_owned()
                + &String::from_utf8_lossy(&output.stdout);
            return (status.success(), text);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return (true, "still running".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn production_mode_refuses_development_secrets_wildcard_cors_and_default_credentials() {
    let strong = [
        ("VOXQ_ENV", "production"),
        ("VOXQ_JWT_SECRET", "0123456789abcdef0123456789abcdef-prod"),
        ("VOXQ_KEY_PEPPER", "a-long-random-pepper-value"),
        (
            "VOXQ_DATABASE_URL",
            "postgres://voxq:s3cret-db-pass@127.0.0.1:5432/voxq",
        ),
    ];
    let with = |key: &'static str, value: &'static str| -> Vec<(&'static str, &'static str)> {
        let mut env: Vec<_> = strong.iter().copied().filter(|(k, _)| *k != key).collect();
        env.push((key, value));
        env
    };
    for (env, why) in [
        (
            with(
                "VOXQ_JWT_SECRET",
                common::JWT_SECRET.get(..20).unwrap_or("short"),
            ),
            "VOXQ_JWT_SECRET",
        ),
        (
            with(
                "VOXQ_JWT_SECRET",
                "voxq-development-jwt-secret-change-me-0123456789",
            ),
            "VOXQ_JWT_SECRET",
        ),
        (
            with("VOXQ_KEY_PEPPER", "voxq-development-pepper-change-me"),
            "VOXQ_KEY_PEPPER",
        ),
        (with("VOXQ_CORS_ORIGINS", "*"), "VOXQ_CORS_ORIGINS"),
        (
            with(
                "VOXQ_DATABASE_URL",
                "postgres://postgres:postgres@127.0.0.1:5432/voxq",
            ),
            "VOXQ_DATABASE_URL",
        ),
        (
            with("VOXQ_DATABASE_URL", "postgres://voxq@127.0.0.1:5432/voxq"),
            "VOXQ_DATABASE_URL",
        ),
    ] {
        let (ok, output) = run_api(&env, Duration::from_secs(20));
        assert!(!ok, "started with unsafe {why}");
        assert!(output.contains(why), "{why} not named in: {output}");
    }

    // The same settings with nothing unsafe start and keep running.
    let db = format!("voxq_test_edge_{}", uuid::Uuid::new_v4().simple());
    let url = format!("postgres://postgres:s3cret-db-pass@127.0.0.1:5432/{db}");
    let namespace = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let mut env: Vec<(&str, &str)> = with("VOXQ_DATABASE_URL", "unused");
    env.retain(|(k, _)| *k != "VOXQ_DATABASE_URL");
    env.push(("VOXQ_DATABASE_URL", &url));
    env.push(("VOXQ_NAMESPACE", &namespace));
    let (_, output) = run_api(&env, Duration::from_secs(4));
    assert_eq!(output, "still running");
    let _ = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-c"])
        .arg(format!("drop database if exists {db} with (force)"))
        .output();
}
