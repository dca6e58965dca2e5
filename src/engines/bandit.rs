//! Bandit (Python SAST), SARIF through the `bandit-sarif-formatter` package's `sarif`
//! formatter (bandit itself has none).

use std::ffi::OsString;

use super::{Engine, Invocation};
use crate::ingest::ReportFormat;

pub struct Bandit;

impl Engine for Bandit {
    fn name(&self) -> &'static str {
        "bandit"
    }
    fn description(&self) -> &'static str {
        "Python static analysis for security problems (SARIF; needs bandit-sarif-formatter)"
    }
    fn program(&self) -> &'static str {
        "bandit"
    }
    fn scan_args(&self, _: &Invocation<'_>) -> Vec<OsString> {
        // -q: no banner on stderr; the report alone on stdout.
        ["-r", ".", "-f", "sarif", "-q"]
            .into_iter()
            .map(OsString::from)
            .collect()
    }
    /// 1 means it found something.
    fn succeeded(&self, code: i32) -> bool {
        code == 0 || code == 1
    }
    fn report_format(&self) -> ReportFormat {
        ReportFormat::Sarif
    }
}
