//! Health, readiness, metrics and request ids.

use crate::common;

use common::{error_code, speech, Options, TestApp};

#[tokio::test(flavor = "multi_thread")]
async fn health_metrics_and_request_ids_work() {
    let app = TestApp::spawn_without_worker().await;
    let live = app.get("/health/live").await;
    assert_eq!(live.status(), 200);
    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.expect("json");
    assert_eq!(
        body["checks"],
        serde_json::json!({"postgres": "up", "redis": "up", "rabbitmq": "up"})
    );

    // Every response carries a request id; a client's own is kept.
    let response = app.get("/v1/jobs/123").await;
    assert!(response.headers().get("x-request-id").is_some());
    error_code(response, 401).await;
    let response = app
        .http
        .get(format!("{}/nope", app.api_url))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .expect("get");
    assert_eq!(response.headers()["x-request-id"], "abc-123");
    assert_eq!(error_code(response, 404).await, "not_found");

    // Metrics are served on their own listener, not the public port.
    assert_eq!(
        error_code(app.get("/metrics").await, 404).await,
        "not_found"
    );
    let metrics = app.api_metrics().await;
    assert!(
        metrics.contains(
            r#"voxq_api_http_requests_total{method="GET",route="/v1/jobs/{id}",status="401"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("voxq_api_http_request_duration_seconds_bucket"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_names_the_dependency_that_is_down_and_submits_wait_in_the_outbox() {
    let app = TestApp::spawn_with(Options {
        worker: false,
        amqp_url: "amqp://guest:guest@127.0.0.1:1/%2f".into(),
        ..Options::default()
    })
    .await;
    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.expect("json");
    assert_eq!(body["checks"]["rabbitmq"], "down");
    assert_eq!(body["checks"]["postgres"], "up");

    // The broker being away does not lose or refuse the job: it is stored
    // with its message, which the outbox relay publishes when it can.
    let (_, key) = app.new_account().await;
    let wav = speech::wav_16k("Thank you very much.");
    let id = app.submit_ok(&key, wav, "a.wav").await;
    let (status, waiting): (String, i64) = sqlx::query_as(
        "select j.status, (select count(*) from outbox o where o.job_id = j.id)
         from jobs j where j.id = $1",
    )
    .bind(id.parse::<uuid::Uuid>().expect("uuid"))
    .fetch_one(&app.db)
    .await
    .expect("job row");
    assert_eq!((status.as_str(), waiting), ("queued", 1));
    let usage = app.get_json("/v1/usage", &key).await;
    let r = &usage["resources"];
    assert_eq!(r["concurrent_jobs"]["used"], 1, "{usage}");
    assert_eq!(r["requests"]["used"], 1.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_describes_every_route_and_every_documented_route_exists() {
    let app = TestApp::spawn_without_worker().await;
    let spec: serde_json::Value = app.get("/openapi.json").await.json().await.expect("json");
    assert!(spec["openapi"].as_str().expect("version").starts_with("3."));
    assert_eq!(
        spec["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let expected = [
        ("post", "/v1/jobs"),
        ("get", "/v1/jobs"),
        ("get", "/v1/jobs/{id}"),
        ("delete", "/v1/jobs/{id}"),
        ("post", "/v1/jobs/{id}/cancel"),
        ("delete", "/v1/jobs/{id}/data"),
        ("get", "/v1/jobs/{id}/events"),
        ("get", "/v1/jobs/{id}/webhooks"),
        ("post", "/v1/webhooks"),
        ("get", "/v1/webhooks"),
        ("get", "/v1/webhooks/{id}"),
        ("patch", "/v1/webhooks/{id}"),
        ("delete", "/v1/webhooks/{id}"),
        ("post", "/v1/webhooks/{id}/rotate-secret"),
        ("get", "/v1/webhooks/{id}/deliveries"),
        ("get", "/v1/webhooks/job-secret"),
        ("post", "/v1/webhooks/deliveries/{id}/redeliver"),
        ("get", "/v1/usage"),
        ("post", "/v1/keys"),
        ("get", "/v1/models"),
        ("post", "/v1/audio/transcriptions"),
        ("post", "/v1/audio/translations"),
        ("post", "/translate"),
        ("post", "/detect"),
        ("get", "/languages"),
        ("get", "/v1/keys"),
        ("get", "/v1/keys/{id}"),
        ("delete", "/v1/keys/{id}"),
        ("post", "/v1/keys/{id}/rotate"),
        ("post", "/v1/auth/login"),
        ("post", "/v1/auth/refresh"),
        ("post", "/v1/auth/logout"),
        ("get", "/v1/me"),
        ("post", "/v1/admin/accounts"),
        ("get", "/v1/admin/accounts"),
        ("get", "/v1/admin/accounts/{id}"),
        ("patch", "/v1/admin/accounts/{id}"),
        ("post", "/v1/admin/accounts/{id}/users"),
        ("get", "/health/live"),
        ("get", "/health/ready"),
    ];
    let paths = spec["paths"].as_object().expect("paths");
    let documented: usize = paths
        .values()
        .map(|p| p.as_object().map_or(0, |o| o.len()))
        .sum();
    assert_eq!(
        documented,
        expected.len(),
        "{:?}",
        paths.keys().collect::<Vec<_>>()
    );
    let id = uuid::Uuid::now_v7().to_string();
    for (method, path) in expected {
        let operation = &spec["paths"][path][method];
        assert!(
            operation["responses"].is_object(),
            "{method} {path} undocumented"
        );
        // Served: anything but the router's own "no such route".
        let url = path.replace("{id}", &id);
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        let response = app.call(method.clone(), &url, None, None).await;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        assert!(
            !body.contains("no such route"),
            "{method} {url} is documented but not served ({status})"
        );
    }
}
