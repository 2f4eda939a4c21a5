//! voxq's HTTP API. `main.rs` only parses the configuration and calls
//! [`App::build`] and [`App::run`]; tests may do the same in-process.
//!
//! Rooms: [`routes`] (one module per resource) on the [`http`] stack;
//! [`submission`] (a job's way from request to queue); [`background`]
//! (outbox relay, webhook dispatcher, janitor); [`metrics`]; [`state`]
//! (what handlers share), built from [`config`].

pub mod background;
pub mod catalog;
pub mod config;
pub mod error;
pub mod http;
pub mod metrics;
pub mod openapi;
pub mod outbound;
pub mod routes;
pub mod state;
pub mod submission;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;
use voxq_shared::auth::limits::TierLimits;
use voxq_shared::cache::JobCache;
use voxq_shared::events::{EventHub, Events};
use voxq_shared::queue::{Publisher, Topology};
use voxq_shared::quota::Quotas;
use voxq_shared::registry::Registry;

use crate::background::dispatcher::Dispatcher;
use crate::background::janitor::Janitor;
use crate::background::outbox::Relay;
use crate::background::Background;
use crate::catalog::Catalog;
use crate::config::ApiConfig;
use crate::http::rate_limit::RateLimiter;
use crate::http::tokens::TokenKeys;
use crate::http::{stack, waiters};
use crate::metrics::{Metrics, Sources};
use crate::state::AppState;
use crate::submission::spool;

pub use crate::http::stack::router;

pub struct App {
    listener: TcpListener,
    router: Router,
    metrics_listener: TcpListener,
    metrics_router: Router,
    background: Background,
    publisher: Arc<Publisher>,
    stopping: tokio_util::sync::CancellationToken,
}

impl App {
    pub async fn build(config: ApiConfig) -> anyhow::Result<Self> {
        config.validate()?;
        if config.migrate {
            voxq_shared::db::create_database_if_missing(&config.common.database_url)
                .await
                .context("creating the database")?;
        }
        let db = voxq_shared::db::connect(&config.common.database_url, config.db_pool_size)
            .await
            .context("connecting to Postgres")?;
        if config.migrate {
            voxq_shared::db::MIGRATOR
                .run(&db)
                .await
                .context("running migrations")?;
        }
        let redis = voxq_shared::cache::connect(&config.common.redis_url)
            .await
            .context("connecting to Redis")?;
        let publisher = Publisher::new(
            &config.common.amqp_url,
            Topology::new(&config.common.namespace),
        );
        // Declare the topology now so a misconfigured broker shows at start;
        // an unreachable one only makes readiness fail until it is back.
        let declared =
            tokio::time::timeout(voxq_shared::queue::PUBLISH_TIMEOUT, publisher.channel()).await;
        if !matches!(declared, Ok(Ok(_))) {
            tracing::warn!("RabbitMQ not reachable at start; the outbox keeps jobs until it is");
        }
        let tiers = match &config.limits_file {
            Some(path) => TierLimits::load(path).map_err(anyhow::Error::msg)?,
            None => TierLimits::default(),
        };
        let dummy = tokio::task::spawn_blocking(voxq_shared::auth::password::dummy_hash).await?;
        let namespace = config.common.namespace.clone();
        let publisher = Arc::new(publisher);
        let relay = Relay::new(db.clone(), publisher.clone());
        let catalog = Catalog::new(
            Registry::new(redis.clone(), &namespace),
            config.standby_models.0.clone(),
        );
        let metrics = Arc::new(Metrics::new()?);
        let stopping = tokio_util::sync::CancellationToken::new();
        let state = AppState {
            relay: relay.clone(),
            events: Events::new(redis.clone(), &namespace),
            hub: EventHub::start(&config.common.redis_url, &namespace)
                .context("subscribing to job events")?,
            stopping: stopping.clone(),
            copies: spool::Copies::for_pool(config.db_pool_size),
            waiters: waiters::Waiters::new(
                config.max_waiting as usize,
                config.max_waiting_per_account as usize,
            ),
            cache: JobCache::new(redis.clone(), &namespace, config.result_cache_ttl),
            quotas: Quotas::new(redis.clone(), &namespace),
            limiter: RateLimiter::new(redis.clone(), &namespace),
            catalog: catalog.clone(),
            tokens: Arc::new(TokenKeys::new(&config)),
            tiers: Arc::new(tiers),
            dummy_password_hash: Arc::new(dummy),
            db: db.clone(),
            redis: redis.clone(),
            publisher: publisher.clone(),
            metrics: metrics.clone(),
            config: Arc::new(config),
        };
        let listener = TcpListener::bind(state.config.bind)
            .await
            .with_context(|| format!("binding {}", state.config.bind))?;
        let metrics_listener = TcpListener::bind(state.config.metrics_bind)
            .await
            .with_context(|| format!("binding {}", state.config.metrics_bind))?;
        let webhooks = &state.config.webhooks;
        let background = Background {
            relay,
            dispatcher: webhooks
                .dispatcher
                .then(|| Dispatcher::new(db.clone(), webhooks, metrics.clone())),
            janitor: Janitor {
                db: db.clone(),
                cache: state.cache.clone(),
                quotas: state.quotas.clone(),
                every: Duration::from_secs(state.config.janitor_interval.max(1)),
            },
            // A send takes the webhook timeout at most.
            webhook_drain: Duration::from_secs(webhooks.timeout.saturating_add(1)),
        };
        let sources = Sources {
            db,
            redis,
            catalog,
            publisher: publisher.clone(),
        };
        Ok(Self {
            background,
            metrics_router: metrics::router(metrics, sources),
            metrics_listener,
            publisher,
            router: stack::router(state),
            listener,
            stopping,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The metrics listener's port.
    pub fn metrics_port(&self) -> u16 {
        self.metrics_listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or(0)
    }

    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let addr = self.listener.local_addr()?;
        let metrics_addr = self.metrics_listener.local_addr()?;
        let background = self.background.start();
        // Scrapes go on while the API drains, and stop with the rest.
        let scrapes_end = tokio_util::sync::CancellationToken::new();
        let metrics = axum::serve(self.metrics_listener, self.metrics_router)
            .with_graceful_shutdown(scrapes_end.clone().cancelled_owned());
        let metrics = tokio::spawn(async move {
            if let Err(e) = metrics.await {
                tracing::error!(error = %e, "metrics listener failed");
            }
        });
        tracing::info!(%addr, %metrics_addr, "voxq-api listening");
        // Stop accepting, answer the requests in progress, then give the
        // outbox its last pass: what they committed gets published.
        let served = axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Event streams would hold their connections open forever.
            self.stopping.cancel();
        })
        .await
        .context("serving HTTP");
        // The relay's last pass publishes what the last requests committed.
        background.stop().await;
        scrapes_end.cancel();
        let _ = metrics.await;
        self.publisher.close().await;
        tracing::info!("voxq-api stopped");
        served
    }
}
