//! Suppression rules: an org's members say which findings are known and accepted noise (by
//! target, scanner, rule id and/or path glob, with a reason and an optional expiry). Matching
//! findings, those stored and those later scans bring, are marked with the rule and left out of
//! counts, SLA and score; removing the rule, or its expiry passing, brings them back.

pub mod graphql;
mod service;

pub use service::*;
