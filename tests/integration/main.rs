//! One integration binary: the real app on a random port, spoken to over HTTP, on the embedded
//! default or on PostgreSQL + Redis + S3 (see `support`).

mod support;

mod accounts_password;
mod accounts_sessions;
mod audit;
mod auth;
mod cli;
mod compat;
mod compliance;
mod crash;
mod engines;
mod events;
mod graphql_api;
mod health;
mod http_guards;
mod ingest;
mod insights;
mod isolation;
mod jobs;
mod live;
mod mfa;
mod migrations;
mod notifications;
mod operations;
mod orphans;
mod outage;
mod playground;
mod remediation;
mod rest;
mod rest_domain;
mod retry;
mod server;
mod sla;
mod standard_clients;
mod startup;
mod store;
mod tenancy;
mod throttling;
mod webhooks;
mod ws_rights;
