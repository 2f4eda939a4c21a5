//! `GET /docs/`: an interactive reference of the API (Swagger UI) over
//! `GET /openapi.json`. The page's files are compiled into the binary
//! (`utoipa-swagger-ui`'s `vendored` feature): it loads nothing from a
//! CDN, and builds download nothing.

use axum::http::header::CONTENT_SECURITY_POLICY;
use axum::http::HeaderValue;
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::state::AppState;

/// The page's own scripts and styles only (Swagger UI sets inline styles
/// and draws icons from `data:` URLs), and requests to this server only.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";

pub fn router() -> Router<AppState> {
    // No validator: Swagger UI would otherwise send the document to
    // validator.swagger.io.
    let config = Config::new(["/openapi.json"]).validator_url("none");
    Router::from(SwaggerUi::new("/docs").config(config)).layer(SetResponseHeaderLayer::overriding(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    ))
}
