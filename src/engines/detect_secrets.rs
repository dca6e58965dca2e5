//! detect-secrets (Yelp): secrets in files, its own JSON (read by
//! `ingest::formats::detect_secrets`).

use std::ffi::OsString;

use super::{Engine, Invocation};
use crate::ingest::ReportFormat;

pub struct DetectSecrets;

impl Engine for DetectSecrets {
    fn name(&self) -> &'static str {
        "detect-secrets"
    }
    fn description(&self) -> &'static str {
        "Secrets committed to files: keys, tokens, passwords (its JSON)"
    }
    fn program(&self) -> &'static str {
        "detect-secrets"
    }
    fn scan_args(&self, _: &Invocation<'_>) -> Vec<OsString> {
        // --all-files: the source need not be a git work tree.
        ["scan", "--all-files", "."]
            .into_iter()
            .map(OsString::from)
            .collect()
    }
    fn report_format(&self) -> ReportFormat {
        ReportFormat::DetectSecrets
    }
}
