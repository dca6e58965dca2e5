//! Compliance coverage: frameworks shipped as data (OWASP Top 10 2021, CWE Top 25 2024, PCI DSS
//! 4.0, NIST SP 800-53 rev5, KafkaGuard's policy tiers), and how the org's findings meet each
//! of them, now and over time. Rules in [`coverage`]; sources in docs/compliance.md.

mod coverage;
pub mod frameworks;
pub mod graphql;

pub use coverage::*;
