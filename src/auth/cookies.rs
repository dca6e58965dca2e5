//! The HttpOnly cookies that carry a session for browsers.

use super::sessions::AuthPayload;
use crate::config::Config;

/// Where the refresh cookie is sent: only to the auth routes.
pub const REFRESH_COOKIE_PATH: &str = "/api/v1/auth";

/// `Secure` is added on the way out (`http::security::secure_cookies`), where it is known
/// whether the request came over HTTPS.
fn cookie(name: &str, value: &str, path: &str, max_age: i64) -> String {
    format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax")
}

/// `Set-Cookie` values for a fresh token pair.
pub fn for_session(payload: &AuthPayload, config: &Config) -> [String; 2] {
    [
        cookie("token", &payload.token, "/", payload.expires_in),
        cookie(
            "refresh_token",
            &payload.refresh_token,
            REFRESH_COOKIE_PATH,
            config.refresh_token_ttl_secs,
        ),
    ]
}

/// `Set-Cookie` values that clear both cookies.
pub fn cleared() -> [String; 2] {
    [
        cookie("token", "", "/", 0),
        cookie("refresh_token", "", REFRESH_COOKIE_PATH, 0),
    ]
}
