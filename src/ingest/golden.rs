//! Golden identities: the fingerprint (occurrence index included) and occurrence count of a
//! fixed set of results of every format, frozen as literals. A finding's stored fingerprint is
//! its identity in an installation: a change of hashing, normalization, field choice or
//! numbering that re-keys a result fails here, so it cannot ship by accident (a deliberate
//! change needs a migration of the stored fingerprints, see `docs/fingerprints.md`).
//!
//! The reports are built here, not read from files; the real samples beside the checkout are
//! pinned too, by a digest of their (fingerprint, occurrences) pairs.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::test_support::{parse_bytes, parse_json, sample, Parsed};

/// One expected finding: rule id, path (the component when there is none), line, fingerprint,
/// occurrences.
type Golden = (
    &'static str,
    Option<&'static str>,
    Option<u32>,
    &'static str,
    u32,
);

type Row = (String, Option<String>, Option<u32>, String, u32);

fn rows(parsed: &Parsed) -> Vec<Row> {
    parsed
        .findings
        .iter()
        .map(|f| {
            (
                f.rule_id.clone(),
                f.location_path.clone().or_else(|| f.component.clone()),
                f.location_line,
                f.fingerprint.clone(),
                f.occurrences,
            )
        })
        .collect()
}

/// The rows as the literal this file holds, for reading a failure.
fn literal(rows: &[Row]) -> String {
    let mut out = String::new();
    for (rule, path, line, fp, occurrences) in rows {
        out.push_str(&format!(
            "    ({rule:?}, {path:?}, {line:?}, {fp:?}, {occurrences}),\n"
        ));
    }
    out
}

/// Parses `report` and checks that its findings are exactly `expected` (in any order).
fn assert_golden(report: &Value, expected: &[Golden]) {
    let parsed = parse_json(report);
    parsed.assert_unique_fingerprints();
    let in_order = rows(&parsed);
    let mut actual = in_order.clone();
    actual.sort_by(|a, b| a.3.cmp(&b.3));
    let mut expected: Vec<Row> = expected
        .iter()
        .map(|&(rule, path, line, fp, occurrences)| {
            (
                rule.to_owned(),
                path.map(str::to_owned),
                line,
                fp.to_owned(),
                occurrences,
            )
        })
        .collect();
    expected.sort_by(|a, b| a.3.cmp(&b.3));
    assert_eq!(actual, expected, "actual:\n{}", literal(&in_order));
}

fn location(uri: &str, line: u32, snippet: Option<&str>) -> Value {
    let mut region = json!({"startLine": line});
    if let Some(text) = snippet {
        region["snippet"] = json!({"text": text});
    }
    json!([{"physicalLocation": {"artifactLocation": {"uri": uri}, "region": region}}])
}

/// Semgrep OSS: `fingerprints` (`matchBasedId/v1`, `requires login` without an account),
/// snippets.
#[test]
fn sarif_with_fingerprints() {
    let result = |rule: &str, uri: &str, line: u32, fp: Value, message: &str| {
        json!({
            "ruleId": rule,
            "message": {"text": message},
            "fingerprints": fp,
            "locations": location(uri, line, Some("eval(request.args['x'])")),
            "properties": {}
        })
    };
    let eval = "python.lang.security.audit.eval-detected.eval-detected";
    let sqli = "python.django.security.injection.sql.sql-injection";
    let report = json!({
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "Semgrep OSS", "semanticVersion": "1.69.0", "rules": [
                {"id": eval, "shortDescription": {"text": "eval"}, "properties": {"tags": ["CWE-95"]}},
                {"id": sqli, "shortDescription": {"text": "sqli"}}
            ]}},
            "results": [
                result(eval, "app/views.py", 12, json!({"matchBasedId/v1": "requires login"}), "Detected eval"),
                // Same tool fingerprint on another line: occurrence 1.
                result(eval, "app/views.py", 40, json!({"matchBasedId/v1": "requires login"}), "Detected eval"),
                // Exact duplicate of the first.
                result(eval, "app/views.py", 12, json!({"matchBasedId/v1": "requires login"}), "Detected eval"),
                result(eval, "app/other.py", 12, json!({"matchBasedId/v1": "requires login"}), "Detected eval"),
                // The highest version of a name counts.
                result(sqli, "app/db.py", 7, json!({"matchBasedId/v1": "0a1b", "matchBasedId/v2": "c3d4"}), "SQL"),
                result(sqli, "app/db.py", 9, json!({"matchBasedId/v2": "c3d4", "other": "x"}), "SQL"),
                // Blank fingerprints fall back to partialFingerprints.
                {
                    "ruleId": sqli,
                    "message": {"text": "SQL"},
                    "fingerprints": {"matchBasedId/v1": "  "},
                    "partialFingerprints": {"primaryLocationLineHash": "5e1f:1"},
                    "locations": location("app/db.py", 20, None)
                }
            ]
        }]
    });
    assert_golden(&report, SEMGREP_OSS);
}

#[rustfmt::skip]
const SEMGREP_OSS: &[Golden] = &[
    ("python.lang.security.audit.eval-detected.eval-detected", Some("app/views.py"), Some(12), "7c3923aec52196b7e24d698aeccfb4b1", 2),
    ("python.lang.security.audit.eval-detected.eval-detected", Some("app/views.py"), Some(40), "7c3923aec52196b7e24d698aeccfb4b1:1", 1),
    ("python.lang.security.audit.eval-detected.eval-detected", Some("app/other.py"), Some(12), "fff993525766bb5ad5a4d0d6b794893c", 1),
    ("python.django.security.injection.sql.sql-injection", Some("app/db.py"), Some(7), "9324218f58f87fb485d89f66bc59830c", 1),
    ("python.django.security.injection.sql.sql-injection", Some("app/db.py"), Some(9), "847df726e5db915260ad654b7cc990a9", 1),
    ("python.django.security.injection.sql.sql-injection", Some("app/db.py"), Some(20), "e42bc3405fc15d38557d7a866fd740b0", 1),
];

/// CodeQL: `partialFingerprints`, rules by `ruleIndex` and by `rule` reference into an
/// extension, artifacts by index, logical locations.
#[test]
fn sarif_with_partial_fingerprints_and_rule_references() {
    let loc = |index: u32, line: u32| {
        json!([{
            "physicalLocation": {
                "artifactLocation": {"uri": "src/db_init.py", "uriBaseId": "%SRCROOT%", "index": index},
                "region": {"startLine": line, "startColumn": 5, "endColumn": 30}
            },
            "logicalLocations": [{"fullyQualifiedName": "db_init.create"}]
        }])
    };
    let report = json!({
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {"name": "CodeQL", "semanticVersion": "2.5.4", "rules": [
                    {"id": "py/sql-injection", "properties": {"security-severity": "8.8", "tags": ["external/cwe/cwe-089"]}},
                    {"id": "py/clear-text-logging-sensitive-data"}
                ]},
                "extensions": [{"name": "codeql/python-queries", "rules": [
                    {"id": "py/weak-sensitive-data-hashing", "properties": {"tags": ["external/cwe/cwe-327"]}}
                ]}]
            },
            "artifacts": [{"location": {"uri": "src/db_init.py"}}, {"location": {"uri": "bad/db_init.py"}}],
            "results": [
                {"ruleId": "py/sql-injection", "ruleIndex": 0, "message": {"text": "This SQL query depends on [a user-provided value](1)."},
                 "locations": loc(0, 14), "partialFingerprints": {"primaryLocationLineHash": "39fa2ee980eb94b0:1", "primaryLocationStartColumnFingerprint": "4"}},
                // Same line hash in another file (CodeQL hashes line content only).
                {"ruleId": "py/sql-injection", "ruleIndex": 0, "message": {"text": "This SQL query depends on [a user-provided value](1)."},
                 "locations": [{"physicalLocation": {"artifactLocation": {"index": 1}, "region": {"startLine": 14, "startColumn": 5}}}],
                 "partialFingerprints": {"primaryLocationLineHash": "39fa2ee980eb94b0:1", "primaryLocationStartColumnFingerprint": "4"}},
                // Rule by index only.
                {"ruleIndex": 1, "message": {"text": "Sensitive data logged"},
                 "locations": loc(0, 30), "partialFingerprints": {"primaryLocationLineHash": "aa00bb11cc22dd33:1"}},
                // Rule by reference into the extension.
                {"rule": {"id": "py/weak-sensitive-data-hashing", "index": 0, "toolComponent": {"index": 0}},
                 "message": {"text": "Weak hash of a password"}, "locations": loc(0, 41),
                 "partialFingerprints": {"primaryLocationLineHash": "ffee0011ddcc2233:1"}},
                {"rule": {"index": 0, "toolComponent": {"index": 0}},
                 "message": {"text": "Weak hash of a password"}, "locations": loc(0, 52),
                 "partialFingerprints": {"primaryLocationLineHash": "ffee0011ddcc2233:2"}}
            ]
        }]
    });
    assert_golden(&report, CODEQL);
}

#[rustfmt::skip]
const CODEQL: &[Golden] = &[
    ("py/sql-injection", Some("src/db_init.py"), Some(14), "7cf3e6fac6a545f96db366413b03edab", 1),
    ("py/sql-injection", Some("bad/db_init.py"), Some(14), "0f8b0ffc0a382102860ace58a3ab465b", 1),
    ("py/clear-text-logging-sensitive-data", Some("src/db_init.py"), Some(30), "68ba20dbfa768f5dba472710cc843648", 1),
    ("py/weak-sensitive-data-hashing", Some("src/db_init.py"), Some(41), "f6f2e9c8b984cecee13b510e1be6c4aa", 1),
    ("py/weak-sensitive-data-hashing", Some("src/db_init.py"), Some(52), "f3d7c85cc523a74e4083b38c5feccde0", 1),
];

/// Semgrep 0.17: no fingerprints, no snippets: the message is the content, its line references
/// blanked; logical locations by `fullyQualifiedName` or `name`.
#[test]
fn sarif_hashed_on_messages() {
    let result = |rule: &str, uri: &str, line: u32, message: &str| json!({"ruleId": rule, "level": "error", "message": {"text": message}, "locations": location(uri, line, None)});
    let mut named = result(
        "java.lang.security.audit.crypto.weak-hash",
        "src/Hash.java",
        8,
        "MD5 is weak",
    );
    named["locations"][0]["logicalLocations"] = json!([{"name": "Hash.digest"}]);
    let mut qualified = named.clone();
    qualified["locations"][0]["logicalLocations"] =
        json!([{"fullyQualifiedName": "org.owasp.Hash.digest", "name": "digest"}]);
    qualified["locations"][0]["physicalLocation"]["region"]["startLine"] = json!(9);
    let report = json!({
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "semgrep", "rules": [
                {"id": "java.lang.security.audit.crypto.weak-hash", "shortDescription": {"text": "weak hash"}},
                {"id": "java.lang.security.audit.sqli.jdbc-sqli", "shortDescription": {"text": "jdbc sqli"}}
            ]}},
            "results": [
                result("java.lang.security.audit.sqli.jdbc-sqli", "src/Query.java", 51, "Tainted query at Query.java:51 (line 51)"),
                // Same message but for its line references, on another line: occurrence 1.
                result("java.lang.security.audit.sqli.jdbc-sqli", "src/Query.java", 77, "Tainted  query at Query.java:77\n(line 77)"),
                result("java.lang.security.audit.sqli.jdbc-sqli", "src/Query.java", 77, "Tainted query built from 'name'"),
                result("java.lang.security.audit.crypto.weak-hash", "src/Hash.java", 8, "MD5 is weak"),
                named,
                qualified,
                // No location at all.
                {"ruleId": "java.lang.security.audit.crypto.weak-hash", "message": {"text": "MD5 somewhere"}},
                // No rule at all.
                {"message": {"text": "orphan"}, "locations": location("src/X.java", 1, None)}
            ]
        }]
    });
    assert_golden(&report, SEMGREP_0_17);
}

#[rustfmt::skip]
const SEMGREP_0_17: &[Golden] = &[
    ("java.lang.security.audit.sqli.jdbc-sqli", Some("src/Query.java"), Some(51), "6b3b6f539f29e9078c1497ef296b6038:0", 1),
    ("java.lang.security.audit.sqli.jdbc-sqli", Some("src/Query.java"), Some(77), "6b3b6f539f29e9078c1497ef296b6038:1", 1),
    ("java.lang.security.audit.sqli.jdbc-sqli", Some("src/Query.java"), Some(77), "5f0aa70f2a5cfc45519c201929a8346d:0", 1),
    ("java.lang.security.audit.crypto.weak-hash", Some("src/Hash.java"), Some(8), "f441934c47c95a3041d63f8eb3f85172:0", 1),
    ("java.lang.security.audit.crypto.weak-hash", Some("src/Hash.java"), Some(8), "e31acf41b53773a896fb449e46a5b1df:0", 1),
    ("java.lang.security.audit.crypto.weak-hash", Some("src/Hash.java"), Some(9), "fd1df9a688709336ebc69b9e06ab085a:0", 1),
    ("java.lang.security.audit.crypto.weak-hash", None, None, "020594fd143ef620cfa8f4f41a59c5e3:0", 1),
    ("unknown-rule", Some("src/X.java"), Some(1), "5d64216a6904f9c8eb81de8ae87e34e6:0", 1),
];

/// Gitleaks 7: no `ruleId` (the rule starts the message), one result per commit that holds the
/// secret.
#[test]
fn sarif_rules_by_message_and_duplicates_across_commits() {
    let leak = |message: &str, uri: &str, line: u32, secret: &str, commit: &str| {
        json!({
            "message": {"text": message},
            "properties": {"commit": commit, "author": "dev", "date": "2021-06-01T10:00:00Z"},
            "locations": location(uri, line, Some(secret))
        })
    };
    let report = json!({
        "$schema": "https://schemastore.azurewebsites.net/schemas/json/sarif-2.1.0-rtm.5.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "Gitleaks", "semanticVersion": "v7.5.0", "rules": [
                {"id": "AWS Access Key", "name": "AWS Access Key"},
                {"id": "AWS", "name": "AWS"},
                {"id": "Asymmetric Private Key", "name": "Asymmetric Private Key"}
            ]}},
            "results": [
                leak("AWS Access Key secret detected", "conf/a.json", 13, "AKIAIOSFODNN7EXAMPLE", "c1"),
                leak("AWS Access Key secret detected", "conf/a.json", 13, "AKIAIOSFODNN7EXAMPLE", "c2"),
                leak("AWS Access Key secret detected", "conf/a.json", 44, "AKIAIOSFODNN7EXAMPLE", "c1"),
                leak("Asymmetric Private Key secret detected", "keys/id_rsa", 1, "-----BEGIN RSA PRIVATE KEY-----", "c1"),
                leak("Asymmetric Private Key secret detected", "keys/id_rsa", 1, "-----BEGIN RSA PRIVATE KEY-----", "c2"),
                leak("Unknown rule secret detected", "x.txt", 3, "zzz", "c1")
            ]
        }]
    });
    assert_golden(&report, GITLEAKS);
}

#[rustfmt::skip]
const GITLEAKS: &[Golden] = &[
    ("AWS Access Key", Some("conf/a.json"), Some(13), "0791572fa696d7e3efc93975257f2adc:0", 2),
    ("AWS Access Key", Some("conf/a.json"), Some(44), "0791572fa696d7e3efc93975257f2adc:1", 1),
    ("Asymmetric Private Key", Some("keys/id_rsa"), Some(1), "22923c0245b84d4dc0f43b5b10e7c4e9:0", 2),
    ("unknown-rule", Some("x.txt"), Some(3), "2b60be60893ce670c3daa2bd25955ffa:0", 1),
];

/// Bandit: snippets, `ruleIndex`, no columns; two B105 results on one line (one per compared
/// string: two findings, the first keeping the fingerprint they shared when they were merged)
/// and an exact duplicate (one finding, seen twice).
#[test]
fn sarif_bandit_shape() {
    assert_golden(&bandit_report(), BANDIT);
}

#[rustfmt::skip]
const BANDIT: &[Golden] = &[
    // 'dot': until the two messages were told apart, both were this one finding, seen twice.
    ("B105", Some("lib/tokenizer.py"), Some(88), "a7753072fb6f5a5b0ff5b3772dd784cb:0", 1),
    // 'lbracket': a finding of its own since then.
    ("B105", Some("lib/tokenizer.py"), Some(88), "3f2c9eec47ef5450f99b639be929bf79:0", 1),
    ("B105", Some("lib/tokenizer.py"), Some(120), "68c22f42c1e23e1d14fe9e05b27e4e85:0", 1),
    ("B602", Some("lib/tokenizer.py"), Some(200), "e137054d3922b647d9b3b0dc9dca13f8:0", 2),
];

/// A Bandit-shaped log: B105 twice on one line with different messages, a B105 elsewhere, and a
/// B602 reported twice identically.
fn bandit_report() -> Value {
    let result = |rule: &str, index: u32, line: u32, code: &str, message: &str| {
        json!({
            "ruleId": rule,
            "ruleIndex": index,
            "level": "note",
            "message": {"text": message},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": "lib/tokenizer.py"},
                "region": {"startLine": line, "endLine": line, "snippet": {"text": code}},
                "contextRegion": {"startLine": line - 1, "endLine": line + 1, "snippet": {"text": format!("\n{code}\n")}}
            }}],
            "properties": {"issue_confidence": "MEDIUM", "issue_severity": "LOW"}
        })
    };
    let compare = "        if t == \"dot\" or t == \"lbracket\":\n";
    json!({
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "Bandit", "organization": "PyCQA", "rules": [
                {"id": "B105", "name": "hardcoded_password_string",
                 "properties": {"tags": ["security", "external/cwe/cwe-259"], "precision": "medium"},
                 "helpUri": "https://bandit.readthedocs.io/en/1.7.9/plugins/b105_hardcoded_password_string.html"},
                {"id": "B602", "name": "subprocess_popen_with_shell_equals_true",
                 "properties": {"tags": ["security", "external/cwe/cwe-78"], "precision": "high"}}
            ]}},
            "results": [
                result("B105", 0, 88, compare, "Possible hardcoded password: 'dot'"),
                result("B105", 0, 88, compare, "Possible hardcoded password: 'lbracket'"),
                result("B105", 0, 120, "    if kind == \"secret\":\n", "Possible hardcoded password: 'secret'"),
                result("B602", 1, 200, "    subprocess.call(cmd, shell=True)\n",
                       "subprocess call with shell=True identified, security issue."),
                result("B602", 1, 200, "    subprocess.call(cmd, shell=True)\n",
                       "subprocess call with shell=True identified, security issue.")
            ]
        }]
    })
}

/// Two runs in one log; artifacts by index, `file://` and percent-escaped URIs; suppressed,
/// passing and absent results are not findings.
#[test]
fn sarif_multiple_runs() {
    let report = json!({
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": {"name": "ESLint", "rules": [{"id": "no-eval"}]}},
                "artifacts": [{"location": {"uri": "file:///home/ci/web/src/a%20b.js"}}],
                "results": [
                    {"ruleId": "no-eval", "message": {"text": "eval can be harmful."},
                     "locations": [{"physicalLocation": {"artifactLocation": {"index": 0}, "region": {"startLine": 3, "startColumn": 9, "snippet": {"text": "eval(x)"}}}}]},
                    {"ruleId": "no-eval", "message": {"text": "eval can be harmful."},
                     "locations": [{"physicalLocation": {"artifactLocation": {"uri": "./src/util.js"}, "region": {"startLine": 3, "startColumn": 9, "snippet": {"text": "eval(x)"}}}}]},
                    // Same line, other column: occurrence 1.
                    {"ruleId": "no-eval", "message": {"text": "eval can be harmful."},
                     "locations": [{"physicalLocation": {"artifactLocation": {"uri": "./src/util.js"}, "region": {"startLine": 3, "startColumn": 30, "snippet": {"text": "eval(x)"}}}}]},
                    {"ruleId": "no-eval", "message": {"text": "eval can be harmful."}, "suppressions": [{"kind": "inSource"}],
                     "locations": location("src/util.js", 8, Some("eval(y)"))},
                    {"ruleId": "no-eval", "kind": "pass", "message": {"text": "ok"}, "locations": location("src/util.js", 9, None)},
                    {"ruleId": "no-eval", "baselineState": "absent", "message": {"text": "gone"}, "locations": location("src/util.js", 10, None)}
                ]
            },
            {
                "tool": {"driver": {"name": "Checkov", "rules": [{"id": "CKV_AWS_20", "shortDescription": {"text": "S3 ACL"}}]}},
                "results": [
                    {"ruleId": "CKV_AWS_20", "level": "error", "message": {"text": "S3 Bucket has an ACL defined which allows public READ access."},
                     "locations": location("main.tf", 1, Some("resource \"aws_s3_bucket\" \"data\" {"))},
                    // The same result in a second run of the log.
                    {"ruleId": "CKV_AWS_20", "level": "error", "message": {"text": "S3 Bucket has an ACL defined which allows public READ access."},
                     "locations": location("main.tf", 1, Some("resource  \"aws_s3_bucket\"\n\"data\" {"))}
                ]
            },
            {
                "tool": {"driver": {"name": "ESLint", "rules": [{"id": "no-eval"}]}},
                "results": [
                    {"ruleId": "no-eval", "message": {"text": "eval can be harmful."},
                     "locations": location("src/late.js", 5, Some("eval(z)"))}
                ]
            }
        ]
    });
    assert_golden(&report, RUNS);
}

#[rustfmt::skip]
const RUNS: &[Golden] = &[
    ("no-eval", Some("/home/ci/web/src/a b.js"), Some(3), "f65882f877dc25253b5b42d8109c867e:0", 1),
    ("no-eval", Some("src/util.js"), Some(3), "74234204c8428733bd77b518625458fb:0", 1),
    ("no-eval", Some("src/util.js"), Some(3), "74234204c8428733bd77b518625458fb:1", 1),
    ("CKV_AWS_20", Some("main.tf"), Some(1), "6c7555dde766aed79e98fc36b092dc4e:0", 2),
    ("no-eval", Some("src/late.js"), Some(5), "4b35ce283a1b9b2d26a36f5ae150475e:0", 1),
];

/// CycloneDX vulnerabilities: affected components by purl, `name@version` or the bare ref; a
/// vulnerability without `affects`; two components with one purl are one finding.
#[test]
fn cyclonedx_vulnerabilities() {
    let report = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "metadata": {"tools": {"components": [{"name": "trivy", "version": "0.48.1"}]},
                     "component": {"bom-ref": "root", "type": "container", "name": "shop", "version": "2"}},
        "components": [
            {"bom-ref": "pkg:npm/lodash@4.17.20", "name": "lodash", "version": "4.17.20", "purl": "pkg:npm/lodash@4.17.20"},
            {"bom-ref": "ref-openssl", "name": "openssl", "version": "3.0.1", "purl": "pkg:deb/debian/openssl@3.0.1",
             "components": [{"bom-ref": "ref-libssl", "name": "libssl", "version": "3.0.1"}]},
            {"bom-ref": "ref-openssl-copy", "name": "openssl", "purl": "pkg:deb/debian/openssl@3.0.1"},
            {"bom-ref": "ref-noversion", "name": "zlib"}
        ],
        "vulnerabilities": [
            {"id": "CVE-2021-23337", "ratings": [{"severity": "high"}], "affects": [{"ref": "pkg:npm/lodash@4.17.20"}]},
            {"id": "CVE-2022-0778", "affects": [{"ref": "ref-openssl"}, {"ref": "ref-libssl"}, {"ref": "ref-openssl-copy"},
                                                 {"ref": "unknown-ref"}, {"ref": "ref-noversion"}]},
            {"id": "GHSA-aaaa-bbbb-cccc"},
            {"bom-ref": "vuln-without-id", "affects": [{"ref": "ref-libssl"}]},
            {"id": "CVE-2020-0001", "analysis": {"state": "not_affected"}, "affects": [{"ref": "ref-openssl"}]}
        ]
    });
    assert_golden(&report, CYCLONEDX);
}

#[rustfmt::skip]
const CYCLONEDX: &[Golden] = &[
    ("CVE-2021-23337", Some("pkg:npm/lodash@4.17.20"), None, "ea30075607c329fc2524812dbd0c6454", 1),
    ("CVE-2022-0778", Some("pkg:deb/debian/openssl@3.0.1"), None, "2e832a3a75ee29ab35d90b1c3aec91f3", 2),
    ("CVE-2022-0778", Some("libssl@3.0.1"), None, "64908d9efab85a53fbc7046a26f75f2b", 1),
    ("CVE-2022-0778", Some("unknown-ref"), None, "5780aa5495514f38d0fc726e4bc4d66b", 1),
    ("CVE-2022-0778", Some("zlib"), None, "36c9a68539e417573d479b9f65d1530f", 1),
    ("GHSA-aaaa-bbbb-cccc", None, None, "4ceb0040b08aa7f0321740e7cd690595", 1),
    ("vuln-without-id", Some("libssl@3.0.1"), None, "c392789b2fc15dfd476e2bdf0195c361", 1),
];

/// Trivy JSON: vulnerabilities (with and without `PkgPath`, listed twice), misconfigurations
/// (resource, message, two lines), secrets (one match on two lines).
#[test]
fn trivy_vulnerabilities_misconfigurations_secrets() {
    let vuln = |id: &str, pkg: &str, version: &str| {
        json!({"VulnerabilityID": id, "PkgName": pkg, "InstalledVersion": version, "Severity": "HIGH",
               "PkgIdentifier": {"PURL": format!("pkg:apk/alpine/{pkg}@{version}")}})
    };
    let mut jar = vuln(
        "CVE-2021-44228",
        "org.apache.logging.log4j:log4j-core",
        "2.14.1",
    );
    jar["PkgPath"] = json!("app/lib/log4j-core-2.14.1.jar");
    let misconfig = |id: &str, line: u32, resource: Option<&str>, message: &str| {
        let mut cause = json!({"StartLine": line, "EndLine": line + 2});
        if let Some(r) = resource {
            cause["Resource"] = json!(r);
        }
        json!({"ID": id, "AVDID": format!("AVD-{id}"), "Title": "t", "Severity": "MEDIUM", "Status": "FAIL",
               "Message": message, "CauseMetadata": cause})
    };
    let report = json!({
        "SchemaVersion": 2,
        "ArtifactName": "registry.example.com/shop:1.0",
        "ArtifactType": "container_image",
        "Results": [
            {"Target": "registry.example.com/shop:1.0 (alpine 3.19.1)", "Class": "os-pkgs", "Vulnerabilities": [
                vuln("CVE-2023-42363", "busybox", "1.36.1-r15"),
                vuln("CVE-2023-42363", "ssl_client", "1.36.1-r15"),
                vuln("CVE-2023-42363", "busybox", "1.36.1-r15"),
                {"VulnerabilityID": "CVE-2024-0001", "PkgName": "musl", "InstalledVersion": "1.2.4", "Status": "not_affected"}
            ]},
            {"Target": "Java", "Class": "lang-pkgs", "Vulnerabilities": [jar]},
            {"Target": "main.tf", "Class": "config", "Misconfigurations": [
                misconfig("AVD-AWS-0086", 4, Some("aws_s3_bucket.data"), "No public access block so not blocking public acls"),
                misconfig("AVD-AWS-0086", 19, Some("aws_s3_bucket.data"), "No public access block so not blocking public acls"),
                misconfig("AVD-AWS-0086", 4, Some("aws_s3_bucket.data"), "No public access block so not blocking public acls"),
                misconfig("AVD-AWS-0088", 30, None, "Bucket does not have encryption enabled at line 30"),
                {"ID": "AVD-AWS-0089", "Status": "PASS", "Severity": "LOW"}
            ]},
            {"Target": "app/.env", "Class": "secret", "Secrets": [
                {"RuleID": "aws-access-key-id", "Category": "AWS", "Severity": "CRITICAL", "StartLine": 2, "Match": "AWS_ACCESS_KEY_ID=********"},
                {"RuleID": "aws-access-key-id", "Category": "AWS", "Severity": "CRITICAL", "StartLine": 7, "Match": "  AWS_ACCESS_KEY_ID=********"},
                {"RuleID": "github-pat", "Category": "GitHub", "Severity": "CRITICAL", "StartLine": 9, "Match": "GITHUB_TOKEN=****"}
            ]}
        ]
    });
    assert_golden(&report, TRIVY);
}

#[rustfmt::skip]
const TRIVY: &[Golden] = &[
    ("CVE-2023-42363", Some("registry.example.com/shop:1.0 (alpine 3.19.1)"), None, "71e3266bde8243307dcab320fe2e9871", 2),
    ("CVE-2023-42363", Some("registry.example.com/shop:1.0 (alpine 3.19.1)"), None, "74167b990891b588f4a30bd9112ccac4", 1),
    ("CVE-2021-44228", Some("app/lib/log4j-core-2.14.1.jar"), None, "a2d1472cc1cb154ec0862ef4c57d9828", 1),
    ("AVD-AWS-0086", Some("main.tf"), Some(4), "3ba081e282115564a324dff8cab9483a", 2),
    ("AVD-AWS-0086", Some("main.tf"), Some(19), "3ba081e282115564a324dff8cab9483a:1", 1),
    ("AVD-AWS-0088", Some("main.tf"), Some(30), "6728039f4e47cd624d1d6061fa2deb6c", 1),
    ("aws-access-key-id", Some("app/.env"), Some(2), "38333ce7f347ec0bd9b6f94457258d05", 1),
    ("aws-access-key-id", Some("app/.env"), Some(7), "38333ce7f347ec0bd9b6f94457258d05:1", 1),
    ("github-pat", Some("app/.env"), Some(9), "eb50ad066bc68b0ca0503ee1d219ce79", 1),
];

/// Rampart native checks: a given fingerprint, check id + resource, id alone, a duplicate.
#[test]
fn native_checks() {
    let report = json!({
        "rampart_report": "1",
        "target": {"name": "prod-us", "kind": "kafka_cluster"},
        "scanner": {"name": "kafkaguard", "version": "2.3.0"},
        "policy_tier": "enterprise-default",
        "checks": [
            {"id": "KG-001", "status": "pass", "severity": "high"},
            {"id": "KG-002", "status": "fail", "severity": "critical", "resource": "broker/1", "location": {"path": "server.properties", "line": 12}},
            {"id": "KG-002", "status": "fail", "severity": "critical", "resource": "broker/2"},
            {"id": "KG-002", "status": "fail", "severity": "critical", "resource": "broker/1"},
            {"id": "KG-003", "status": "fail", "severity": "low"},
            {"id": "KG-004", "status": "fail", "severity": "medium", "fingerprint": "kg-004/cluster"},
            {"id": "KG-005", "status": "skip", "severity": "low"}
        ]
    });
    assert_golden(&report, NATIVE);
}

#[rustfmt::skip]
const NATIVE: &[Golden] = &[
    ("KG-002", Some("server.properties"), Some(12), "8eaccfd9d2cd249035c829a18d9b103f", 2),
    ("KG-002", Some("broker/2"), None, "ac0eb85581826c8e2e7fa5b821fab86f", 1),
    ("KG-003", None, None, "ae321745a0ea5b17cd8263175c7d29f3", 1),
    ("KG-004", None, None, "eac213d1566f9c043fb27453422b4c8c", 1),
];

/// SHA-256 over the report's sorted `fingerprint occurrences` lines, and the finding count.
fn digest(name: &str) -> (String, usize) {
    let parsed = parse_bytes(None, &sample(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    parsed.assert_unique_fingerprints();
    let mut lines: Vec<String> = parsed
        .findings
        .iter()
        .map(|f| format!("{} {}\n", f.fingerprint, f.occurrences))
        .collect();
    lines.sort_unstable();
    let mut hasher = Sha256::new();
    for line in &lines {
        hasher.update(line.as_bytes());
    }
    (hex::encode(hasher.finalize()), lines.len())
}

#[test]
#[cfg_attr(not(rampart_has_samples), ignore = "needs ../shared/samples")]
fn real_samples() {
    let expected = [
        (
            "semgrep-0.17.0-owasp-benchmark.sarif",
            "908a0b697a5793f49910b6b41afb750717dcdfa42281639b9c5938b7d08a1c26",
            1768,
        ),
        (
            "codeql-2.5.4-output.sarif",
            "108890b52224136c3b34847204572979b8993b7f95b87cc2e5b8c273c0846be1",
            72,
        ),
        (
            "semgrep-oss-1.69.0.sarif.json",
            "31c06230e081e25716a55ceab8679cda18c64c5db7644fdfe960e73f37b79fc3",
            77,
        ),
        (
            "gitleaks-7.x.sarif",
            "d688d1276743c1a4a1175daa9d7a7c3f34bda2bb513c448eaa624123ffd10122",
            4,
        ),
        (
            "cyclonedx-1.5-trivy-0.48.1-vulns.json",
            "d453af4a01a598c5c6510d4522b1ee19866f2881b442895d4b1c942bf293dbb7",
            14,
        ),
        (
            "trivy-schema2-alpine-image.json",
            "947a8f761790d13e48e4361aecacbd218108a7523c65f51864cc988df5ade186",
            29,
        ),
    ];
    let actual: Vec<(String, String, usize)> = [
        "semgrep-0.17.0-owasp-benchmark.sarif",
        "codeql-2.5.4-output.sarif",
        "semgrep-oss-1.69.0.sarif.json",
        "gitleaks-7.x.sarif",
        "cyclonedx-1.5-trivy-0.48.1-vulns.json",
        "trivy-schema2-alpine-image.json",
    ]
    .into_iter()
    .map(|name| {
        let (digest, count) = digest(name);
        (name.to_owned(), digest, count)
    })
    .collect();
    let expected: Vec<(String, String, usize)> = expected
        .iter()
        .map(|&(name, digest, count)| (name.to_owned(), digest.to_owned(), count))
        .collect();
    assert_eq!(actual, expected);
}
