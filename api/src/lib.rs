//! voxq's HTTP API. `main.rs` only parses the configuration and calls
//! [`App::build`] and [`App::run`]; the tests start the real binary.

pub mod catalog;
pub mod config;
pub mod dispatcher;
pub mod error;
pub mod idempotency;
pub mod janitor;
pub mod login_throttle;
pub mod metrics;
pub mod openapi;
pub mod outbox;
pub mod principal;
pub mod rate_limit;
pub mod reservations;
pub mod routes;
pub mod security;
pub mod spool;
pub mod state;
pub mod tokens;
pub mod waiters;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, Request};
use axum::Router;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use voxq_shared::auth::limits::TierLimits;
use voxq_shared::cache::JobCache;
use voxq_shared::events::{EventHub, Events};
use voxq_shared::models::Registry;
use voxq_shared::queue::{Publisher, Topology};
use voxq_shared::quota::Quotas;

use crate::catalog::Catalog;
use crate::config::ApiConfig;
use crate::metrics::Metrics;
use crate::outbox::Relay;
use crate::rate_limit::RateLimiter;
use crate::state::AppState;
use crate::tokens::TokenKeys;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub struct App {
    listener: TcpListener,
    router: Router,
    metrics_listener: TcpListener,
    metrics_router: Router,
    dispatcher: Option<dispatcher::Dispatcher>,
    janitor: (sqlx::PgPool, JobCache, Duration),
    relay: Relay,
    publisher: Arc<Publisher>,
    stopping: tokio_util::sync::CancellationToken,
}

/// How long a stopping API keeps relaying its outbox after the last
/// request has been answered.
const OUTBOX_DRAIN: Duration = Duration::from_secs(10);

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
            catalog: Catalog::new(
                Registry::new(redis.clone(), &namespace),
                config.standby_models.0.clone(),
            ),
            tokens: Arc::new(TokenKeys::new(&config)),
            tiers: Arc::new(tiers),
            dummy_password_hash: Arc::new(dummy),
            db,
            redis,
            publisher,
            metrics: Arc::new(Metrics::new()?),
            config: Arc::new(config),
        };
        let listener = TcpListener::bind(state.config.bind)
            .await
            .with_context(|| format!("binding {}", state.config.bind))?;
        let metrics_listener = TcpListener::bind(state.config.metrics_bind)
            .await
            .with_context(|| format!("binding {}", state.config.metrics_bind))?;
        let dispatcher = state.config.webhooks.dispatcher.then(|| {
            dispatcher::Dispatcher::new(
                state.db.clone(),
                &state.config.webhooks,
                state.metrics.clone(),
            )
        });
        let janitor = (
            state.db.clone(),
            state.cache.clone(),
            Duration::from_secs(state.config.janitor_interval.max(1)),
        );
        Ok(Self {
            dispatcher,
            janitor,
            metrics_router: metrics::router(state.clone()),
            metrics_listener,
            publisher: state.publisher.clone(),
            router: router(state),
            listener,
            relay,
            stopping,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let addr = self.listener.local_addr()?;
        let metrics_addr = self.metrics_listener.local_addr()?;
        // Stops the relay, the dispatcher and the janitor once serving ends.
        let background = tokio_util::sync::CancellationToken::new();
        let relay = tokio::spawn(self.relay.run(background.clone(), OUTBOX_DRAIN));
        let dispatcher = self
            .dispatcher
            .map(|d| tokio::spawn(d.run(background.clone())));
        let (db, cache, every) = self.janitor;
        tokio::spawn(janitor::run(db, cache, every, background.clone()));
        // Scrapes go on while the API drains, and stop with the rest.
        let metrics = axum::serve(self.metrics_listener, self.metrics_router)
            .with_graceful_shutdown(background.clone().cancelled_owned());
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
        background.cancel();
        let _ = metrics.await;
        if let Err(e) = relay.await {
            tracing::error!(error = %e, "outbox relay crashed");
        }
        // A send in progress is dropped; its lease runs out and another
        // dispatcher retries it under the same webhook-id.
        if let Some(dispatcher) = dispatcher {
            dispatcher.abort();
        }
        self.publisher.close().await;
        tracing::info!("voxq-api stopped");
        served
    }
}

/// The timeout layer answers with an empty body; give it the one error
/// shape.
async fn timeout_body(response: axum::response::Response) -> axum::response::Response {
    if response.status() == axum::http::StatusCode::REQUEST_TIMEOUT
        && !response.headers().contains_key(header::CONTENT_TYPE)
    {
        return error::error_response(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "the request took too long and was abandoned; a submission retried with the same \
             Idempotency-Key tells whether it was accepted",
        );
    }
    response
}

pub fn router(state: AppState) -> Router {
    let timeout = Duration::from_secs(state.config.request_timeout);
    // Every /v1 route: credentials resolved, rate limits applied, JSON
    // bodies bounded (job submission sets its own, larger limit).
    let v1 = Router::new()
        .merge(routes::jobs::router(&state.config))
        .merge(routes::auth::router())
        .merge(routes::keys::router())
        .merge(routes::models::router())
        .merge(routes::usage::router())
        .merge(routes::webhooks::router())
        .merge(routes::admin::router())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            principal::authenticate,
        ))
        .layer(DefaultBodyLimit::max(state.config.max_json_bytes));
    let router = Router::new()
        .merge(v1)
        .merge(routes::health::router())
        .merge(openapi::router())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .fallback(routes::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security::header_limit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security::headers,
        ));
    let router = match security::cors(&state.config) {
        Some(cors) => router.layer(cors),
        None => router,
    };
    router
        .layer(CatchPanicLayer::custom(routes::panic_response))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(axum::middleware::map_response(timeout_body))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let request_id = request
                    .headers()
                    .get(&REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!(
                    "request",
                    request_id = %request_id,
                    method = %request.method(),
                    path = %request.uri().path(),
                    account_id = tracing::field::Empty,
                )
            }),
        )
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
        ]))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}
