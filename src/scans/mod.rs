//! Scans: one run of one scanner against one target.

pub mod graphql;
mod model;
mod service;

pub use model::{Scan, ScanStatus, ScanSummary};
pub use service::*;
