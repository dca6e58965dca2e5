//! CORS for browser apps served from other origins: only the configured origins
//! (`--cors-allowed-origins`) may read answers, send credentials (cookies, `Authorization`)
//! and have their preflights answered; with none configured no CORS header is ever sent, and
//! browsers keep every other site's pages out as usual.
//!
//! A listed origin is also trusted by the cookie forgery check (`auth::csrf`): it was listed
//! so that its pages may act for a signed-in user.

use std::time::Duration;

use axum::http::{header, HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowCredentials, AllowHeaders, AllowOrigin, CorsLayer, ExposeHeaders};

use crate::config::Config;

/// How long a browser may reuse a preflight's answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// The layer for the configured origins; `None` when none are.
pub fn layer(config: &Config) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = config
        .cors_allowed_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    let listed = origins.clone();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            // Only with the origin allowed: an unlisted one gets no CORS header at all.
            .allow_credentials(AllowCredentials::predicate(move |origin, _| {
                listed.contains(origin)
            }))
            .allow_methods([
                Method::GET,
                Method::HEAD,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers(AllowHeaders::list([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::ACCEPT,
                header::IF_NONE_MATCH,
                HeaderName::from_static("x-api-key"),
                HeaderName::from_static("x-request-id"),
                HeaderName::from_static("last-event-id"),
            ]))
            .expose_headers(ExposeHeaders::list([
                HeaderName::from_static("x-request-id"),
                header::RETRY_AFTER,
                header::LOCATION,
                header::ETAG,
                header::LINK,
                HeaderName::from_static("ratelimit-limit"),
                HeaderName::from_static("ratelimit-remaining"),
                HeaderName::from_static("ratelimit-reset"),
            ]))
            .max_age(PREFLIGHT_MAX_AGE),
    )
}
