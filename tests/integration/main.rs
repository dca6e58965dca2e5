//! One integration binary: the real app on a random port, spoken to over HTTP, on the embedded
//! default or on PostgreSQL + Redis + S3 (see `support`).

mod support;

mod auth;
mod cli;
mod events;
mod health;
mod isolation;
mod migrations;
mod playground;
mod rest;
mod server;
mod store;
