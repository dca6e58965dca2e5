//! Insights over the org's findings (issue 17): one-query dashboard statistics, finding-count
//! trends beside the score trends, and a risk score that does not saturate. Every number is
//! aggregated in SQL (`GROUP BY`), on SQLite and PostgreSQL alike; Rust only lays the grouped
//! rows out.

mod flows;
pub mod graphql;
pub mod risk;
pub(crate) mod sql;
mod stats;
mod trend;

pub use flows::*;
pub use stats::*;
pub use trend::*;
