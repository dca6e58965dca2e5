//! Identity: passwords, sessions and access tokens, API keys, the request context resolver,
//! rate limits.

pub mod client_ip;
pub mod cookies;
pub mod csrf;
pub mod graphql;
pub mod jwt;
pub mod key_usage;
pub mod mfa;
pub mod middleware;
pub mod password;
pub mod password_policy;
pub mod rate_limit;
pub mod resolve;
pub mod revocation;
pub mod sessions;
pub mod tokens;

pub use jwt::JwtKeys;
pub use rate_limit::RateLimiter;
