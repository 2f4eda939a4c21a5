//! The docs page at `/docs/`, rendered by headless Chromium (Debian's
//! `chromium`, installed by ops/fetch-clients.sh): Swagger UI, served from
//! the binary, draws every part of the API from `/openapi.json`, and the
//! page asks nothing of any other host.

use crate::common;

use std::process::Command;

use common::TestApp;

/// The DOM of `url` once Chromium has run its scripts.
fn rendered(url: &str, profile: &std::path::Path) -> String {
    let output = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .output()
        .expect("chromium runs: ops/test.sh installs it (ops/fetch-clients.sh)");
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_docs_page_renders_every_part_of_the_api_from_the_binary_alone() {
    let app = TestApp::spawn_without_worker().await;
    let profile = tempfile::tempdir().expect("tempdir");

    // /docs leads to the page.
    let redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(format!("{}/docs", app.api_url))
        .send()
        .await
        .expect("docs");
    assert!(redirect.status().is_redirection(), "{}", redirect.status());

    let dom = rendered(&format!("{}/docs/", app.api_url), profile.path());
    assert!(dom.contains("swagger-ui"), "{dom}");
    for path in [
        "/v1/jobs",
        "/v1/audio/transcriptions",
        "/translate",
        "/languages",
        "/detect",
    ] {
        assert!(
            dom.contains(&format!(">{path}<")) || dom.contains(&format!("\"{path}\"")),
            "{path} is not on the rendered page"
        );
    }

    // Everything the page loads is served here: no CDN, no validator.
    for file in ["", "swagger-initializer.js", "index.css"] {
        let response = app
            .http
            .get(format!("{}/docs/{file}", app.api_url))
            .send()
            .await
            .expect("docs file");
        assert_eq!(response.status(), 200, "{file}");
        let policy = response
            .headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        assert!(policy.contains("default-src 'none'"), "{policy}");
        assert!(!policy.contains("http"), "{policy}");
        let body = response.text().await.expect("body");
        assert!(
            !body.contains("https://"),
            "{file} loads from elsewhere: {body}"
        );
    }
}
