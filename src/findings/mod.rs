//! Findings: distinct problems per target, their triage and comments.

pub mod graphql;
mod model;
pub mod reminders;
mod service;
mod workflow;

pub use model::{
    Comment, Finding, FindingStatus, Location, Severity, SeverityCounts, Suppression, Triage,
    TriageState,
};
pub use service::*;
pub use workflow::*;
