//! Prometheus metrics, served on their own listener (never the public
//! port): requests labelled by matched route (never the raw path, which
//! would give one series per job id), refusals, webhook outcomes, and the
//! readings of queues and stores taken at scrape time (`readings`).

mod readings;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};
use std::time::Instant;

use std::sync::Arc;

pub use readings::{Readings, Sources};

/// Put on a response that refuses work for a limit (429): the reason
/// (`rate_limited`, `quota_exceeded`, …) counted by [`track`].
#[derive(Debug, Clone, Copy)]
pub struct Refusal(pub &'static str);

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    refusals: IntCounterVec,
    pub jobs_submitted: IntCounterVec,
    /// By outcome: `delivered`, `retry`, `failed` (gave up), `disabled`,
    /// `cancelled` (the endpoint was disabled or deleted before the attempt).
    pub webhook_deliveries: IntCounterVec,
    /// From a delivery's creation to its successful attempt.
    pub webhook_lag: Histogram,
    pub readings: Readings,
}

impl Metrics {
    pub fn new() -> prometheus::Result<Self> {
        let registry = Registry::new_custom(Some("voxq_api".into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests by route and status"),
            &["method", "route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency").buckets(
                vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                    30.0,
                ],
            ),
            &["method", "route", "status"],
        )?;
        let refusals = IntCounterVec::new(
            Opts::new(
                "refusals_total",
                "Requests refused for a rate limit, quota or cap, by reason",
            ),
            &["reason"],
        )?;
        let jobs_submitted = IntCounterVec::new(
            Opts::new("jobs_submitted_total", "Jobs accepted, by kind"),
            &["kind"],
        )?;
        let webhook_deliveries = IntCounterVec::new(
            Opts::new(
                "webhook_deliveries_total",
                "Webhook delivery attempts by outcome: delivered, retry, failed (gave up), \
                 disabled (this attempt disabled the endpoint), cancelled (the endpoint was \
                 disabled or deleted before it)",
            ),
            &["outcome"],
        )?;
        let webhook_lag = Histogram::with_opts(
            HistogramOpts::new(
                "webhook_delivery_lag_seconds",
                "From a webhook delivery's creation to its successful attempt",
            )
            .buckets(vec![
                0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0,
            ]),
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(refusals.clone()))?;
        registry.register(Box::new(jobs_submitted.clone()))?;
        registry.register(Box::new(webhook_deliveries.clone()))?;
        registry.register(Box::new(webhook_lag.clone()))?;
        let readings = Readings::register(&registry)?;
        Ok(Self {
            registry,
            requests,
            latency,
            refusals,
            jobs_submitted,
            webhook_deliveries,
            webhook_lag,
            readings,
        })
    }

    fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "encoding metrics");
        }
        buf
    }
}

/// The metrics listener's routes.
pub fn router(metrics: Arc<Metrics>, sources: Sources) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .with_state((metrics, sources))
}

async fn render(State((metrics, sources)): State<(Arc<Metrics>, Sources)>) -> Response {
    // The readings are refreshed and encoded under one lock, so two scrapes
    // never see each other's half-written gauges.
    let body = metrics
        .readings
        .refreshed(&sources, || metrics.encode())
        .await;
    ([(CONTENT_TYPE, prometheus::TEXT_FORMAT)], body).into_response()
}

/// Counts every request by its matched route, and the refusals.
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [method.as_str(), route.as_str(), status.as_str()];
    metrics.requests.with_label_values(&labels).inc();
    metrics
        .latency
        .with_label_values(&labels)
        .observe(started.elapsed().as_secs_f64());
    if let Some(Refusal(reason)) = response.extensions().get::<Refusal>() {
        metrics.refusals.with_label_values(&[reason]).inc();
    }
    response
}
