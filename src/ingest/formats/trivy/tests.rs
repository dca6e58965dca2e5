use serde_json::{json, Value};

use super::*;
use crate::ingest::test_support::{parse_bytes, parse_json, sample};
use crate::ingest::{read_meta, Severity};

fn vuln(id: &str, pkg: &str, version: &str, severity: &str) -> Value {
    json!({
        "VulnerabilityID": id,
        "PkgName": pkg,
        "InstalledVersion": version,
        "FixedVersion": "9.9",
        "PkgIdentifier": {"PURL": format!("pkg:apk/alpine/{pkg}@{version}")},
        "Title": format!("{pkg}: something bad"),
        "Description": "Long description.",
        "Severity": severity,
        "CweIDs": ["CWE-416"]
    })
}

fn report() -> Value {
    json!({
        "SchemaVersion": 2,
        "ArtifactName": "registry.example.com/shop:1.0",
        "ArtifactType": "container_image",
        "Results": [
            {
                "Target": "registry.example.com/shop:1.0 (alpine 3.19.1)",
                "Class": "os-pkgs",
                "Vulnerabilities": [
                    vuln("CVE-2023-42363", "busybox", "1.36.1-r15", "MEDIUM"),
                    vuln("CVE-2023-42363", "ssl_client", "1.36.1-r15", "MEDIUM"),
                    vuln("CVE-2024-0001", "musl", "1.2.4", "UNKNOWN"),
                    vuln("CVE-2023-42363", "busybox", "1.36.1-r15", "MEDIUM")
                ]
            },
            {
                "Target": "Dockerfile",
                "Class": "config",
                "Misconfigurations": [
                    {"ID": "DS002", "Title": "Image user should not be root", "Severity": "HIGH", "Status": "FAIL",
                     "Message": "Specify a non-root user", "Resolution": "Add USER", "CauseMetadata": {"StartLine": 3}},
                    {"ID": "DS001", "Title": "ok", "Severity": "LOW", "Status": "PASS"}
                ]
            },
            {
                "Target": "app/.env",
                "Class": "secret",
                "Secrets": [
                    {"RuleID": "aws-access-key-id", "Category": "AWS", "Severity": "CRITICAL", "Title": "AWS Access Key ID",
                     "StartLine": 2, "Match": "AWS_ACCESS_KEY_ID=********"},
                    {"RuleID": "aws-access-key-id", "Category": "AWS", "Severity": "CRITICAL", "Title": "AWS Access Key ID",
                     "StartLine": 7, "Match": "AWS_ACCESS_KEY_ID=********"}
                ]
            },
            {"Target": "Node.js", "Class": "lang-pkgs", "Vulnerabilities": null}
        ]
    })
}

#[test]
fn known_report_gives_expected_findings() {
    let parsed = parse_json(&report());
    assert_eq!(parsed.meta.format, ReportFormat::Trivy);
    assert_eq!(parsed.meta.scanner_name, "trivy");
    assert_eq!(
        parsed.meta.target_name.as_deref(),
        Some("registry.example.com/shop:1.0")
    );
    assert_eq!(parsed.meta.target_kind.as_deref(), Some("container_image"));
    assert_eq!(parsed.findings.len(), 6, "{:#?}", parsed.findings);
    parsed.assert_unique_fingerprints();

    let busybox = parsed
        .findings
        .iter()
        .find(|f| f.component.as_deref() == Some("pkg:apk/alpine/busybox@1.36.1-r15"))
        .unwrap();
    assert_eq!(busybox.occurrences, 2);
    assert_eq!(busybox.severity, Severity::Medium);
    assert_eq!(busybox.title, "busybox: something bad");
    assert_eq!(busybox.cve_ids, vec!["CVE-2023-42363"]);
    assert_eq!(busybox.cwe_ids, vec!["CWE-416"]);
    assert_eq!(
        busybox.location_path.as_deref(),
        Some("registry.example.com/shop:1.0 (alpine 3.19.1)")
    );
    assert_eq!(
        busybox.remediation.as_deref(),
        Some("Upgrade busybox from 1.36.1-r15 to 9.9.")
    );
    assert_eq!(parsed.by_rule("CVE-2024-0001")[0].severity, Severity::Info);

    let misconf = &parsed.by_rule("DS002")[0];
    assert_eq!(
        (misconf.severity, misconf.location_line),
        (Severity::High, Some(3))
    );
    assert_eq!(misconf.location_path.as_deref(), Some("Dockerfile"));
    assert_eq!(misconf.remediation.as_deref(), Some("Add USER"));

    let secrets = parsed.by_rule("aws-access-key-id");
    assert_eq!(secrets.len(), 2);
    assert!(secrets.iter().all(|s| s.severity == Severity::Critical));
    assert_ne!(secrets[0].fingerprint, secrets[1].fingerprint);
}

#[test]
fn fingerprint_is_id_package_version_and_target() {
    let a = parse_json(&report());
    let mut other = report();
    other["Results"][0]["Vulnerabilities"] =
        json!([vuln("CVE-2023-42363", "busybox", "1.36.1-r15", "HIGH")]);
    let b = parse_json(&other);
    let fp = |p: &crate::ingest::test_support::Parsed| {
        p.findings
            .iter()
            .find(|f| f.component.as_deref() == Some("pkg:apk/alpine/busybox@1.36.1-r15"))
            .map(|f| f.fingerprint.clone())
            .unwrap()
    };
    assert_eq!(fp(&a), fp(&b));
    other["Results"][0]["Vulnerabilities"] =
        json!([vuln("CVE-2023-42363", "busybox", "1.36.1-r16", "HIGH")]);
    let c = parse_json(&other);
    assert_ne!(c.by_rule("CVE-2023-42363")[0].fingerprint, fp(&a));
}

#[test]
fn target_after_findings_is_handled() {
    let text = r#"{"SchemaVersion": 2, "ArtifactName": "repo", "ArtifactType": "filesystem",
        "Results": [{"Vulnerabilities": [{"VulnerabilityID": "CVE-1-2", "PkgName": "p", "InstalledVersion": "1", "Severity": "LOW"}], "Target": "go.sum"}]}"#;
    let parsed = parse_bytes(None, text.as_bytes()).unwrap();
    assert_eq!(parsed.opens, 3);
    assert_eq!(parsed.findings[0].location_path.as_deref(), Some("go.sum"));
    assert_eq!(parsed.meta.target_kind.as_deref(), Some("repository"));
}

#[test]
fn meta_stops_once_the_artifact_is_known() {
    let text = br#"{"SchemaVersion": 2, "ArtifactName": "alpine:3", "ArtifactType": "container_image", "Results": [ not json"#;
    let meta = read_meta(None, &text[..]).unwrap();
    assert_eq!(meta.target_name.as_deref(), Some("alpine:3"));
}

#[test]
#[cfg_attr(not(rampart_has_samples), ignore = "needs ../shared/samples")]
fn sample_trivy_alpine() {
    let bytes = sample("trivy-schema2-alpine-image.json");
    assert_eq!(
        crate::ingest::detect(&bytes[..4096]),
        Some(ReportFormat::Trivy)
    );
    let parsed = parse_bytes(None, &bytes).unwrap();
    assert_eq!(parsed.findings.len(), 29);
    parsed.assert_unique_fingerprints();
    assert_eq!(parsed.meta.target_kind.as_deref(), Some("container_image"));
    assert!(parsed
        .meta
        .target_name
        .as_deref()
        .is_some_and(|n| n.ends_with("cilab-lifelong-api-master:dev-latest")));
    assert!(parsed
        .findings
        .iter()
        .all(|f| f.component.is_some() && f.occurrences == 1));
}
