//! `/v1/jobs`: submitting a job, listing the caller's jobs, reading one
//! (at once or long-polled), and its life after submission (cancelling
//! it, deleting its data, following its events).

pub mod lifecycle;
pub mod list;
pub mod read;
pub mod submit;

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use axum::Router;

use crate::config::ApiConfig;
use crate::state::AppState;

/// Headroom over the upload limit for multipart framing and text fields.
const MULTIPART_OVERHEAD: usize = 64 * 1024;

pub fn router(config: &ApiConfig) -> Router<AppState> {
    Router::new()
        .route(
            "/v1/jobs",
            post(submit::submit)
                .layer(DefaultBodyLimit::max(
                    config.max_upload_bytes.saturating_add(MULTIPART_OVERHEAD),
                ))
                .get(list::list_jobs),
        )
        .route(
            "/v1/jobs/{id}",
            get(read::get_job).delete(lifecycle::cancel_job),
        )
        .route("/v1/jobs/{id}/cancel", post(lifecycle::cancel_job_post))
        .route("/v1/jobs/{id}/events", get(lifecycle::job_events))
        .route("/v1/jobs/{id}/data", delete(lifecycle::delete_job_data))
}
