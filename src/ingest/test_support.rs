//! Helpers for the format tests: parse a report held in memory, find the shared samples.

use std::io::{Cursor, Read};
use std::path::PathBuf;
use std::sync::Arc;

use super::{parse_report, IngestError, NormalizedFinding, ReportFormat, ReportMeta};

/// What a parse produced, and how many times the report was opened.
pub(crate) struct Parsed {
    pub meta: ReportMeta,
    pub findings: Vec<NormalizedFinding>,
    pub opens: usize,
}

impl Parsed {
    /// The findings whose rule id is `rule`.
    pub fn by_rule(&self, rule: &str) -> Vec<&NormalizedFinding> {
        self.findings.iter().filter(|f| f.rule_id == rule).collect()
    }

    /// Asserts that no two findings share a fingerprint.
    pub fn assert_unique_fingerprints(&self) {
        let mut fps: Vec<&str> = self
            .findings
            .iter()
            .map(|f| f.fingerprint.as_str())
            .collect();
        fps.sort_unstable();
        let before = fps.len();
        fps.dedup();
        assert_eq!(before, fps.len(), "duplicate fingerprints");
    }
}

/// Parses `bytes` as a report.
pub(crate) fn parse_bytes(
    format: Option<ReportFormat>,
    bytes: &[u8],
) -> Result<Parsed, IngestError> {
    let data: Arc<[u8]> = Arc::from(bytes);
    let mut opens = 0usize;
    let mut open = || -> std::io::Result<Box<dyn Read + Send>> {
        opens += 1;
        Ok(Box::new(Cursor::new(data.clone())))
    };
    let mut findings = Vec::new();
    let mut sink = |f: NormalizedFinding| {
        findings.push(f);
        Ok(())
    };
    let meta = parse_report(format, &mut open, &mut sink)?;
    Ok(Parsed {
        meta,
        findings,
        opens,
    })
}

/// Parses a JSON value (serialized with sorted keys, as `serde_json::json!` keeps them).
pub(crate) fn parse_json(value: &serde_json::Value) -> Parsed {
    let bytes = serde_json::to_vec_pretty(value).expect("serializable");
    match parse_bytes(None, &bytes) {
        Ok(parsed) => parsed,
        Err(e) => panic!("parse failed: {e}"),
    }
}

/// `../shared/samples` beside the crate. Tests that read it carry
/// `#[cfg_attr(not(rampart_has_samples), ignore = "needs ../shared/samples")]` (build.rs sets the
/// cfg where the samples are, and always under `CI=true`), so its absence here is a failure.
pub(crate) fn samples_dir() -> PathBuf {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/samples"));
    assert!(
        dir.is_dir(),
        "{} is absent: the conformance samples are required here (CI, or present when built)",
        dir.display()
    );
    dir
}

/// Reads one sample file.
pub(crate) fn sample(name: &str) -> Vec<u8> {
    let path = samples_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("sample {} unreadable: {e}", path.display()))
}
