//! Talking to a test's API as a client would: requests, submissions,
//! waiting for jobs, reading metrics, error codes and tokens.

use std::time::{Duration, Instant};

use reqwest::multipart::{Form, Part};
use serde_json::Value;

use super::spawning::TestApp;

impl TestApp {
    /// Any request, with an optional bearer token and JSON body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> reqwest::Response {
        self.call_at(&self.api_url, method, path, token, body).await
    }

    /// [`Self::call`] against another API instance.
    pub async fn call_at(
        &self,
        base: &str,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self.http.request(method, format!("{base}{path}"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("request")
    }

    /// `GET path` as `token`, asserting a 200; the JSON body.
    pub async fn get_json(&self, path: &str, token: &str) -> Value {
        let response = self
            .call(reqwest::Method::GET, path, Some(token), None)
            .await;
        let status = response.status();
        let body: Value = response.json().await.expect("json");
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// Logs in, asserting a 200, and returns the token answer.
    pub async fn login(&self, email: &str, password: &str) -> Value {
        let response = self
            .call(
                reqwest::Method::POST,
                "/v1/auth/login",
                None,
                Some(serde_json::json!({ "email": email, "password": password })),
            )
            .await;
        let status = response.status();
        let body: Value = response.json().await.expect("json");
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Submits a translate job of `text`.
    pub async fn submit_text(&self, key: &str, text: &str) -> reqwest::Response {
        self.call(
            reqwest::Method::POST,
            "/v1/jobs",
            Some(key),
            Some(serde_json::json!({ "kind": "translate", "text": text, "target_language": "de" })),
        )
        .await
    }

    pub async fn submit_audio(
        &self,
        key: &str,
        bytes: Vec<u8>,
        file_name: &str,
    ) -> reqwest::Response {
        self.submit_form(
            key,
            Form::new().part("file", Part::bytes(bytes).file_name(file_name.to_owned())),
        )
        .await
    }

    pub async fn submit_form(&self, key: &str, form: Form) -> reqwest::Response {
        self.http
            .post(format!("{}/v1/jobs", self.api_url))
            .bearer_auth(key)
            .multipart(form)
            .send()
            .await
            .expect("request")
    }

    /// Unauthenticated GET of an API path.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.api_url))
            .send()
            .await
            .expect("request")
    }

    /// `GET /v1/jobs/{id}?format=…` as `key`.
    pub async fn get_job_format(&self, key: &str, id: &str, format: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/v1/jobs/{id}?format={format}", self.api_url))
            .bearer_auth(key)
            .send()
            .await
            .expect("request")
    }

    /// A job rendered as `format`, asserting a 200.
    pub async fn get_job_as(&self, key: &str, id: &str, format: &str) -> String {
        let response = self.get_job_format(key, id, format).await;
        assert_eq!(response.status(), 200, "format {format}");
        response.text().await.expect("text")
    }

    /// `POST /v1/jobs` with a raw body of the given content type.
    pub async fn submit_raw(&self, key: &str, content_type: &str, body: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/v1/jobs", self.api_url))
            .bearer_auth(key)
            .header("content-type", content_type)
            .body(body.to_owned())
            .send()
            .await
            .expect("request")
    }

    pub async fn get_job(&self, key: &str, id: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/v1/jobs/{id}", self.api_url))
            .bearer_auth(key)
            .send()
            .await
            .expect("request")
    }

    /// Submits and returns the job id, asserting the 202.
    /// Submits a WAV upload with form `fields`; expects `202`, returns the id.
    pub async fn submit_wav_with(
        &self,
        key: &str,
        wav: Vec<u8>,
        fields: &[(&str, &str)],
    ) -> String {
        let mut form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(wav)
                .file_name("audio.wav")
                .mime_str("audio/wav")
                .expect("mime"),
        );
        for (name, value) in fields {
            form = form.text(name.to_string(), value.to_string());
        }
        let response = self.submit_form(key, form).await;
        let status = response.status();
        let body: Value = response.json().await.expect("json");
        assert_eq!(status, 202, "{fields:?}: {body}");
        body["id"].as_str().expect("id").to_owned()
    }

    pub async fn submit_ok(&self, key: &str, bytes: Vec<u8>, file_name: &str) -> String {
        let response = self.submit_audio(key, bytes, file_name).await;
        let status = response.status();
        let body: Value = response.json().await.expect("json");
        assert_eq!(status, 202, "{file_name}: {body}");
        assert_eq!(body["status"], "queued");
        assert_eq!(
            body["url"],
            format!("/v1/jobs/{}", body["id"].as_str().expect("id"))
        );
        body["id"].as_str().expect("id").to_owned()
    }

    pub async fn wait_for_job(&self, key: &str, id: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let body: Value = self.get_job(key, id).await.json().await.expect("json");
            let status = body["status"].as_str().unwrap_or("");
            if matches!(status, "succeeded" | "failed" | "cancelled") {
                return body;
            }
            assert!(Instant::now() < deadline, "job {id} still {status}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Cancels a running job and waits until its worker has stopped it
    /// (counted as stopped, not processed).
    pub async fn cancel_and_wait_for_stop(&self, key: &str, id: &str, timeout: Duration) {
        let path = format!("/v1/jobs/{id}");
        let cancelled = self
            .call(reqwest::Method::DELETE, &path, Some(key), None)
            .await;
        assert_eq!(cancelled.status(), 200);
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let metrics = self.worker_metrics().await;
            if metric_value(&metrics, "voxq_worker_jobs_stopped_total", "cancelled") >= 1.0 {
                assert_eq!(
                    metric_value(&metrics, "voxq_worker_jobs_processed_total", ""),
                    0.0,
                    "{metrics}"
                );
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "not stopped:\n{metrics}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The API's metrics (its scrape-time readings at most 5 s old).
    pub async fn api_metrics(&self) -> String {
        self.metrics_at(&self.api_metrics_url).await
    }

    pub async fn worker_metrics(&self) -> String {
        let url = self.worker_url.as_ref().expect("worker running");
        self.metrics_at(url).await
    }

    /// The metrics of the worker whose metrics URL this is.
    pub async fn metrics_at(&self, url: &str) -> String {
        self.http
            .get(format!("{url}/metrics"))
            .send()
            .await
            .expect("worker metrics")
            .text()
            .await
            .expect("text")
    }
}

/// Asserts the one error shape and returns its code.
pub async fn error_code(response: reqwest::Response, status: u16) -> String {
    let actual = response.status().as_u16();
    let body: Value = response.json().await.expect("error body is JSON");
    assert_eq!(actual, status, "{body}");
    let message = body["error"]["message"].as_str().expect("error.message");
    assert!(!message.is_empty());
    body["error"]["code"]
        .as_str()
        .expect("error.code")
        .to_owned()
}

/// Reads a counter's value from Prometheus text, summed over label sets
/// that contain `labels`.
pub fn metric_value(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The JSON claims inside a JWT, without verifying it.
pub fn jwt_claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("JWT payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("claims JSON")
}

/// Signs `claims` with HS256 under `secret`.
pub fn sign_jwt(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign")
}

/// An unsigned token (`alg: none`) with `claims`.
pub fn unsigned_jwt(claims: &Value) -> String {
    use base64::Engine as _;
    let b64 = |v: &Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
    };
    format!(
        "{}.{}.",
        b64(&serde_json::json!({"alg": "none", "typ": "JWT"})),
        b64(claims)
    )
}
