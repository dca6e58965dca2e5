//! One integration binary: the real app on a random port, spoken to over HTTP, on the embedded
//! default or on PostgreSQL + Redis + S3 (see `support`).

mod support;

mod auth;
mod cli;
mod crash;
mod events;
mod graphql_api;
mod health;
mod ingest;
mod isolation;
mod live;
mod migrations;
mod playground;
mod rest;
mod rest_domain;
mod server;
mod store;
mod throttling;
mod ws_rights;
