//! What every fuzz target checks: parsing arbitrary bytes as a report never panics, and when it
//! succeeds the parser kept its promises (distinct fingerprints, at least one occurrence each,
//! metadata consistent with the format asked for).

use std::collections::HashSet;
use std::io::{Cursor, Read};
use std::sync::Arc;

use rampart::ingest::{parse_report, read_meta, NormalizedFinding, ReportFormat};

/// Parses `data` as `format` (or detects it), then reads its metadata the upload way.
pub fn check(format: Option<ReportFormat>, data: &[u8]) {
    let bytes: Arc<[u8]> = Arc::from(data);
    let mut open = || -> std::io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(Cursor::new(bytes.clone())))
    };
    let mut fingerprints = HashSet::new();
    let mut sink = |finding: NormalizedFinding| {
        assert!(finding.occurrences >= 1, "a finding without occurrences");
        assert!(
            fingerprints.insert(finding.fingerprint.clone()),
            "fingerprint {} emitted twice",
            finding.fingerprint
        );
        Ok(())
    };
    if let Ok(meta) = parse_report(format, &mut open, &mut sink) {
        if let Some(asked) = format {
            assert_eq!(meta.format, asked, "parsed as another format than asked");
        }
    }
    let _ = read_meta(format, data);
}
