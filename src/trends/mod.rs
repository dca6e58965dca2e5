//! Score over time: one target's trend, and the fleet compared.

pub mod graphql;
mod service;

pub use service::*;
