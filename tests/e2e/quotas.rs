//! Quotas hold at their edge under concurrency, survive a Redis flush, and
//! agree with Postgres; rate limits answer 429 with the IETF headers.

use crate::common;

use std::time::Duration;

use common::{error_code, tone_wav, TestApp};
use futures::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

/// An account whose limits are the enterprise tier's with `limits` on top.
async fn account_with(app: &TestApp, admin: &str, limits: Value) -> (Uuid, String) {
    let (account, key) = app.new_account().await;
    let response = app
        .call(
            Method::PATCH,
            &format!("/v1/admin/accounts/{account}"),
            Some(admin),
            Some(json!({ "limits": limits })),
        )
        .await;
    assert_eq!(response.status(), 200);
    (account, key)
}

/// Fires `n` submissions at once; returns the statuses and the 429 bodies.
async fn race_text(app: &TestApp, key: &str, n: usize, text: &str) -> (usize, Vec<Value>) {
    let responses = join_all((0..n).map(|_| app.submit_text(key, text))).await;
    tally(responses).await
}

async fn tally(responses: Vec<reqwest::Response>) -> (usize, Vec<Value>) {
    let mut accepted = 0;
    let mut refused = Vec::new();
    for r in responses {
        match r.status().as_u16() {
            202 => accepted += 1,
            429 => {
                assert!(
                    r.headers().get("retry-after").is_some(),
                    "429 without Retry-After"
                );
                refused.push(r.json().await.expect("json"));
            }
            other => panic!("unexpected {other}: {}", r.text().await.unwrap_or_default()),
        }
    }
    (accepted, refused)
}

async fn usage(app: &TestApp, key: &str) -> Value {
    let response = app.call(Method::GET, "/v1/usage", Some(key), None).await;
    assert_eq!(response.status(), 200);
    response.json().await.expect("json")
}

async fn pg_count(app: &TestApp, sql: &str, account: Uuid) -> i64 {
    sqlx::query_scalar(sql)
        .bind(account)
        .fetch_one(&app.db)
        .await
        .expect("count")
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_submits_at_each_quota_edge_accept_exactly_what_fits_even_after_a_redis_flush() {
    // No worker: accepted jobs stay in flight, holding their reservations.
    let app = TestApp::spawn_without_worker().await;
    let admin = app.admin_key().await;

    // Concurrent jobs.
    let (conc, conc_key) = account_with(&app, &admin, json!({"concurrent_jobs": 3})).await;
    let (accepted, refused) = race_text(&app, &conc_key, 24, "Hallo Welt.").await;
    assert_eq!(accepted, 3);
    assert!(refused
        .iter()
        .all(|b| b["error"]["code"] == "concurrency_limit"
            && b["error"]["limit"] == "concurrent_jobs"));

    // Requests per day.
    let (req, req_key) = account_with(&app, &admin, json!({"requests_per_day": 5})).await;
    let (accepted, refused) = race_text(&app, &req_key, 24, "Hallo Welt.").await;
    assert_eq!(accepted, 5);
    let body = &refused[0]["error"];
    assert_eq!(body["code"], "quota_exceeded");
    assert_eq!(body["limit"], "requests_per_day");
    assert!(
        body["resets_at"]
            .as_str()
            .expect("resets_at")
            .ends_with("T00:00:00Z"),
        "{body}"
    );

    // Text characters: 100 characters each against 1000.
    let (chars, chars_key) = account_with(&app, &admin, json!({"text_chars_per_day": 1000})).await;
    let text = "x".repeat(99) + ".";
    let (accepted, refused) = race_text(&app, &chars_key, 24, &text).await;
    assert_eq!(accepted, 10);
    assert_eq!(refused[0]["error"]["limit"], "text_chars_per_day");

    // Audio seconds: 2 s each against 9 s, and processing seconds: 1 s
    // reserved per job (estimate 0.5 × audio) against 3 s.
    let (audio, audio_key) = account_with(&app, &admin, json!({"audio_seconds_per_day": 9})).await;
    let (proc_acct, proc_key) =
        account_with(&app, &admin, json!({"processing_seconds_per_day": 3})).await;
    for (key, expected, limit) in [
        (&audio_key, 4, "audio_seconds_per_day"),
        (&proc_key, 3, "processing_seconds_per_day"),
    ] {
        let responses =
            join_all((0..12).map(|_| app.submit_audio(key, tone_wav(2.0), "tone.wav"))).await;
        let (accepted, refused) = tally(responses).await;
        assert_eq!(accepted, expected, "{limit}");
        assert_eq!(refused[0]["error"]["limit"], limit);
    }

    // The usage endpoint agrees with Postgres.
    let u = usage(&app, &chars_key).await;
    let r = &u["resources"];
    assert_eq!(r["requests"]["used"], 10.0);
    assert_eq!(r["text_chars"]["reserved"], 1000.0);
    assert_eq!(r["text_chars"]["remaining"], 0.0);
    assert_eq!(r["concurrent_jobs"]["used"], 10);
    let pg = pg_count(
        &app,
        "select count(*) from jobs where account_id = $1 and status = 'queued'",
        chars,
    )
    .await;
    assert_eq!(pg, 10);
    let u = usage(&app, &audio_key).await;
    assert_eq!(u["resources"]["audio_seconds"]["reserved"], 8.0, "{u}");

    // Nineteen refusals, one audit entry: exhaustion is audited once per
    // account, day and resource (the marker lives in Redis).
    let audited = pg_count(
        &app,
        "select count(*) from audit_log where account_id = $1 and action = 'quota.exhausted'",
        req,
    )
    .await;
    assert_eq!(audited, 1);

    // Redis loses everything: counters come back from Postgres and every
    // quota still holds.
    app.flush_redis().await;
    let (accepted, _) = race_text(&app, &conc_key, 8, "Hallo.").await;
    assert_eq!(accepted, 0, "concurrency after the flush");
    let (accepted, _) = race_text(&app, &req_key, 8, "Hallo.").await;
    assert_eq!(accepted, 0, "requests after the flush");
    let (accepted, _) = race_text(&app, &chars_key, 8, "x").await;
    assert_eq!(accepted, 0, "text characters after the flush");
    let responses =
        join_all((0..4).map(|_| app.submit_audio(&audio_key, tone_wav(1.5), "tone.wav"))).await;
    assert_eq!(tally(responses).await.0, 0, "audio after the flush");
    let responses =
        join_all((0..4).map(|_| app.submit_audio(&audio_key, tone_wav(1.0), "tone.wav"))).await;
    assert_eq!(
        tally(responses).await.0,
        1,
        "exactly the last second of audio fits"
    );
    let u = usage(&app, &req_key).await;
    assert_eq!(u["resources"]["requests"]["used"], 5.0);
    for (account, expected) in [(conc, 3), (req, 5), (chars, 10), (audio, 5), (proc_acct, 3)] {
        let jobs = pg_count(
            &app,
            "select count(*) from jobs where account_id = $1",
            account,
        )
        .await;
        assert_eq!(jobs, expected, "jobs in Postgres for {account}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn finished_jobs_swap_their_reservation_for_measured_usage() {
    let app = TestApp::spawn().await;
    let (account, key) = app.new_account().await;
    let id = app
        .submit_ok(
            &key,
            common::speech::wav_16k("The weather is nice today."),
            "a.wav",
        )
        .await;
    let before = usage(&app, &key).await;
    assert_eq!(before["resources"]["concurrent_jobs"]["used"], 1);
    let job = app.wait_for_job(&key, &id, Duration::from_secs(300)).await;
    assert_eq!(job["status"], "succeeded");
    let after = usage(&app, &key).await;
    let r = &after["resources"];
    assert_eq!(r["concurrent_jobs"]["used"], 0, "{after}");
    assert_eq!(r["audio_seconds"]["reserved"], 0.0);
    assert_eq!(r["processing_seconds"]["reserved"], 0.0);
    // Used equals Postgres's usage records, rounded up to milliseconds.
    let (audio_ms, processing_ms): (i64, i64) = sqlx::query_as(
        "select coalesce(sum(ceil(quantity * 1000)) filter (where metric = 'audio_seconds'), 0)::bigint,
                coalesce(sum(ceil(quantity * 1000)) filter (where metric = 'processing_seconds'), 0)::bigint
         from usage_records where account_id = $1",
    )
    .bind(account)
    .fetch_one(&app.db)
    .await
    .expect("usage");
    assert!(audio_ms > 1000);
    assert_eq!(r["audio_seconds"]["used"], audio_ms as f64 / 1000.0);
    assert_eq!(
        r["processing_seconds"]["used"],
        processing_ms as f64 / 1000.0
    );
    // After a flush the rebuilt counters say the same.
    app.flush_redis().await;
    assert_eq!(usage(&app, &key).await["resources"], after["resources"]);
    // Daily rows from Postgres.
    let today = after["day"].as_str().expect("day");
    let ranged = app
        .call(
            Method::GET,
            &format!("/v1/usage?from={today}&to={today}"),
            Some(&key),
            None,
        )
        .await
        .json::<Value>()
        .await
        .expect("json");
    assert_eq!(ranged["daily"][0]["requests"], 1);
    let audio_seconds: f64 = sqlx::query_scalar(
        "select sum(quantity) from usage_records where account_id = $1 and metric = 'audio_seconds'",
    )
    .bind(account)
    .fetch_one(&app.db)
    .await
    .expect("sum");
    let daily = ranged["daily"][0]["audio_seconds"]
        .as_f64()
        .expect("audio_seconds");
    assert!(
        (daily - audio_seconds).abs() < 1e-9,
        "{daily} vs {audio_seconds}"
    );
    let bad = app
        .call(
            Method::GET,
            "/v1/usage?from=2026-02-01&to=2025-01-01",
            Some(&key),
            None,
        )
        .await;
    error_code(bad, 400).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_answer_429_with_retry_after_and_ietf_headers() {
    let app = TestApp::spawn_without_worker().await;
    let admin = app.admin_key().await;
    let (_, key) = account_with(&app, &admin, json!({"requests_per_minute": 6, "burst": 3})).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let response = app.call(Method::GET, "/v1/me", Some(&key), None).await;
        let policy = response
            .headers()
            .get("ratelimit-policy")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let state = response
            .headers()
            .get("ratelimit")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        assert_eq!(policy.as_deref(), Some("\"key\";q=6;w=60"));
        let state = state.expect("RateLimit header");
        assert!(state.starts_with("\"key\";r="), "{state}");
        statuses.push((response.status().as_u16(), state, response));
    }
    let codes: Vec<u16> = statuses.iter().map(|s| s.0).collect();
    assert_eq!(codes, [200, 200, 200, 429]);
    assert_eq!(statuses[0].1, "\"key\";r=2;t=10");
    let (_, _, refused) = statuses.pop().expect("last");
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((9..=10).contains(&retry_after), "{retry_after}");
    let body: Value = refused.json().await.expect("json");
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(body["error"]["limit"], "key_requests_per_minute");

    // Another key of another account is not affected.
    let (_, other) = app.new_account().await;
    assert_eq!(
        app.call(Method::GET, "/v1/me", Some(&other), None)
            .await
            .status(),
        200
    );

    // Logins are limited per address before any password is checked.
    let mut login_codes = Vec::new();
    for _ in 0..12 {
        let r = app
            .call(Method::POST, "/v1/auth/login", None, Some(json!({"email": format!("{}@example.com", Uuid::new_v4()), "password": "whatever it is here"})))
            .await;
        login_codes.push(r.status().as_u16());
    }
    assert!(login_codes.contains(&429), "{login_codes:?}");
}

/// An `audio_url` reserves an estimate; once fetched, its reservation grows
/// to the real length within what the account has left today, or the job
/// fails `quota_exceeded` before inference, unbilled.
#[tokio::test(flavor = "multi_thread")]
async fn audio_by_url_is_held_to_the_daily_audio_quota() {
    let allow = common::local_fetch_env();
    let mut api_env = allow.clone();
    // Reserve a second at submission: the real length is what counts.
    api_env.push(("VOXQ_URL_AUDIO_ESTIMATE".to_owned(), "1".to_owned()));
    let app = TestApp::spawn_with(common::Options {
        api_env,
        worker_env: allow,
        ..common::Options::default()
    })
    .await;
    let admin = app.admin_key().await;
    let (_, key) = account_with(&app, &admin, json!({"audio_seconds_per_day": 10})).await;
    let wav = common::speech::wav_16k(
        "I would like to order a cup of coffee and a piece of cake, please, and the bill.",
    );
    let seconds = voxq_shared::audio::probe(wav.clone().into())
        .expect("probe")
        .duration_seconds;
    assert!(
        (5.0..10.0).contains(&seconds),
        "{seconds} s: two must not fit in 10 s"
    );
    let port = common::serve_local(
        axum::Router::new().route("/a.wav", axum::routing::get(move || async move { wav })),
    )
    .await;
    let submit = || {
        app.submit_form(
            &key,
            reqwest::multipart::Form::new()
                .text("audio_url", format!("http://127.0.0.1:{port}/a.wav")),
        )
    };
    let id = |body: Value| body["id"].as_str().expect("id").to_owned();

    let first = id(submit().await.json().await.expect("json"));
    let job = app
        .wait_for_job(&key, &first, Duration::from_secs(120))
        .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let second = id(submit().await.json().await.expect("json"));
    let job = app
        .wait_for_job(&key, &second, Duration::from_secs(120))
        .await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error"]["code"], "quota_exceeded", "{job}");

    let used = usage(&app, &key).await;
    let audio = &used["resources"]["audio_seconds"];
    assert!(
        (audio["used"].as_f64().expect("used") - seconds).abs() < 0.01,
        "{used}"
    );
    assert_eq!(audio["reserved"].as_f64(), Some(0.0), "{used}");
    let billed = voxq_shared::db::usage::for_job(&app.db, second.parse().expect("uuid"))
        .await
        .expect("usage");
    assert!(billed.is_empty(), "billed: {billed:?}");
}
