//! Gauges read at scrape time: queue depths from the broker, queued and
//! running jobs, the outbox and pending webhooks from Postgres, and whether
//! each store answers. Every API replica reports the same cluster-wide
//! values (aggregate them with `max`, not `sum`); a reading is reused for
//! a few seconds, so several Prometheus servers or a fast scrape interval
//! cost the stores no more.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use prometheus::{Gauge, GaugeVec, IntGauge, IntGaugeVec, Opts, Registry};
use tokio::sync::Mutex;
use voxq_shared::db::backlog::{self, Backlog};
use voxq_shared::queue::{Depths, Lane};

use voxq_shared::queue::Publisher;

use crate::catalog::Catalog;

/// Where the readings come from.
#[derive(Clone)]
pub struct Sources {
    pub db: sqlx::PgPool,
    pub redis: redis::aio::ConnectionManager,
    pub catalog: Catalog,
    pub publisher: std::sync::Arc<Publisher>,
}

/// How long one reading is served again.
const FRESH_FOR: Duration = Duration::from_secs(5);
/// Longest wait for one store's answer.
const STORE_TIMEOUT: Duration = Duration::from_secs(3);

pub struct Readings {
    queue_ready: IntGaugeVec,
    queue_consumers: IntGaugeVec,
    dead_letters: IntGauge,
    jobs_queued: IntGaugeVec,
    jobs_running: IntGaugeVec,
    oldest_queued: GaugeVec,
    outbox_pending: IntGauge,
    outbox_oldest: Gauge,
    webhooks_pending: IntGauge,
    webhooks_oldest: Gauge,
    store_up: IntGaugeVec,
    /// The lock also serialises scrapes.
    last: Mutex<Last>,
}

#[derive(Default)]
struct Last {
    /// When the gauges were last read.
    at: Option<Instant>,
    /// Every model the per-model gauges have named.
    models: BTreeSet<String>,
}

impl Readings {
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let queue_labels = ["queue", "model", "lane"];
        let this = Self {
            queue_ready: IntGaugeVec::new(
                Opts::new(
                    "queue_messages_ready",
                    "Messages waiting in a model's lane queue for a worker",
                ),
                &queue_labels,
            )?,
            queue_consumers: IntGaugeVec::new(
                Opts::new(
                    "queue_consumers",
                    "Workers consuming a model's lane queue (0: no live worker)",
                ),
                &queue_labels,
            )?,
            dead_letters: IntGauge::new(
                "queue_dead_letters",
                "Messages in the dead-letter queue, kept for operators",
            )?,
            jobs_queued: IntGaugeVec::new(
                Opts::new("jobs_queued", "Jobs waiting for a worker, by model"),
                &["model"],
            )?,
            jobs_running: IntGaugeVec::new(
                Opts::new(
                    "jobs_running",
                    "Jobs claimed by a worker and not ended, by model",
                ),
                &["model"],
            )?,
            oldest_queued: GaugeVec::new(
                Opts::new(
                    "queue_oldest_age_seconds",
                    "Age of the model's oldest queued job (0 when none waits)",
                ),
                &["model"],
            )?,
            outbox_pending: IntGauge::new(
                "outbox_pending",
                "Job messages committed and not yet published",
            )?,
            outbox_oldest: Gauge::new(
                "outbox_oldest_age_seconds",
                "Age of the oldest unpublished job message (0 when none)",
            )?,
            webhooks_pending: IntGauge::new(
                "webhook_pending",
                "Webhook deliveries not yet delivered nor given up",
            )?,
            webhooks_oldest: Gauge::new(
                "webhook_oldest_pending_age_seconds",
                "Age of the oldest pending webhook delivery (0 when none)",
            )?,
            store_up: IntGaugeVec::new(
                Opts::new(
                    "store_up",
                    "Whether a store answered the last reading: 1 up, 0 down",
                ),
                &["store"],
            )?,
            last: Mutex::new(Last::default()),
        };
        registry.register(Box::new(this.queue_ready.clone()))?;
        registry.register(Box::new(this.queue_consumers.clone()))?;
        registry.register(Box::new(this.dead_letters.clone()))?;
        registry.register(Box::new(this.jobs_queued.clone()))?;
        registry.register(Box::new(this.jobs_running.clone()))?;
        registry.register(Box::new(this.oldest_queued.clone()))?;
        registry.register(Box::new(this.outbox_pending.clone()))?;
        registry.register(Box::new(this.outbox_oldest.clone()))?;
        registry.register(Box::new(this.webhooks_pending.clone()))?;
        registry.register(Box::new(this.webhooks_oldest.clone()))?;
        registry.register(Box::new(this.store_up.clone()))?;
        Ok(this)
    }

    /// Reads again when the last reading is stale, then runs `encode`
    /// while no other scrape can change the gauges.
    pub async fn refreshed<T>(&self, state: &Sources, encode: impl FnOnce() -> T) -> T {
        let mut last = self.last.lock().await;
        if last.at.is_none_or(|at| at.elapsed() >= FRESH_FOR) {
            self.read(state, &mut last.models).await;
            last.at = Some(Instant::now());
        }
        encode()
    }

    async fn read(&self, state: &Sources, known: &mut BTreeSet<String>) {
        let mut redis = state.redis.clone();
        let ping = async move {
            redis::cmd("PING")
                .query_async::<String>(&mut redis)
                .await
                .is_ok()
        };
        let (backlog, redis_up) = tokio::join!(
            tokio::time::timeout(STORE_TIMEOUT, backlog::read(&state.db)),
            tokio::time::timeout(STORE_TIMEOUT, ping),
        );
        let backlog = match backlog {
            Ok(Ok(backlog)) => Some(backlog),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "reading the job backlog for the metrics");
                None
            }
            Err(_) => None,
        };
        let redis_up = redis_up.unwrap_or(false);
        // Every model a worker serves or may serve, and any that still has
        // jobs: a model whose workers are all gone shows as consumers 0.
        let mut models: BTreeSet<String> = BTreeSet::new();
        if redis_up {
            if let Ok(served) = state.catalog.models(false).await {
                models.extend(served.iter().map(|m| m.info.name.clone()));
            }
        }
        if let Some(backlog) = &backlog {
            models.extend(
                backlog
                    .queues
                    .iter()
                    .filter_map(|q| split_queue(&q.queue).map(|(model, _)| model.to_owned())),
            );
        }
        let models: Vec<String> = models.into_iter().collect();
        let depths = match state.publisher.depths(&models).await {
            Ok(depths) => Some(depths),
            Err(e) => {
                tracing::warn!(error = %e, "reading queue depths for the metrics");
                None
            }
        };
        self.store_up
            .with_label_values(&["postgres"])
            .set(i64::from(backlog.is_some()));
        self.store_up
            .with_label_values(&["redis"])
            .set(i64::from(redis_up));
        self.store_up
            .with_label_values(&["rabbitmq"])
            .set(i64::from(depths.is_some()));
        // A store that did not answer keeps its last values rather than
        // report an empty queue: the store_up gauge says they are stale.
        if let Some(depths) = depths {
            self.set_depths(&depths);
        }
        if let Some(backlog) = backlog {
            self.set_backlog(&backlog, known);
        }
    }

    fn set_depths(&self, depths: &Depths) {
        self.queue_ready.reset();
        self.queue_consumers.reset();
        for q in &depths.queues {
            let labels = [q.queue.as_str(), q.model.as_str(), q.lane.as_str()];
            self.queue_ready
                .with_label_values(&labels)
                .set(i64::from(q.ready));
            self.queue_consumers
                .with_label_values(&labels)
                .set(i64::from(q.consumers));
        }
        self.dead_letters.set(i64::from(depths.dead_letters));
    }

    fn set_backlog(&self, backlog: &Backlog, known: &mut BTreeSet<String>) {
        // Per model: a model's lanes summed, its oldest job the oldest of
        // any lane.
        let mut summed: BTreeMap<&str, (i64, i64, f64)> = BTreeMap::new();
        for q in &backlog.queues {
            let Some((model, _)) = split_queue(&q.queue) else {
                continue;
            };
            let entry = summed.entry(model).or_default();
            entry.0 += q.queued;
            entry.1 += q.running;
            entry.2 = entry.2.max(q.oldest_queued_seconds);
        }
        // A model with nothing left reads 0 rather than vanish, so that an
        // alert on its age resolves.
        known.extend(summed.keys().map(|m| (*m).to_owned()));
        for model in known.iter() {
            let (queued, running, oldest) = summed.get(model.as_str()).copied().unwrap_or_default();
            self.jobs_queued.with_label_values(&[model]).set(queued);
            self.jobs_running.with_label_values(&[model]).set(running);
            self.oldest_queued.with_label_values(&[model]).set(oldest);
        }
        self.outbox_pending.set(backlog.outbox.rows);
        self.outbox_oldest.set(backlog.outbox.oldest_seconds);
        self.webhooks_pending.set(backlog.webhooks.rows);
        self.webhooks_oldest.set(backlog.webhooks.oldest_seconds);
    }
}

/// A queue column (`model.lane`) as model and lane; model names may hold
/// dots, lanes never do.
fn split_queue(queue: &str) -> Option<(&str, Lane)> {
    let (model, lane) = queue.rsplit_once('.')?;
    Some((model, Lane::parse(lane)?))
}
