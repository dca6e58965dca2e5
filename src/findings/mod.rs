//! Findings: distinct problems per target, their triage and comments.

pub mod graphql;
mod model;
mod service;

pub use model::{
    Comment, Finding, FindingStatus, Location, Severity, SeverityCounts, Triage, TriageState,
};
pub use service::*;
