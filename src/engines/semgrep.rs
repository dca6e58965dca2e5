//! Semgrep (multi-language SAST), SARIF, with the ruleset that ships with Rampart
//! (`semgrep-rules.yml`): no registry, no metrics, no network at scan time.

use std::ffi::OsString;

use super::{Engine, Invocation};
use crate::ingest::ReportFormat;

/// The rules file written beside each run.
const RULES: &str = "semgrep-rules.yml";

pub struct Semgrep;

impl Engine for Semgrep {
    fn name(&self) -> &'static str {
        "semgrep"
    }
    fn description(&self) -> &'static str {
        "Multi-language static analysis with Rampart's bundled rules (SARIF, offline)"
    }
    fn program(&self) -> &'static str {
        "semgrep"
    }
    fn files(&self) -> &'static [(&'static str, &'static str)] {
        &[(RULES, include_str!("semgrep-rules.yml"))]
    }
    fn scan_args(&self, invocation: &Invocation<'_>) -> Vec<OsString> {
        let mut args: Vec<OsString> = [
            "scan",
            "--sarif",
            "--metrics=off",
            "--disable-version-check",
            "--quiet",
            "--config",
        ]
        .into_iter()
        .map(OsString::from)
        .collect();
        args.push(invocation.assets.join(RULES).into_os_string());
        args.push(".".into());
        args
    }
    fn env(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("SEMGREP_SEND_METRICS", "off"),
            ("SEMGREP_ENABLE_VERSION_CHECK", "0"),
        ]
    }
    fn report_format(&self) -> ReportFormat {
        ReportFormat::Sarif
    }
}
