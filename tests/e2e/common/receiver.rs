//! A webhook receiver for tests: records every request it gets and
//! answers with the status the test sets.

use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub id: String,
    pub timestamp: i64,
    pub signature: String,
    pub body: Vec<u8>,
    /// What the receiver answered.
    pub answered: u16,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("webhook body is JSON")
    }

    pub fn event_type(&self) -> String {
        self.json()["type"].as_str().unwrap_or("").to_owned()
    }
}

#[derive(Clone)]
struct Shared {
    log: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
    /// Raw bytes to answer with instead of the status's usual body.
    body: Arc<Mutex<Option<Vec<u8>>>>,
    /// How long to wait before answering, in milliseconds.
    delay_ms: Arc<AtomicU64>,
}

pub struct Receiver {
    pub port: u16,
    shared: Shared,
}

impl Receiver {
    pub async fn start() -> Self {
        let shared = Shared {
            log: Arc::new(Mutex::new(Vec::new())),
            status: Arc::new(AtomicU16::new(200)),
            body: Arc::new(Mutex::new(None)),
            delay_ms: Arc::new(AtomicU64::new(0)),
        };
        let app = Router::new()
            .route("/{*path}", post(receive))
            .with_state(shared.clone());
        let port = super::serve_local(app).await;
        Self { port, shared }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    /// What every later request is answered with (`302` redirects to
    /// 127.0.0.2; `429` and `503` carry `Retry-After: 1`).
    pub fn answer(&self, status: u16) {
        self.shared.status.store(status, Ordering::SeqCst);
    }

    /// What every later answer's body is: any bytes, valid text or not.
    pub fn answer_body(&self, body: &[u8]) {
        *self.shared.body.lock().expect("body") = Some(body.to_vec());
    }

    /// Every later request is answered only after `delay` (the request is
    /// logged when it arrives).
    pub fn delay(&self, delay: Duration) {
        self.shared
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.log.lock().expect("log").clone()
    }
}

async fn receive(
    State(shared): State<Shared>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let answered = shared.status.load(Ordering::SeqCst);
    shared.log.lock().expect("log").push(Received {
        path: uri.path().to_owned(),
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp").parse().unwrap_or(0),
        signature: header("webhook-signature"),
        body: body.to_vec(),
        answered,
    });
    let delay = shared.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let status = StatusCode::from_u16(answered).unwrap_or(StatusCode::OK);
    let body = shared.body.lock().expect("body").clone();
    if let Some(body) = body {
        return (status, body).into_response();
    }
    match answered {
        302 => (status, [("location", "http://127.0.0.2/stolen")], "").into_response(),
        429 | 503 => (status, [("retry-after", "1")], "try later").into_response(),
        _ => (status, "ok").into_response(),
    }
}
