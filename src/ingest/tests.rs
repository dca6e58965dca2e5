//! Bad input, detection fallbacks, sink and I/O errors, and property tests (no panics on
//! arbitrary or mutated input) for the whole format layer.

use std::io::{self, Cursor, Read};

use proptest::prelude::*;
use serde_json::{json, Value};

use super::test_support::{parse_bytes, sample};
use super::*;

fn small_reports() -> Vec<(ReportFormat, Value)> {
    vec![
        (
            ReportFormat::Sarif,
            json!({"version": "2.1.0", "runs": [{
                "tool": {"driver": {"name": "t", "rules": [{"id": "r1", "shortDescription": {"text": "R"},
                    "properties": {"security-severity": "7.5", "tags": ["external/cwe/cwe-079"]}}]}},
                "versionControlProvenance": [{"repositoryUri": "https://x/y"}],
                "results": [
                    {"ruleId": "r1", "ruleIndex": 0, "level": "error", "message": {"text": "m {0}", "arguments": ["a"]},
                     "locations": [{"physicalLocation": {"artifactLocation": {"uri": "a.py", "index": 0},
                        "region": {"startLine": 3, "startColumn": 2, "snippet": {"text": "x = 1"}}},
                        "logicalLocations": [{"fullyQualifiedName": "m.f"}]}],
                     "partialFingerprints": {"primaryLocationLineHash": "ab:1"}},
                    {"message": {"text": "r1 found"}, "kind": "fail", "suppressions": [{"status": "rejected"}]},
                    {"rule": {"index": 0, "toolComponent": {"index": 0}}, "message": {"text": "x"}}
                ],
                "artifacts": [{"location": {"uri": "a.py"}}]
            }]}),
        ),
        (
            ReportFormat::CycloneDx,
            json!({"bomFormat": "CycloneDX", "specVersion": "1.5",
                "metadata": {"tools": {"components": [{"name": "trivy"}]}, "component": {"name": "img", "type": "container"}},
                "components": [{"bom-ref": "a", "purl": "pkg:npm/a@1", "components": [{"bom-ref": "b", "name": "b"}]}],
                "vulnerabilities": [{"id": "CVE-2024-1234", "cwes": [79], "ratings": [{"severity": "high", "score": 7.1}],
                    "references": [{"id": "CVE-2024-1235"}], "affects": [{"ref": "a"}, {"ref": "b"}]}]}),
        ),
        (
            ReportFormat::Trivy,
            json!({"SchemaVersion": 2, "ArtifactName": "img", "ArtifactType": "container_image", "Results": [
                {"Target": "t", "Vulnerabilities": [{"VulnerabilityID": "CVE-2024-1", "PkgName": "p", "InstalledVersion": "1",
                    "FixedVersion": "2", "Severity": "HIGH", "CweIDs": ["CWE-1"], "PkgIdentifier": {"PURL": "pkg:apk/p@1"}}],
                 "Misconfigurations": [{"ID": "DS1", "Status": "FAIL", "Severity": "LOW", "CauseMetadata": {"StartLine": 1, "Resource": "r"}}],
                 "Secrets": [{"RuleID": "k", "Severity": "CRITICAL", "StartLine": 4, "Match": "k=***"}]}]}),
        ),
        (
            ReportFormat::Native,
            json!({"rampart_report": "1", "target": {"name": "c", "kind": "kafka_cluster"}, "scanner": {"name": "kg"},
                "policy_tier": "basic", "checks": [
                    {"id": "A", "status": "fail", "severity": "high", "resource": "b/1", "cwe_ids": ["79"], "location": {"path": "p", "line": 2}},
                    {"id": "B", "status": "pass", "severity": "low"}]}),
        ),
    ]
}

fn message(bytes: &[u8]) -> String {
    match parse_bytes(None, bytes) {
        Ok(p) => panic!("expected an error, got {} findings", p.findings.len()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn small_reports_parse_and_are_detected() {
    for (format, report) in small_reports() {
        let bytes = serde_json::to_vec_pretty(&report).unwrap();
        assert_eq!(detect(&bytes), Some(format));
        let parsed = parse_bytes(None, &bytes).unwrap();
        assert_eq!(parsed.meta.format, format);
        assert!(!parsed.findings.is_empty(), "{format}");
        parsed.assert_unique_fingerprints();
        let named = parse_bytes(Some(format), &bytes).unwrap();
        assert_eq!(named.findings, parsed.findings);
        let meta = read_meta(None, bytes.as_slice()).unwrap();
        assert_eq!(meta.format, format);
        assert!(meta.target_name.is_some(), "{format}");
    }
}

#[test]
fn truncated_reports_name_line_and_column() {
    for (format, report) in small_reports() {
        let bytes = serde_json::to_vec_pretty(&report).unwrap();
        let half = &bytes[..bytes.len() / 2];
        let err = message(half);
        // The format when its telling key is in the first half, plain JSON otherwise.
        let prefix = format!("invalid {} at line ", format.display_name());
        assert!(
            err.starts_with(&prefix) || err.starts_with("invalid JSON at line "),
            "{err}"
        );
        assert!(err.contains(", column "), "{err}");
        assert!(err.contains("truncated"), "{err}");
    }
}

#[test]
#[cfg_attr(not(rampart_has_samples), ignore = "needs ../shared/samples")]
fn truncated_real_report_names_line_and_column() {
    let codeql = sample("codeql-2.5.4-output.sarif");
    let err = message(&codeql[..codeql.len() / 2]);
    assert!(err.starts_with("invalid SARIF at line "), "{err}");
}

#[test]
fn non_reports_are_rejected_with_a_reason() {
    let unsupported =
        "unsupported format: JSON document is not a SARIF, CycloneDX, Trivy or Rampart report";
    assert!(
        message(b"{}").starts_with(unsupported),
        "{}",
        message(b"{}")
    );
    assert!(message(br#"{"foo":1}"#).starts_with(unsupported));
    assert!(message(br#"{"foo":1}"#).contains("`foo`"));
    assert!(message(b"[1, 2]").starts_with("unsupported format: the JSON document is an array"));
    assert_eq!(message(b""), "empty report");
    assert_eq!(message(b" \n\t "), "empty report");
    assert_eq!(
        message(b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00"),
        "not JSON (binary data)"
    );
    assert_eq!(
        message(&[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13]),
        "not JSON (binary data)"
    );
    assert_eq!(
        message(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xed\xbd"),
        "not JSON (binary data)"
    );
    assert!(message(b"<?xml version=\"1.0\"?><x/>")
        .starts_with("not JSON: expected a JSON object at line 1, column 1"));
    assert!(message(b"\xFF\xFE{\x00}\x00").contains("UTF-16"));
    let err = message(br#"{"foo": "#);
    assert!(err.starts_with("invalid JSON at line 1, column"), "{err}");
    let err = message(b"{\"runs\": [], \"version\": \"2.1.0\"} trailing");
    assert!(err.starts_with("invalid SARIF at line 1, column"), "{err}");
}

#[test]
fn named_format_must_match_the_content() {
    let trivy = serde_json::to_vec(&small_reports()[2].1).unwrap();
    let err = parse_bytes(Some(ReportFormat::Sarif), &trivy)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("missing field `runs`"), "{err}");
    let err = parse_bytes(Some(ReportFormat::Native), b"\x00\x00")
        .err()
        .unwrap()
        .to_string();
    assert_eq!(err, "not JSON (binary data)");
}

#[test]
fn telling_keys_past_the_head_are_found_by_a_full_scan() {
    let report = json!({
        "aaa_padding": "x".repeat(HEAD_BYTES + 10),
        "bomFormat": "CycloneDX",
        "specVersion": "1.4",
        "vulnerabilities": [{"id": "CVE-2024-9"}]
    });
    let bytes = serde_json::to_vec(&report).unwrap();
    assert_eq!(detect(&bytes[..4096]), None);
    let parsed = parse_bytes(None, &bytes).unwrap();
    assert_eq!(parsed.meta.format, ReportFormat::CycloneDx);
    assert_eq!(parsed.findings.len(), 1);
    assert_eq!(parsed.opens, 3);
    let meta = read_meta(None, bytes.as_slice()).unwrap();
    assert_eq!(meta.format, ReportFormat::CycloneDx);
}

#[test]
fn a_bom_is_skipped() {
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(serde_json::to_vec(&small_reports()[3].1).unwrap());
    let parsed = parse_bytes(None, &bytes).unwrap();
    assert_eq!(parsed.meta.format, ReportFormat::Native);
}

#[test]
fn the_sink_can_stop_the_parse() {
    let bytes: std::sync::Arc<[u8]> = serde_json::to_vec(&small_reports()[0].1).unwrap().into();
    let mut open =
        || -> io::Result<Box<dyn Read + Send>> { Ok(Box::new(Cursor::new(bytes.clone()))) };
    let mut seen = 0;
    let mut sink = |_f: NormalizedFinding| {
        seen += 1;
        Err(SinkError::Cancelled)
    };
    let err = parse_report(None, &mut open, &mut sink).unwrap_err();
    assert!(
        matches!(err, IngestError::Sink(SinkError::Cancelled)),
        "{err:?}"
    );
    assert_eq!(seen, 1);
}

/// Fails after `ok` bytes.
struct FailingReader {
    inner: Cursor<Vec<u8>>,
    ok: u64,
}

impl Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.inner.position() >= self.ok {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "object store went away",
            ));
        }
        let limit = (self.ok - self.inner.position()).min(buf.len() as u64) as usize;
        self.inner.read(&mut buf[..limit])
    }
}

#[test]
fn read_failures_are_io_errors() {
    let bytes = serde_json::to_vec(&small_reports()[0].1).unwrap();
    for ok in [0, 10, bytes.len() as u64 / 2] {
        let bytes = bytes.clone();
        let mut open = move || -> io::Result<Box<dyn Read + Send>> {
            Ok(Box::new(FailingReader {
                inner: Cursor::new(bytes.clone()),
                ok,
            }))
        };
        let mut sink = |_f: NormalizedFinding| Ok(());
        let err = parse_report(None, &mut open, &mut sink).unwrap_err();
        assert!(matches!(err, IngestError::Io(_)), "{err:?}");
    }
    let mut open =
        || -> io::Result<Box<dyn Read + Send>> { Err(io::Error::other("no such object")) };
    let mut sink = |_f: NormalizedFinding| Ok(());
    assert!(matches!(
        parse_report(None, &mut open, &mut sink),
        Err(IngestError::Io(_))
    ));
}

/// Replaces the `target`-th node (pre-order) of `v` with `with`.
fn replace_node(v: &mut Value, target: &mut usize, with: &Value) -> bool {
    if *target == 0 {
        *v = with.clone();
        return true;
    }
    *target -= 1;
    match v {
        Value::Array(items) => items
            .iter_mut()
            .any(|item| replace_node(item, target, with)),
        Value::Object(map) => map
            .values_mut()
            .any(|item| replace_node(item, target, with)),
        _ => false,
    }
}

fn replacement() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        Just(json!(-1)),
        Just(json!(4_294_967_296_u64)),
        Just(json!(1.5)),
        Just(json!("")),
        Just(json!("fail")),
        Just(json!("CVE-2024-1 cwe-79 line 3 a.py:9 {0}")),
        Just(json!([])),
        Just(json!([null, 1, "x", {}])),
        Just(json!({})),
        Just(json!({"a": [{"b": null}]})),
        Just(json!(true)),
    ]
}

/// Parses as every format and by detection, and reads the metadata: must not panic.
fn exercise(bytes: &[u8]) {
    let _ = parse_bytes(None, bytes);
    for format in ReportFormat::ALL {
        let _ = parse_bytes(Some(format), bytes);
    }
    let _ = read_meta(None, bytes);
    let _ = detect(bytes);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        exercise(&bytes);
    }

    #[test]
    fn json_like_text_never_panics(text in "[\\[\\]{}\":,0-9a-z \\\\-]{0,300}") {
        exercise(text.as_bytes());
        let mut sarif = br#"{"runs": [{"results": ["#.to_vec();
        sarif.extend_from_slice(text.as_bytes());
        exercise(&sarif);
    }

    #[test]
    fn mutated_bytes_never_panic(
        which in 0usize..4,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..4, any::<u8>()), 1..8),
    ) {
        let mut bytes = serde_json::to_vec_pretty(&small_reports()[which].1).unwrap();
        for (at, op, byte) in edits {
            if bytes.is_empty() {
                break;
            }
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                2 => { bytes.remove(i); }
                _ => bytes.truncate(i),
            }
        }
        exercise(&bytes);
    }

    #[test]
    fn mutated_values_never_panic(
        which in 0usize..4,
        edits in proptest::collection::vec((0usize..200, replacement()), 1..4),
    ) {
        let mut report = small_reports()[which].1.clone();
        for (node, with) in edits {
            let mut target = node;
            replace_node(&mut report, &mut target, &with);
        }
        let bytes = serde_json::to_vec(&report).unwrap();
        exercise(&bytes);
        if let Ok(parsed) = parse_bytes(None, &bytes) {
            parsed.assert_unique_fingerprints();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Byte mutations of a real report.
    #[test]
    #[cfg_attr(not(rampart_has_samples), ignore = "needs ../shared/samples")]
    fn mutated_real_sample_never_panics(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<u8>()), 1..6),
    ) {
        let mut bytes = SAMPLE.clone();
        for (at, op, byte) in edits {
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ => { bytes.remove(i); }
            }
        }
        exercise(&bytes);
    }
}

static SAMPLE: std::sync::LazyLock<Vec<u8>> =
    std::sync::LazyLock::new(|| sample("gitleaks-7.x.sarif"));
