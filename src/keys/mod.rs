//! API keys: machine credentials of one org.

pub mod graphql;
mod service;

pub use service::*;
