//! Service-level agreements on fixing findings (issue 17, docs/sla.md): the org's policy of
//! days to fix per severity, each open finding's due date and state, and compliance over a
//! period.

pub mod graphql;
mod policy;
mod service;
mod state;

pub use policy::*;
pub use service::*;
pub use state::*;
