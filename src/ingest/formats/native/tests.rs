use serde_json::{json, Value};

use super::*;
use crate::ingest::read_meta;
use crate::ingest::test_support::{parse_bytes, parse_json};

fn report(score: Option<f64>) -> Value {
    let mut r = json!({
        "rampart_report": "1",
        "target": {"name": "prod-us", "kind": "kafka_cluster", "metadata": {"bootstrap_servers": "kafka1:9092"}},
        "scanner": {"name": "kafkaguard", "version": "2.3.0"},
        "policy_tier": "enterprise-default",
        "scanned_at": "2026-04-25T00:26:44Z",
        "checks": [
            {"id": "KG-001", "title": "TLS on client listeners", "status": "pass", "severity": "high"},
            {"id": "KG-002", "title": "Anonymous access disabled", "status": "fail", "severity": "critical",
             "resource": "broker/1", "description": "ANONYMOUS is allowed.", "remediation": "Set allow.everyone.if.no.acl.found=false.",
             "cwe_ids": ["CWE-306", "287"]},
            {"id": "KG-002", "title": "Anonymous access disabled", "status": "fail", "severity": "critical", "resource": "broker/2"},
            {"id": "KG-003", "title": "Topic retention", "status": "skip", "severity": "low"},
            {"id": "KG-004", "title": "Old Kafka", "status": "fail", "severity": "medium", "cve_ids": ["CVE-2023-25194"],
             "fingerprint": "kg-004/cluster"},
            {"id": "KG-002", "title": "Anonymous access disabled", "status": "fail", "severity": "critical", "resource": "broker/1"}
        ]
    });
    if let Some(s) = score {
        r["score"] = json!(s);
    }
    r
}

#[test]
fn failed_checks_become_findings_and_checks_are_counted() {
    let parsed = parse_json(&report(None));
    let meta = &parsed.meta;
    assert_eq!(meta.format, ReportFormat::Native);
    assert_eq!(meta.scanner_name, "kafkaguard");
    assert_eq!(meta.scanner_version.as_deref(), Some("2.3.0"));
    assert_eq!(meta.target_name.as_deref(), Some("prod-us"));
    assert_eq!(meta.target_kind.as_deref(), Some("kafka_cluster"));
    assert_eq!(meta.policy_tier.as_deref(), Some("enterprise-default"));
    assert_eq!((meta.checks_total, meta.checks_passed), (Some(5), Some(1)));
    assert_eq!(meta.score, Some(20.0));

    assert_eq!(parsed.findings.len(), 3, "{:#?}", parsed.findings);
    parsed.assert_unique_fingerprints();
    let anon = parsed.by_rule("KG-002");
    assert_eq!(anon.len(), 2);
    let broker1 = anon
        .iter()
        .find(|f| f.location_path.as_deref() == Some("broker/1"))
        .unwrap();
    assert_eq!(broker1.occurrences, 2);
    assert_eq!(broker1.severity, Severity::Critical);
    assert_eq!(broker1.cwe_ids, vec!["CWE-306", "CWE-287"]);
    assert_eq!(broker1.scanner, "kafkaguard");
    assert_eq!(broker1.description, "ANONYMOUS is allowed.");
    let old = &parsed.by_rule("KG-004")[0];
    assert_eq!(old.cve_ids, vec!["CVE-2023-25194"]);

    // Fingerprint: given, or check id + resource; stable across reports.
    let again = parse_json(&report(Some(64.0)));
    assert_eq!(again.meta.score, Some(64.0));
    for f in &parsed.findings {
        assert!(again
            .findings
            .iter()
            .any(|g| g.fingerprint == f.fingerprint));
    }
}

#[test]
fn read_meta_needs_only_the_head() {
    let text = br#"{"rampart_report": "1", "target": {"name": "prod-us", "kind": "kafka_cluster"},
        "scanner": {"name": "kafkaguard"}, "policy_tier": "basic", "score": 64, "checks": [ cut here"#;
    let meta = read_meta(None, &text[..]).unwrap();
    assert_eq!(meta.target_name.as_deref(), Some("prod-us"));
    assert_eq!(meta.score, Some(64.0));
    assert_eq!(meta.checks_total, None);
}

#[test]
fn invalid_native_reports_say_what_is_wrong() {
    let cases: [(Value, &str); 5] = [
        (
            json!({"rampart_report": "2", "target": {"name": "x"}, "scanner": {"name": "s"}, "checks": []}),
            "version `2`",
        ),
        (
            json!({"rampart_report": "1", "scanner": {"name": "s"}, "checks": []}),
            "missing field `target`",
        ),
        (
            json!({"rampart_report": "1", "target": {"name": "x"}, "scanner": {"name": "s"},
                   "checks": [{"id": "a", "status": "fail", "severity": "urgent"}]}),
            "unknown variant `urgent`",
        ),
        (
            json!({"rampart_report": "1", "target": {"name": "x"}, "scanner": {"name": "s"},
                   "checks": [{"id": "a", "status": "failed", "severity": "low"}]}),
            "unknown variant `failed`",
        ),
        (
            json!({"rampart_report": "1", "target": {"name": "x"}, "scanner": {"name": "s"}, "score": 140, "checks": []}),
            "a score from 0 to 100",
        ),
    ];
    for (report, expected) in cases {
        let bytes = serde_json::to_vec_pretty(&report).unwrap();
        let err = parse_bytes(None, &bytes).err().unwrap().to_string();
        assert!(err.starts_with("invalid Rampart report at line"), "{err}");
        assert!(err.contains(expected), "{err} should contain {expected}");
    }
}

/// The example and the schema in `docs/report-formats.md` stay valid.
#[test]
fn documented_example_parses() {
    let doc = include_str!("../../../../docs/report-formats.md");
    let blocks: Vec<&str> = doc
        .split("```json\n")
        .skip(1)
        .filter_map(|rest| rest.split("\n```").next())
        .collect();
    assert!(blocks.len() >= 2, "example and schema blocks");
    let parsed = parse_bytes(None, blocks[0].as_bytes()).unwrap();
    assert_eq!(parsed.meta.format, ReportFormat::Native);
    assert_eq!(parsed.findings.len(), 1);
    assert_eq!(
        (parsed.meta.checks_total, parsed.meta.score),
        (Some(2), Some(64.0))
    );
    let schema: Value = serde_json::from_str(blocks[1]).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(
        schema["properties"]["rampart_report"]["const"],
        NATIVE_VERSION
    );
}

/// `target.metadata` is read (by the full parse and by the head-only pass), so it can be stored
/// on the target; a non-object or an oversized one is refused.
#[test]
fn target_metadata_is_read_and_bounded() {
    let parsed = parse_json(&report(Some(50.0)));
    let expected = json!({"bootstrap_servers": "kafka1:9092"});
    assert_eq!(
        parsed.meta.target_metadata.clone().map(Value::Object),
        Some(expected.clone())
    );
    let head = br#"{"rampart_report": "1", "target": {"name": "p", "metadata": {"bootstrap_servers": "kafka1:9092"}},
        "scanner": {"name": "kafkaguard"}, "policy_tier": null, "score": 64, "checks": [ cut here"#;
    let meta = read_meta(None, &head[..]).unwrap();
    assert_eq!(meta.target_metadata.map(Value::Object), Some(expected));
    let none = json!({"rampart_report": "1", "target": {"name": "x", "metadata": null}, "scanner": {"name": "s"}, "checks": []});
    assert_eq!(parse_json(&none).meta.target_metadata, None);

    let big: serde_json::Map<String, Value> = (0..=TARGET_METADATA_MAX_KEYS)
        .map(|i| (format!("k{i}"), json!(i)))
        .collect();
    let cases: [(Value, &str); 2] = [
        (
            json!({"rampart_report": "1", "target": {"name": "x", "metadata": "kafka1:9092"}, "scanner": {"name": "s"}, "checks": []}),
            "expected a map",
        ),
        (
            json!({"rampart_report": "1", "target": {"name": "x", "metadata": big}, "scanner": {"name": "s"}, "checks": []}),
            "`target.metadata` is too large",
        ),
    ];
    for (report, expected) in cases {
        let bytes = serde_json::to_vec(&report).unwrap();
        let err = parse_bytes(None, &bytes).err().unwrap().to_string();
        assert!(err.contains(expected), "{err} should contain {expected}");
    }
}
