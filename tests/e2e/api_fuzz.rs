//! schemathesis against the served OpenAPI document: generated requests,
//! valid and not, for every operation; none may get a 5xx, and every
//! answer must match what the document says.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use tokio::process::Command;

use crate::common::{Options, TestApp};

/// `ops/test.sh` installs it here (a pinned version in its own virtual
/// environment); `VOXQ_SCHEMATHESIS` names another.
fn schemathesis() -> PathBuf {
    std::env::var_os("VOXQ_SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache")
                });
            cache.join("voxq/schemathesis/bin/schemathesis")
        })
}

/// A fixed seed: a failure reproduces with the same command.
const SEED: &str = "20261202";

#[tokio::test(flavor = "multi_thread")]
async fn generated_requests_get_no_server_error_and_answers_match_the_document() {
    let tool = schemathesis();
    assert!(
        tool.exists(),
        "{} is missing: ops/test.sh installs schemathesis (or set VOXQ_SCHEMATHESIS)",
        tool.display()
    );
    // One client address sends everything, as fast as it can: neither the
    // per-address nor the account's limits may answer in the document's
    // place (a 429 tests nothing).
    let app = TestApp::spawn_with(Options {
        worker: false,
        api_env: vec![
            ("VOXQ_IP_RATE_PER_MINUTE".into(), "100000000".into()),
            ("VOXQ_IP_BURST".into(), "10000000".into()),
            ("VOXQ_LOGIN_RATE_PER_MINUTE".into(), "100000000".into()),
            ("VOXQ_LOGIN_BURST".into(), "10000000".into()),
            ("VOXQ_LOGIN_MAX_FAILURES_PER_IP".into(), "100000000".into()),
            (
                "VOXQ_STANDBY_MODELS".into(),
                "translate-test=translate".into(),
            ),
        ],
        ..Options::default()
    })
    .await;
    let (account, key) = app.new_account().await;
    let admin = app.admin_key().await;
    let response = app
        .call(
            Method::PATCH,
            &format!("/v1/admin/accounts/{account}"),
            Some(&admin),
            Some(json!({"limits": {
                "requests_per_day": 100_000_000u64,
                "requests_per_minute": 100_000_000u64,
                "burst": 10_000_000u64,
                "concurrent_jobs": 100_000u64,
                "text_chars_per_day": 1_000_000_000u64,
                "audio_seconds_per_day": 100_000_000u64,
                "processing_seconds_per_day": 100_000_000u64,
            }})),
        )
        .await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);

    // The routes that can end the fuzzing key itself (schemathesis finds
    // its id in `GET /v1/keys`) run last, on their own: revoked first, the
    // key would turn every later request into a 401 that tests nothing.
    let keys_by_id = ["--include-path-regex", r"^/v1/keys/\{id\}"];
    // A valid LibreTranslate translation waits for a worker this test does
    // not run (tests/e2e/libretranslate.rs has one); its refusals are
    // tested there.
    let rest = ["--exclude-path-regex", r"^/v1/keys/\{id\}|^/translate$"];
    // Operators' routes answer this member key 403, as they must; an
    // operator's key fuzzes them at the end (it may suspend its own
    // account there, like the key routes above).
    schemathesis_run(&tool, &app.api_url, &key, &rest, 150).await;
    let usage = app.call(Method::GET, "/v1/usage", Some(&key), None).await;
    assert_eq!(
        usage.status(),
        200,
        "the fuzzing key stopped working: its run tested little"
    );
    schemathesis_run(&tool, &app.api_url, &key, &keys_by_id, 40).await;
    let operators = ["--include-path-regex", "^/v1/admin/"];
    schemathesis_run(&tool, &app.api_url, &admin, &operators, 40).await;
}

/// One schemathesis run over the operations `filter` selects; panics with
/// its report unless every generated request passed every check and every
/// selected operation was tested. Returns the report.
async fn schemathesis_run(
    tool: &std::path::Path,
    api_url: &str,
    key: &str,
    filter: &[&str],
    seconds: u64,
) -> String {
    let report = tempfile::tempdir().expect("report dir");
    let mut command = Command::new(tool);
    command
        .arg("run")
        .arg(format!("{api_url}/openapi.json"))
        .args(["--url", api_url])
        .args(["--header", &format!("Authorization: Bearer {key}")])
        .args(filter)
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_schema_conformance",
        ])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", "25", "--seed", SEED, "--workers", "2"])
        .args([
            "--max-time",
            &seconds.to_string(),
            "--request-timeout",
            "20",
        ])
        .args(["--suppress-health-check", "all", "--no-color"])
        .arg("--report-dir")
        .arg(report.path())
        // Its cache of found crashes goes with the report, not into the
        // checkout.
        .current_dir(report.path())
        .env("NO_COLOR", "1")
        // Stopped if the test gives up on it.
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(seconds + 120), command.output())
        .await
        .expect("schemathesis ran past its time budget")
        .expect("schemathesis starts");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "schemathesis found problems (seed {SEED}, {filter:?}):\n{stdout}\n{stderr}"
    );
    // A run that reached nothing would pass too.
    let count = |label: &str| {
        stdout
            .lines()
            .find_map(|line| line.trim().strip_prefix(label))
            .and_then(|rest| rest.trim().split('/').next().map(str::to_owned))
    };
    let selected = count("Selected:");
    assert!(
        selected.as_deref().is_some_and(|n| n != "0") && selected == count("Tested:"),
        "not every selected operation was tested:\n{stdout}"
    );
    stdout
}
