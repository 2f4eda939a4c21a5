//! The webhook dispatcher: leases due deliveries, signs and posts them,
//! and logs every attempt. It runs in the API processes, never on a GPU
//! worker. A delivery is leased, not locked in a transaction: a dispatcher
//! that dies mid-send leaves it to another once the lease ends, and the
//! retry carries the same `webhook-id`, so receivers can deduplicate.
//!
//! Every send is a task of its own: a pass leases what is due and moves on,
//! so a receiver that takes its full timeout delays nobody else. The lease
//! query caps deliveries in flight per endpoint and per account.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use voxq_shared::db::webhooks::{self as repo, Attempt, Concurrency, Due, Next};
use voxq_shared::net_guard::Guard;
use voxq_shared::webhooks as signing;

use crate::config::WebhookConfig;
use crate::metrics::Metrics;

/// How long the answer's excerpt in the log may be.
const EXCERPT_BYTES: usize = 1024;
/// Longest wait a `Retry-After` can ask for.
const MAX_RETRY_AFTER: f64 = 24.0 * 3600.0;
/// Between passes when nothing wakes the dispatcher.
const IDLE: Duration = Duration::from_secs(1);

pub struct Dispatcher {
    db: PgPool,
    guard: Guard,
    retry_seconds: Vec<f64>,
    disable_after: chrono::Duration,
    timeout: Duration,
    /// Sends in flight in this dispatcher at most.
    capacity: usize,
    concurrency: Concurrency,
    metrics: Arc<Metrics>,
}

impl Dispatcher {
    pub fn new(db: PgPool, config: &WebhookConfig, metrics: Arc<Metrics>) -> Self {
        Self {
            db,
            metrics,
            guard: config.guard(),
            retry_seconds: config.retry_seconds.clone(),
            disable_after: chrono::Duration::seconds((config.disable_after_hours * 3600.0) as i64),
            timeout: Duration::from_secs(config.timeout),
            capacity: config.concurrency as usize,
            concurrency: Concurrency {
                per_endpoint: i64::from(config.endpoint_concurrency),
                per_account: i64::from(config.account_concurrency),
            },
        }
    }

    /// Sends until `stop`; woken by `pg_notify('voxq_webhooks')` from the
    /// transactions that create deliveries, by a send that ends (its
    /// endpoint may take another), and once a second anyway (for retries
    /// that come due). Then it leases nothing more and lets the sends in
    /// flight finish and record their attempts, for up to `drain`, so a
    /// restart repeats none of them; those still going are dropped, and
    /// their leases let another dispatcher retry them.
    pub async fn run(self, stop: CancellationToken, drain: Duration) {
        let this = Arc::new(self);
        // Runtime-checked: LISTEN is not a statement the macros can prepare;
        // `PgListener` sends it with the fixed channel name quoted in.
        let mut listener = match PgListener::connect_with(&this.db).await {
            Ok(mut l) => match l.listen("voxq_webhooks").await {
                Ok(()) => Some(l),
                Err(e) => {
                    tracing::warn!(error = %e, "webhook wake-ups unavailable; polling");
                    None
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "webhook wake-ups unavailable; polling");
                None
            }
        };
        let mut sending = JoinSet::new();
        loop {
            while let Some(ended) = sending.try_join_next() {
                log_ended(ended);
            }
            let room = this.capacity.saturating_sub(sending.len());
            if room > 0 {
                match this.lease(room).await {
                    Ok(due) => {
                        let full = due.len() == room;
                        for due in due {
                            let this = Arc::clone(&this);
                            sending.spawn(async move { this.deliver(&due).await });
                        }
                        // More may be due than there was room for.
                        if full {
                            continue;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "leasing webhook deliveries failed"),
                }
            }
            let woken = async {
                match listener.as_mut() {
                    Some(l) => {
                        let _ = l.recv().await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = stop.cancelled() => break,
                () = woken => {}
                Some(ended) = sending.join_next() => log_ended(ended),
                () = tokio::time::sleep(IDLE) => {}
            }
        }
        let finished = tokio::time::timeout(drain, async {
            while let Some(ended) = sending.join_next().await {
                log_ended(ended);
            }
        })
        .await;
        if finished.is_err() {
            tracing::warn!(
                sends = sending.len(),
                "webhook sends still in flight at shutdown are left to their leases"
            );
            sending.abort_all();
        }
    }

    async fn lease(&self, room: usize) -> Result<Vec<Due>, sqlx::Error> {
        let lease = self.timeout.as_secs_f64() * 3.0 + 5.0;
        let room = i64::try_from(room).unwrap_or(i64::MAX);
        repo::lease_due(&self.db, room, lease, self.concurrency).await
    }

    async fn deliver(&self, due: &Due) -> Result<(), sqlx::Error> {
        if due.endpoint_disabled {
            self.count(&Next::Cancel);
            return repo::record(&self.db, due, None, &Next::Cancel).await;
        }
        let sending = Instant::now();
        let (attempt, retry_after) = self.send(due).await;
        let next = self.next(due, &attempt, retry_after);
        if matches!(next, Next::Delivered) {
            let lag = due.age_seconds + sending.elapsed().as_secs_f64();
            self.metrics.webhook_lag.observe(lag);
        }
        self.count(&next);
        tracing::info!(
            delivery = due.id, event = %due.event_id, attempt = due.attempts,
            status = ?attempt.status_code, error = ?attempt.error, next = ?next,
            "webhook attempt"
        );
        repo::record(&self.db, due, Some(&attempt), &next).await
    }

    fn count(&self, next: &Next) {
        let outcome = match next {
            Next::Delivered => "delivered",
            Next::RetryIn(_) => "retry",
            Next::GiveUp => "failed",
            Next::Disable(_) => "disabled",
            Next::Cancel => "cancelled",
        };
        self.metrics
            .webhook_deliveries
            .with_label_values(&[outcome])
            .inc();
    }

    /// One attempt: the URL checked again (its addresses may have changed
    /// since registration) and the request pinned to the checked addresses.
    async fn send(&self, due: &Due) -> (Attempt, Option<f64>) {
        let started = Instant::now();
        let failed = |error: String| Attempt {
            status_code: None,
            latency_ms: started.elapsed().as_millis() as i32,
            error: Some(error),
            response_excerpt: None,
        };
        let checked = match self.guard.resolve(&due.url).await {
            Ok(checked) => checked,
            Err(e) => return (failed(format!("refused: {e}")), None),
        };
        let Some(secret) = due.secret.as_deref() else {
            return (failed("no signing secret".into()), None);
        };
        let timestamp = chrono::Utc::now().timestamp();
        let body = due.payload.as_bytes();
        let mut signatures = Vec::new();
        for secret in std::iter::once(secret).chain(due.previous_secret.as_deref()) {
            match signing::sign(secret, &due.event_id, timestamp, body) {
                Ok(signature) => signatures.push(signature),
                Err(e) => return (failed(e.to_string()), None),
            }
        }
        let client = checked.client(
            self.timeout,
            concat!("voxq-webhooks/", env!("CARGO_PKG_VERSION")),
        );
        let client = match client {
            Ok(client) => client,
            Err(e) => return (failed(e.to_string()), None),
        };
        let response = client
            .post(checked.url.clone())
            .header("content-type", "application/json")
            .header("webhook-id", &due.event_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signatures.join(" "))
            .body(due.payload.clone())
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(e) => return (failed(without_url(e).to_string()), None),
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0);
        let excerpt = excerpt(response).await;
        let attempt = Attempt {
            status_code: Some(status.as_u16()),
            latency_ms: started.elapsed().as_millis() as i32,
            error: (!status.is_success()).then(|| {
                if status.is_redirection() {
                    "redirects are not followed".to_owned()
                } else {
                    format!("the receiver answered {status}")
                }
            }),
            response_excerpt: excerpt,
        };
        (attempt, retry_after)
    }

    /// Only a 2xx is a success. 410 Gone disables the endpoint; so do
    /// failures that have lasted too long. Everything else is retried on
    /// the schedule, or after `Retry-After` on 429 and 5xx if that is later.
    fn next(&self, due: &Due, attempt: &Attempt, retry_after: Option<f64>) -> Next {
        match attempt.status_code {
            Some(code) if (200..300).contains(&code) => return Next::Delivered,
            Some(410) if due.endpoint_id.is_some() => {
                return Next::Disable("the receiver answered 410 Gone".into())
            }
            Some(410) => return Next::GiveUp,
            _ => {}
        }
        let failing_too_long = due
            .failing_since
            .is_some_and(|since| chrono::Utc::now() - since > self.disable_after);
        if failing_too_long {
            return Next::Disable(format!(
                "deliveries failed for more than {} hours",
                self.disable_after.num_hours()
            ));
        }
        let index = usize::try_from(due.attempts - 1).unwrap_or(0);
        let Some(base) = self.retry_seconds.get(index).copied() else {
            return Next::GiveUp;
        };
        let mut delay = base * rand::thread_rng().gen_range(0.8..1.2);
        let honours = matches!(attempt.status_code, Some(429) | Some(500..=599));
        if let Some(asked) = retry_after.filter(|_| honours) {
            delay = delay.max(asked.min(MAX_RETRY_AFTER));
        }
        Next::RetryIn(delay)
    }
}

/// A send whose outcome could not be recorded stays leased; its lease runs
/// out and it is tried again.
fn log_ended(ended: Result<Result<(), sqlx::Error>, tokio::task::JoinError>) {
    match ended {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "recording a webhook attempt failed"),
        Err(e) => tracing::error!(error = %e, "a webhook send panicked"),
    }
}

/// The error without the URL, which may carry a secret token of the
/// receiver's.
fn without_url(e: reqwest::Error) -> reqwest::Error {
    e.without_url()
}

async fn excerpt(mut response: reqwest::Response) -> Option<String> {
    let mut bytes = Vec::new();
    while bytes.len() < EXCERPT_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    bytes.truncate(EXCERPT_BYTES);
    (!bytes.is_empty()).then(|| String::from_utf8_lossy(&bytes).into_owned())
}
