//! Checkov (infrastructure as code: Terraform, CloudFormation, Kubernetes, Dockerfiles, ...),
//! SARIF.

use std::ffi::OsString;

use super::{Engine, Invocation};
use crate::ingest::ReportFormat;

pub struct Checkov;

impl Engine for Checkov {
    fn name(&self) -> &'static str {
        "checkov"
    }
    fn description(&self) -> &'static str {
        "Infrastructure-as-code misconfigurations: Terraform, CloudFormation, Kubernetes (SARIF)"
    }
    fn program(&self) -> &'static str {
        "checkov"
    }
    fn scan_args(&self, _: &Invocation<'_>) -> Vec<OsString> {
        // --soft-fail: failed checks are findings, not a failed run; --skip-download and no
        // API key: nothing leaves the machine; --quiet: only failed checks.
        [
            "-d",
            ".",
            "-o",
            "sarif",
            "--soft-fail",
            "--quiet",
            "--compact",
            "--skip-download",
            "--skip-results-upload",
            "--output-file-path",
            "../out",
        ]
        .into_iter()
        .map(OsString::from)
        .collect()
    }
    /// With `-o sarif` it writes `results.sarif` into the working directory unless told
    /// where; its standard output is a banner and a summary.
    fn report_file(&self) -> Option<&'static str> {
        Some("out/results_sarif.sarif")
    }
    fn env(&self) -> &'static [(&'static str, &'static str)] {
        &[("CHECKOV_RUN_SCA_PACKAGE_SCAN_V2", "false")]
    }
    fn report_format(&self) -> ReportFormat {
        ReportFormat::Sarif
    }
}
