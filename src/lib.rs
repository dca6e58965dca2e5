//! Rampart: scanners send reports; Rampart keeps them, turns them into de-duplicated findings
//! per target, and serves them over GraphQL and REST.
// The merged GraphQL root resolves through one deep async state machine per field.
#![recursion_limit = "256"]

pub mod accounts;
pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod compliance;
pub mod config;
pub mod context;
pub mod db;
pub mod demo;
pub mod engines;
pub mod error;
pub mod events;
pub mod findings;
pub mod graphql;
pub mod http;
pub mod ingest;
pub mod insights;
pub mod invitations;
pub mod keys;
pub mod live;
pub mod metrics;
pub mod notifications;
pub mod orgs;
pub mod private_fs;
pub mod rest;
pub mod scans;
pub mod secrets;
pub mod setup;
pub mod sla;
pub mod store;
pub mod suppressions;
pub mod targets;
pub mod trends;
pub mod validate;
pub mod webhooks;

pub use app::{App, AppState};
pub use config::Config;
