use serde_json::{json, Value};

use super::*;
use crate::ingest::test_support::{parse_bytes, parse_json, sample};
use crate::ingest::{read_meta, Severity};

fn bom(vulnerabilities: Value, tools: Value) -> Value {
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "metadata": {
            "tools": tools,
            "component": {"bom-ref": "root", "type": "container", "name": "shop-api", "version": "2.1"}
        },
        "components": [
            {"bom-ref": "pkg:npm/lodash@4.17.20", "type": "library", "name": "lodash", "version": "4.17.20", "purl": "pkg:npm/lodash@4.17.20"},
            {"bom-ref": "ref-openssl", "type": "library", "name": "openssl", "version": "3.0.1",
             "purl": "pkg:deb/debian/openssl@3.0.1",
             "components": [{"bom-ref": "ref-libssl", "name": "libssl", "version": "3.0.1"}]},
            {"bom-ref": "ref-openssl-copy", "name": "openssl", "purl": "pkg:deb/debian/openssl@3.0.1"}
        ],
        "vulnerabilities": vulnerabilities
    })
}

fn vulns() -> Value {
    json!([
        {
            "id": "CVE-2021-23337",
            "ratings": [
                {"source": {"name": "nvd"}, "score": 7.2, "severity": "high", "method": "CVSSv31"},
                {"source": {"name": "ghsa"}, "severity": "medium"}
            ],
            "cwes": [94],
            "description": "Command injection in lodash template.\nMore text.",
            "recommendation": "Upgrade to 4.17.21.",
            "affects": [{"ref": "pkg:npm/lodash@4.17.20"}]
        },
        {
            "id": "CVE-2022-0778",
            "ratings": [{"severity": "unknown", "score": 9.1}],
            "description": "Infinite loop in BN_mod_sqrt.",
            "references": [{"id": "GHSA-x", "source": {"name": "ghsa"}}, {"id": "CVE-2022-0779"}],
            "affects": [{"ref": "ref-openssl"}, {"ref": "ref-libssl"}, {"ref": "ref-openssl-copy"}, {"ref": "unknown-ref"}]
        },
        {"id": "GHSA-aaaa-bbbb", "ratings": [{"severity": "none"}]},
        {"id": "CVE-2020-0001", "analysis": {"state": "not_affected"}, "affects": [{"ref": "ref-openssl"}]}
    ])
}

#[test]
fn known_bom_gives_expected_findings() {
    let parsed = parse_json(&bom(
        vulns(),
        json!({"components": [{"type": "application", "name": "trivy", "version": "0.48.1"}]}),
    ));
    assert_eq!(parsed.meta.format, ReportFormat::CycloneDx);
    assert_eq!(parsed.meta.scanner_name, "trivy");
    assert_eq!(parsed.meta.scanner_version.as_deref(), Some("0.48.1"));
    assert_eq!(parsed.meta.target_name.as_deref(), Some("shop-api@2.1"));
    assert_eq!(parsed.meta.target_kind.as_deref(), Some("container_image"));
    // lodash: 1; openssl: openssl and its copy share a purl (one finding seen twice), libssl,
    // the unknown ref; GHSA without affects: 1; not_affected: none.
    assert_eq!(parsed.findings.len(), 5, "{:#?}", parsed.findings);
    parsed.assert_unique_fingerprints();

    let lodash = &parsed.by_rule("CVE-2021-23337")[0];
    assert_eq!(lodash.severity, Severity::High);
    assert_eq!(lodash.component.as_deref(), Some("pkg:npm/lodash@4.17.20"));
    assert_eq!(lodash.cve_ids, vec!["CVE-2021-23337"]);
    assert_eq!(lodash.cwe_ids, vec!["CWE-94"]);
    assert_eq!(
        lodash.title,
        "CVE-2021-23337: Command injection in lodash template."
    );
    assert_eq!(lodash.remediation.as_deref(), Some("Upgrade to 4.17.21."));
    assert_eq!(lodash.scanner, "trivy");

    let openssl = parsed.by_rule("CVE-2022-0778");
    assert_eq!(openssl.len(), 3);
    assert!(openssl.iter().all(|f| f.severity == Severity::Critical));
    assert_eq!(openssl[0].cve_ids, vec!["CVE-2022-0778", "CVE-2022-0779"]);
    let shared = openssl
        .iter()
        .find(|f| f.component.as_deref() == Some("pkg:deb/debian/openssl@3.0.1"))
        .unwrap();
    assert_eq!(shared.occurrences, 2);
    assert!(openssl
        .iter()
        .any(|f| f.component.as_deref() == Some("libssl@3.0.1")));
    assert!(openssl
        .iter()
        .any(|f| f.component.as_deref() == Some("unknown-ref")));

    let ghsa = &parsed.by_rule("GHSA-aaaa-bbbb")[0];
    assert_eq!(
        (ghsa.severity, ghsa.component.as_deref()),
        (Severity::Info, None)
    );
}

#[test]
fn fingerprint_is_vulnerability_and_purl() {
    let a = parse_json(&bom(vulns(), json!([])));
    // Another BOM, other tools and ordering: the same vulnerability on the same package has the
    // same fingerprint.
    let b = parse_json(&bom(
        json!([{"id": "CVE-2021-23337", "affects": [{"ref": "pkg:npm/lodash@4.17.20"}]}]),
        json!([{"vendor": "x", "name": "other", "version": "1"}]),
    ));
    assert_eq!(b.meta.scanner_name, "other");
    assert_eq!(
        a.by_rule("CVE-2021-23337")[0].fingerprint,
        b.findings[0].fingerprint
    );
}

#[test]
fn components_after_vulnerabilities_are_joined() {
    // Hand-written so that `vulnerabilities` comes first.
    let text = r#"{"bomFormat": "CycloneDX", "specVersion": "1.4",
        "vulnerabilities": [
            {"id": "CVE-2023-1", "affects": [{"ref": "a"}, {"ref": "b"}]}
        ],
        "components": [
            {"bom-ref": "a", "name": "x", "purl": "pkg:pypi/x@1"},
            {"bom-ref": "b", "name": "x-again", "purl": "pkg:pypi/x@1"}
        ]}"#;
    let parsed = parse_bytes(None, text.as_bytes()).unwrap();
    assert_eq!(parsed.opens, 3);
    assert_eq!(parsed.findings.len(), 1);
    assert_eq!(
        parsed.findings[0].component.as_deref(),
        Some("pkg:pypi/x@1")
    );
    assert_eq!(parsed.findings[0].occurrences, 2);
    assert_eq!(parsed.meta.scanner_name, "cyclonedx");
}

#[test]
fn meta_stops_after_metadata_and_versions_are_checked() {
    let text = br#"{"bomFormat": "CycloneDX", "specVersion": "1.6", "metadata": {"component": {"type": "application", "name": "web"}}, "vulnerabilities": [ broken"#;
    let meta = read_meta(None, &text[..]).unwrap();
    assert_eq!(meta.target_name.as_deref(), Some("web"));
    assert_eq!(meta.target_kind.as_deref(), Some("application"));
    let err = parse_bytes(None, br#"{"bomFormat": "CycloneDX", "specVersion": "2.0"}"#)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("unsupported CycloneDX version `2.0`"), "{err}");
}

#[test]
#[cfg_attr(not(rampart_has_samples), ignore = "needs ../shared/samples")]
fn sample_trivy_cyclonedx() {
    let bytes = sample("cyclonedx-1.5-trivy-0.48.1-vulns.json");
    assert_eq!(
        crate::ingest::detect(&bytes[..4096]),
        Some(ReportFormat::CycloneDx)
    );
    let parsed = parse_bytes(None, &bytes).unwrap();
    assert_eq!(parsed.findings.len(), 14);
    parsed.assert_unique_fingerprints();
    assert_eq!(parsed.opens, 2);
    assert_eq!(parsed.meta.scanner_name, "trivy");
    assert_eq!(parsed.meta.target_name.as_deref(), Some("ubuntu:latest"));
    assert_eq!(parsed.meta.target_kind.as_deref(), Some("container_image"));
    assert!(parsed.findings.iter().all(|f| f
        .component
        .as_deref()
        .is_some_and(|c| c.starts_with("pkg:"))));
    let coreutils = &parsed.by_rule("CVE-2016-2781")[0];
    assert_eq!(coreutils.severity, Severity::Medium);
    assert_eq!(coreutils.cwe_ids, vec!["CWE-20"]);
}
