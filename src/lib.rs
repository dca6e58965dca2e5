//! Rampart: scanners send reports; Rampart keeps them, turns them into de-duplicated findings
//! per target, and serves them over GraphQL and REST.

pub mod app;
pub mod config;
pub mod db;
pub mod error;
pub mod events;
pub mod graphql;
pub mod http;
pub mod ingest;
pub mod rest;
pub mod secrets;
pub mod store;

pub use app::{App, AppState};
pub use config::Config;
