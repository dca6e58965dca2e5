//! The audit log: who did what to which resource, from where, when.

mod export;
pub mod graphql;
mod service;

pub use export::{export, ExportFormat};
pub use service::{list, record, AuditEntry, AuditEvent, AuditFilter};
