use serde_json::{json, Value};

use super::*;
use crate::ingest::test_support::{parse_bytes, parse_json, sample};
use crate::ingest::{read_meta, Severity};

fn rules() -> Value {
    json!([
        {
            "id": "py/sql-injection",
            "name": "SqlInjection",
            "shortDescription": {"text": "SQL query built from user input"},
            "fullDescription": {"text": "Building SQL from user input allows SQL injection."},
            "help": {"text": "Use parameterized queries."},
            "defaultConfiguration": {"level": "error"},
            "properties": {"tags": ["security", "external/cwe/cwe-089"], "security-severity": "9.8"}
        },
        {
            "id": "py/unused-import",
            "name": "UnusedImport",
            "defaultConfiguration": {"level": "note"},
            "properties": {"tags": ["maintainability"]}
        },
        {
            "id": "py/weak-hash",
            "shortDescription": {"text": "Weak hash"},
            "properties": {"cwe": "CWE-328: Use of Weak Hash", "tags": ["CVE-2020-12345"]}
        }
    ])
}

fn result(rule: &str, uri: &str, line: u32, snippet: Option<&str>, message: &str) -> Value {
    let mut region = json!({"startLine": line, "startColumn": 5});
    if let Some(code) = snippet {
        region["snippet"] = json!({"text": code});
    }
    json!({
        "ruleId": rule,
        "message": {"text": message},
        "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri}, "region": region}}]
    })
}

fn log(results: Vec<Value>) -> Value {
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "DemoQL", "semanticVersion": "1.2.3", "rules": rules()}},
            "versionControlProvenance": [{"repositoryUri": "https://example.com/acme/shop"}],
            "results": results
        }]
    })
}

#[test]
fn known_report_gives_expected_findings() {
    let mut suppressed = result(
        "py/unused-import",
        "app.py",
        2,
        None,
        "Import of 'os' is not used.",
    );
    suppressed["suppressions"] = json!([{"kind": "inSource"}]);
    let mut rejected = result(
        "py/unused-import",
        "app.py",
        3,
        None,
        "Import of 'sys' is not used.",
    );
    rejected["suppressions"] = json!([{"kind": "external", "status": "rejected"}]);
    let mut passed = result(
        "py/unused-import",
        "app.py",
        4,
        None,
        "Import of 're' is not used.",
    );
    passed["kind"] = json!("pass");
    let mut explicit_fail = result(
        "py/weak-hash",
        "crypto.py",
        7,
        Some("md5(x)"),
        "MD5 is weak.",
    );
    explicit_fail["kind"] = json!("fail");
    explicit_fail["level"] = json!("error");
    let mut scored = result(
        "py/weak-hash",
        "crypto.py",
        9,
        Some("sha1(x)"),
        "SHA-1 is weak.",
    );
    scored["properties"] = json!({"security-severity": 5.0, "tags": ["external/cwe/cwe-327"]});
    let mut absent = result("py/weak-hash", "crypto.py", 11, None, "gone");
    absent["baselineState"] = json!("absent");
    let mut by_index = json!({
        "ruleIndex": 1,
        "message": {"text": "Import of '{0}' is not used.", "arguments": ["json"]},
        "locations": [{"physicalLocation": {"artifactLocation": {"uri": "./lib/util.py"}, "region": {"startLine": 1}}}]
    });
    by_index["partialFingerprints"] = json!({"primaryLocationLineHash": "abc:1"});

    let report = log(vec![
        result(
            "py/sql-injection",
            "src/db.py",
            10,
            Some("cursor.execute(q)"),
            "Query built from [user input](1).",
        ),
        suppressed,
        rejected,
        passed,
        explicit_fail,
        scored,
        absent,
        by_index,
    ]);
    let parsed = parse_json(&report);
    assert_eq!(parsed.meta.format, ReportFormat::Sarif);
    assert_eq!(parsed.meta.scanner_name, "DemoQL");
    assert_eq!(parsed.meta.scanner_version.as_deref(), Some("1.2.3"));
    assert_eq!(
        parsed.meta.target_name.as_deref(),
        Some("https://example.com/acme/shop")
    );
    assert_eq!(parsed.meta.target_kind.as_deref(), Some("repository"));
    assert_eq!(parsed.findings.len(), 5, "{:#?}", parsed.findings);
    parsed.assert_unique_fingerprints();

    let sqli = &parsed.by_rule("py/sql-injection")[0];
    assert_eq!(sqli.severity, Severity::Critical);
    assert_eq!(sqli.title, "SQL query built from user input");
    assert_eq!(sqli.cwe_ids, vec!["CWE-89"]);
    assert_eq!(sqli.location_path.as_deref(), Some("src/db.py"));
    assert_eq!(sqli.location_line, Some(10));
    assert_eq!(sqli.scanner, "DemoQL");
    assert_eq!(
        sqli.shown_description(),
        "Query built from [user input](1).\n\nBuilding SQL from user input allows SQL injection."
    );
    assert_eq!(
        sqli.remediation.as_deref(),
        Some("Use parameterized queries.")
    );
    assert!(sqli.fingerprint.ends_with(":0"), "{}", sqli.fingerprint);
    assert_eq!(sqli.occurrences, 1);

    let unused = parsed.by_rule("py/unused-import");
    assert_eq!(unused.len(), 2);
    let rejected = unused.iter().find(|f| f.location_line == Some(3)).unwrap();
    assert_eq!(rejected.severity, Severity::Low);
    assert_eq!(rejected.title, "UnusedImport");
    let by_index = unused.iter().find(|f| f.location_line == Some(1)).unwrap();
    assert_eq!(
        by_index.shown_description(),
        "Import of 'json' is not used."
    );
    assert_eq!(by_index.location_path.as_deref(), Some("lib/util.py"));
    assert_eq!(
        by_index.fingerprint.len(),
        32,
        "tool fingerprints carry no index"
    );

    let weak = parsed.by_rule("py/weak-hash");
    assert_eq!(weak.len(), 2);
    let md5 = weak.iter().find(|f| f.location_line == Some(7)).unwrap();
    assert_eq!(md5.severity, Severity::High);
    assert_eq!(md5.cwe_ids, vec!["CWE-328"]);
    assert_eq!(md5.cve_ids, vec!["CVE-2020-12345"]);
    let sha1 = weak.iter().find(|f| f.location_line == Some(9)).unwrap();
    assert_eq!(sha1.severity, Severity::Medium);
    assert_eq!(sha1.cwe_ids, vec!["CWE-328", "CWE-327"]);
}

#[test]
fn level_resolution_falls_back_to_warning() {
    let report = json!({"version": "2.1.0", "runs": [{
        "tool": {"driver": {"name": "t", "rules": [{"id": "a"}, {"id": "b", "defaultConfiguration": {"level": "none"}}]}},
        "results": [
            {"ruleId": "a", "message": {"text": "m1"}},
            {"ruleId": "b", "message": {"text": "m2"}},
            {"ruleId": "b", "level": "warning", "message": {"text": "m3"}},
            {"ruleId": "c", "level": "error", "message": {"text": "m4"}}
        ]
    }]});
    let parsed = parse_json(&report);
    let sev: Vec<Severity> = parsed.findings.iter().map(|f| f.severity).collect();
    assert_eq!(
        sev,
        vec![
            Severity::Medium,
            Severity::Info,
            Severity::Medium,
            Severity::High
        ]
    );
    assert_eq!(parsed.findings[3].title, "m4");
}

fn fingerprint_at(findings: &[crate::ingest::NormalizedFinding], line: u32) -> String {
    findings
        .iter()
        .find(|f| f.location_line == Some(line))
        .map(|f| f.fingerprint.clone())
        .unwrap_or_else(|| panic!("no finding at line {line}"))
}

#[test]
fn fingerprint_survives_code_moving_down() {
    let before = parse_json(&log(vec![
        result("py/weak-hash", "a.py", 10, Some("  h = md5(data)"), "MD5"),
        result("py/weak-hash", "b.py", 3, Some("md5()"), "MD5"),
    ]));
    let after = parse_json(&log(vec![
        result("py/weak-hash", "a.py", 1, Some("import hashlib"), "MD5"),
        result(
            "py/weak-hash",
            "a.py",
            17,
            Some("    h = md5(data)\n"),
            "MD5",
        ),
        result("py/weak-hash", "b.py", 3, Some("md5()"), "MD5"),
    ]));
    assert_eq!(
        fingerprint_at(&before.findings, 10),
        fingerprint_at(&after.findings, 17)
    );
    assert_ne!(
        fingerprint_at(&after.findings, 1),
        fingerprint_at(&after.findings, 17)
    );
    // Without snippets the message is the content, with its own line references blanked.
    let before = parse_json(&log(vec![result(
        "py/weak-hash",
        "a.py",
        10,
        None,
        "weak hash at a.py:10",
    )]));
    let after = parse_json(&log(vec![result(
        "py/weak-hash",
        "a.py",
        30,
        None,
        "weak hash at a.py:30",
    )]));
    assert_eq!(
        before.findings[0].fingerprint,
        after.findings[0].fingerprint
    );
}

#[test]
fn same_content_at_two_lines_stays_two_findings() {
    let report = |offset: u32| {
        log(vec![
            result("py/weak-hash", "a.py", 40 + offset, Some("md5(x)"), "MD5"),
            result("py/weak-hash", "a.py", 20 + offset, Some("md5(x)"), "MD5"),
            result("py/weak-hash", "other.py", 20, Some("md5(x)"), "MD5"),
        ])
    };
    let parsed = parse_json(&report(0));
    assert_eq!(parsed.findings.len(), 3);
    parsed.assert_unique_fingerprints();
    let first = fingerprint_at(&parsed.findings, 20);
    let second = fingerprint_at(&parsed.findings, 40);
    assert!(
        first.ends_with(":0") && second.ends_with(":1"),
        "{first} {second}"
    );
    assert_eq!(first[..32], second[..32]);
    let other = parsed
        .findings
        .iter()
        .find(|f| f.location_path.as_deref() == Some("other.py"))
        .unwrap();
    assert!(other.fingerprint.ends_with(":0"));
    assert_ne!(other.fingerprint, first);

    let moved = parse_json(&report(5));
    assert_eq!(fingerprint_at(&moved.findings, 25), first);
    assert_eq!(fingerprint_at(&moved.findings, 45), second);
}

#[test]
fn exact_duplicates_merge_with_an_occurrence_count() {
    let mut one = result("py/weak-hash", "a.py", 5, Some("md5(x)"), "MD5");
    one["properties"] = json!({"commit": "aaaa"});
    let mut two = one.clone();
    two["properties"] = json!({"commit": "bbbb"});
    let parsed = parse_json(&log(vec![
        one,
        result("py/weak-hash", "a.py", 9, Some("md5(x)"), "MD5"),
        two,
    ]));
    assert_eq!(parsed.findings.len(), 2);
    let merged = parsed
        .findings
        .iter()
        .find(|f| f.location_line == Some(5))
        .unwrap();
    assert_eq!(merged.occurrences, 2);
    assert!(merged.fingerprint.ends_with(":0"));
    let single = parsed
        .findings
        .iter()
        .find(|f| f.location_line == Some(9))
        .unwrap();
    assert_eq!(single.occurrences, 1);
    assert!(single.fingerprint.ends_with(":1"));
}

#[test]
fn tool_fingerprints_use_highest_version_and_path() {
    let mut a = result("py/weak-hash", "a.py", 5, None, "x");
    a["fingerprints"] = json!({"matchBasedId/v1": "old", "matchBasedId/v2": "new"});
    let mut b = result("py/weak-hash", "a.py", 5, None, "x");
    b["fingerprints"] = json!({"matchBasedId/v2": "new", "matchBasedId/v10": "newest"});
    let mut c = result("py/weak-hash", "a.py", 5, None, "x");
    c["fingerprints"] = json!({"matchBasedId/v10": "newest"});
    let mut d = result("py/weak-hash", "b.py", 5, None, "x");
    d["fingerprints"] = json!({"matchBasedId/v2": "new"});
    let parsed = parse_json(&log(vec![a, b, c, d]));
    // b and c agree (v10 is the highest), a and d differ by path: three findings.
    assert_eq!(parsed.findings.len(), 3);
    parsed.assert_unique_fingerprints();
    assert_eq!(
        parsed.findings.iter().map(|f| f.occurrences).sum::<u32>(),
        4
    );
}

#[test]
fn rules_after_results_trigger_an_identity_pass() {
    // Written by hand: results before tool, and a result naming its rule only by index.
    let text = r#"{"version": "2.1.0", "runs": [{
        "results": [
            {"ruleIndex": 1, "message": {"text": "bad"}, "locations": [{"physicalLocation": {"artifactLocation": {"index": 0}, "region": {"startLine": 3}}}]},
            {"ruleId": "r0", "message": {"text": "also bad"}}
        ],
        "artifacts": [{"location": {"uri": "src/x.c"}}],
        "tool": {"driver": {"name": "late", "rules": [{"id": "r0"}, {"id": "r1", "shortDescription": {"text": "Rule one"}}]}}
    }]}"#;
    let parsed = parse_bytes(None, text.as_bytes()).unwrap();
    assert_eq!(parsed.opens, 3);
    assert_eq!(parsed.findings.len(), 2);
    let r1 = &parsed.by_rule("r1")[0];
    assert_eq!(r1.title, "Rule one");
    assert_eq!(r1.location_path.as_deref(), Some("src/x.c"));

    // The usual order needs two passes.
    let usual = r#"{"runs": [{"tool": {"driver": {"name": "t", "rules": [{"id": "r0"}]}},
        "results": [{"ruleIndex": 0, "message": {"text": "m"}}]}]}"#;
    let parsed = parse_bytes(None, usual.as_bytes()).unwrap();
    assert_eq!(parsed.opens, 2);
    assert_eq!(parsed.findings[0].rule_id, "r0");
}

#[test]
fn rule_from_message_and_extensions() {
    let report = json!({"version": "2.1.0", "runs": [
        {
            "tool": {"driver": {"name": "Gitleaks", "rules": [{"id": "AWS", "name": "AWS"}, {"id": "AWS Access Key", "name": "AWS Access Key"}]}},
            "results": [{"message": {"text": "AWS Access Key secret detected"}, "locations": [{"physicalLocation": {"artifactLocation": {"uri": "k.txt"}, "region": {"startLine": 1, "snippet": {"text": "AKIA..."}}}}]}]
        },
        {
            "tool": {
                "driver": {"name": "CodeQL", "rules": []},
                "extensions": [{"name": "pack", "rules": [{"id": "js/xss", "shortDescription": {"text": "XSS"}, "properties": {"security-severity": "6.1"}}]}]
            },
            "results": [{"rule": {"id": "js/xss", "index": 0, "toolComponent": {"index": 0}}, "message": {"text": "xss"}}]
        }
    ]});
    let parsed = parse_json(&report);
    assert_eq!(parsed.findings.len(), 2);
    let leak = &parsed.by_rule("AWS Access Key")[0];
    assert_eq!(leak.scanner, "Gitleaks");
    assert_eq!(leak.title, "AWS Access Key");
    let xss = &parsed.by_rule("js/xss")[0];
    assert_eq!(
        (xss.scanner.as_str(), xss.title.as_str(), xss.severity),
        ("CodeQL", "XSS", Severity::Medium)
    );
    assert_eq!(parsed.meta.scanner_name, "Gitleaks");
}

#[test]
fn read_meta_stops_after_the_first_run() {
    let mut text =
        serde_json::to_vec(&log(vec![result("py/weak-hash", "a.py", 1, None, "m")])).unwrap();
    // Garbage after the first run is never read.
    let cut = text.len() - 2;
    text.truncate(cut);
    text.extend_from_slice(b", {\"tool\": garbage");
    let meta = read_meta(None, text.as_slice()).unwrap();
    assert_eq!(meta.scanner_name, "DemoQL");
    assert_eq!(
        meta.target_name.as_deref(),
        Some("https://example.com/acme/shop")
    );
}

#[test]
fn broken_sarif_names_the_place() {
    let err = parse_bytes(
        None,
        br#"{"version": "2.1.0", "runs": [{"results": [{"ruleId": 5, "locations": {}}]}]}"#,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.starts_with("invalid SARIF at line 1, column"), "{err}");
    let err = parse_bytes(None, br#"{"version": "1.0.0", "runs": []}"#)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("unsupported SARIF version `1.0.0`"), "{err}");
    let err = parse_bytes(Some(ReportFormat::Sarif), b"{}")
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("missing field `runs`"), "{err}");
}

#[test]
fn normalizes_uris() {
    assert_eq!(normalize_uri("file:///home/x/a%20b.py"), "/home/x/a b.py");
    assert_eq!(normalize_uri("./src/./a.py"), "src/./a.py");
    assert_eq!(normalize_uri("src/100%.txt"), "src/100%.txt");
}

fn count_sample(name: &str, expected: usize) -> crate::ingest::test_support::Parsed {
    let bytes = sample(name);
    assert_eq!(
        crate::ingest::detect(&bytes[..bytes.len().min(4096)]),
        Some(ReportFormat::Sarif),
        "{name}"
    );
    let parsed = parse_bytes(None, &bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(parsed.findings.len(), expected, "{name}");
    parsed.assert_unique_fingerprints();
    parsed
}

#[test]
#[cfg_attr(not(rampart_has_samples), ignore = "needs ../shared/samples")]
fn sample_semgrep_0_17() {
    let parsed = count_sample("semgrep-0.17.0-owasp-benchmark.sarif", 1768);
    assert_eq!(parsed.meta.scanner_name, "semgrep");
    assert!(parsed.findings.iter().all(|f| f.occurrences == 1));
}

#[test]
#[cfg_attr(not(rampart_has_samples), ignore = "needs ../shared/samples")]
fn sample_codeql() {
    let parsed = count_sample("codeql-2.5.4-output.sarif", 72);
    assert_eq!(parsed.meta.scanner_name, "CodeQL");
    assert_eq!(parsed.meta.scanner_version.as_deref(), Some("2.5.4"));
    assert!(parsed.findings.iter().all(|f| f.fingerprint.len() == 32));
}

#[test]
#[cfg_attr(not(rampart_has_samples), ignore = "needs ../shared/samples")]
fn sample_semgrep_oss_1_69() {
    let parsed = count_sample("semgrep-oss-1.69.0.sarif.json", 77);
    assert_eq!(
        parsed.opens, 2,
        "results before tool, but every result has a ruleId"
    );
    assert!(parsed
        .findings
        .iter()
        .all(|f| f.severity != Severity::Info && !f.cwe_ids.is_empty()));
}

#[test]
#[cfg_attr(not(rampart_has_samples), ignore = "needs ../shared/samples")]
fn sample_gitleaks() {
    let parsed = count_sample("gitleaks-7.x.sarif", 4);
    assert_eq!(
        parsed.findings.iter().map(|f| f.occurrences).sum::<u32>(),
        8
    );
    assert!(parsed.findings.iter().all(|f| f.occurrences == 2));
    let rules: Vec<&str> = parsed.findings.iter().map(|f| f.rule_id.as_str()).collect();
    assert_eq!(rules.iter().filter(|r| **r == "AWS Access Key").count(), 3);
    assert_eq!(
        rules
            .iter()
            .filter(|r| **r == "Asymmetric Private Key")
            .count(),
        1
    );
}

/// A Bandit-shaped result on `lib/tokenizer.py`: snippet, `ruleIndex`, no column.
fn bandit_result(line: u32, code: &str, message: &str) -> Value {
    json!({
        "ruleId": "B105",
        "ruleIndex": 0,
        "level": "note",
        "message": {"text": message},
        "locations": [{"physicalLocation": {
            "artifactLocation": {"uri": "lib/tokenizer.py"},
            "region": {"startLine": line, "endLine": line, "snippet": {"text": code}}
        }}],
        "properties": {"issue_confidence": "MEDIUM", "issue_severity": "LOW"}
    })
}

fn bandit_log(results: Vec<Value>) -> Value {
    json!({"version": "2.1.0", "runs": [{
        "tool": {"driver": {"name": "Bandit", "rules": [{"id": "B105", "name": "hardcoded_password_string"}]}},
        "results": results
    }]})
}

#[test]
fn one_rule_on_one_line_with_two_messages_is_two_findings() {
    let compare = "        if t == \"dot\" or t == \"lbracket\":\n";
    let dot = bandit_result(88, compare, "Possible hardcoded password: 'dot'");
    let lbracket = bandit_result(88, compare, "Possible hardcoded password: 'lbracket'");
    let parsed = parse_json(&bandit_log(vec![
        dot.clone(),
        lbracket.clone(),
        dot.clone(),
        bandit_result(120, compare, "Possible hardcoded password: 'dot'"),
    ]));
    parsed.assert_unique_fingerprints();
    let at_88: Vec<_> = parsed
        .findings
        .iter()
        .filter(|f| f.location_line == Some(88))
        .map(|f| {
            (
                f.description.as_str(),
                f.occurrences,
                f.fingerprint.as_str(),
            )
        })
        .collect();
    // The first message keeps the fingerprint the line had when its results were merged
    // (golden.rs); the other message is a finding of its own at the same occurrence index.
    assert_eq!(at_88.len(), 2, "{at_88:?}");
    assert_eq!(
        (at_88[0].0, at_88[0].1, at_88[0].2),
        (
            "Possible hardcoded password: 'dot'",
            2,
            "a7753072fb6f5a5b0ff5b3772dd784cb:0"
        )
    );
    assert_eq!(
        (at_88[1].0, at_88[1].1),
        ("Possible hardcoded password: 'lbracket'", 1)
    );
    assert!(at_88[1].2.ends_with(":0"), "{}", at_88[1].2);
    // The same content on a later line is still occurrence 1 of the line's identity.
    assert_eq!(
        fingerprint_at(&parsed.findings, 120),
        "a7753072fb6f5a5b0ff5b3772dd784cb:1"
    );

    // Results identical in everything SARIF records are one finding, counted.
    let twice = parse_json(&bandit_log(vec![dot.clone(), dot.clone()]));
    assert_eq!(twice.findings.len(), 1);
    assert_eq!(twice.findings[0].occurrences, 2);
    assert_eq!(
        twice.findings[0].fingerprint,
        "a7753072fb6f5a5b0ff5b3772dd784cb:0"
    );

    // The second message's key does not depend on the other results: the same report moved
    // down keeps both.
    let moved = |r: &Value| {
        let mut r = r.clone();
        r["locations"][0]["physicalLocation"]["region"]["startLine"] = json!(95);
        r["locations"][0]["physicalLocation"]["region"]["endLine"] = json!(95);
        r
    };
    let later = parse_json(&bandit_log(vec![moved(&dot), moved(&lbracket)]));
    let mut before: Vec<&str> = at_88.iter().map(|f| f.2).collect();
    let mut after: Vec<&str> = later
        .findings
        .iter()
        .map(|f| f.fingerprint.as_str())
        .collect();
    before.sort_unstable();
    after.sort_unstable();
    assert_eq!(before, after);
}

#[test]
fn tool_fingerprinted_results_with_two_messages_on_one_line_are_two_findings() {
    // Semgrep OSS without an account writes `requires login` as every result's fingerprint.
    let result = |message: &str| {
        let mut r = result("py/weak-hash", "a.py", 5, Some("md5(a) + md5(b)"), message);
        r["fingerprints"] = json!({"matchBasedId/v1": "requires login"});
        r
    };
    let parsed = parse_json(&log(vec![
        result("md5 of a"),
        result("md5 of b"),
        result("md5 of b"),
    ]));
    parsed.assert_unique_fingerprints();
    let found: Vec<(&str, u32)> = parsed
        .findings
        .iter()
        .map(|f| (f.description.as_str(), f.occurrences))
        .collect();
    assert_eq!(found, vec![("md5 of a", 1), ("md5 of b", 2)]);
    let single = parse_json(&log(vec![result("md5 of a")]));
    assert_eq!(
        single.findings[0].fingerprint,
        parsed.findings[0].fingerprint
    );
}
