//! The audit log: who did what to which resource, from where, when.

pub mod graphql;
mod service;

pub use service::{list, record, AuditEntry, AuditEvent};
