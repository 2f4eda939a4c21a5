//! Liveness and readiness. Metrics have their own listener (`metrics`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
}

/// The process is up.
#[utoipa::path(get, path = "/health/live", tag = "health", responses((status = 200, description = "Live")))]
pub async fn live() -> Json<serde_json::Value> {
    Json(json!({ "status": "live" }))
}

/// Ready only when Postgres, Redis and RabbitMQ all answer; the body says
/// which one does not.
#[utoipa::path(get, path = "/health/ready", tag = "health", responses(
    (status = 200, description = "Every dependency answers"),
    (status = 503, description = "`checks` names the dependency that does not"),
))]
pub async fn ready(State(state): State<AppState>) -> Response {
    let timeout = std::time::Duration::from_secs(3);
    let postgres = tokio::time::timeout(timeout, voxq_shared::db::ping(&state.db));
    let mut redis = state.redis.clone();
    let redis = tokio::time::timeout(timeout, async move {
        redis::cmd("PING").query_async::<String>(&mut redis).await
    });
    let rabbitmq = tokio::time::timeout(timeout, state.publisher.channel());
    let (postgres, redis, rabbitmq) = tokio::join!(postgres, redis, rabbitmq);
    let checks = [
        ("postgres", matches!(postgres, Ok(Ok(_)))),
        ("redis", matches!(redis, Ok(Ok(_)))),
        ("rabbitmq", matches!(rabbitmq, Ok(Ok(_)))),
    ];
    let all_up = checks.iter().all(|(_, up)| *up);
    let body = json!({
        "status": if all_up { "ready" } else { "unavailable" },
        "checks": checks
            .iter()
            .map(|(name, up)| (name.to_string(), json!(if *up { "up" } else { "down" })))
            .collect::<serde_json::Map<_, _>>(),
    });
    let status = if all_up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}
