//! Compliance coverage over the findings the tests upload: every expected number below is
//! worked out by hand from the reports written here (docs/compliance.md has the rules).

use chrono::{Duration, Utc};
use serde_json::{json, Value};

use crate::rest::Client;
use crate::support::{assert_envelope, Auth, TestApp, MEMBER_PASSWORD};

/// A SARIF log of one run of `tool`: one result per `(rule, cwe, path)`; each rule is declared
/// once with its CWE tag (none when `cwe` is empty).
fn sarif(tool: &str, results: &[(&str, &str, &str)]) -> Vec<u8> {
    let mut rules: Vec<Value> = Vec::new();
    for (rule, cwe, _) in results {
        if rules.iter().any(|r| r["id"] == *rule) {
            continue;
        }
        let tags: Vec<String> = if cwe.is_empty() {
            vec!["security".into()]
        } else {
            vec![
                "security".into(),
                format!("external/cwe/{}", cwe.to_lowercase()),
            ]
        };
        rules.push(
            json!({"id": rule, "shortDescription": {"text": rule}, "properties": {"tags": tags}}),
        );
    }
    let results: Vec<Value> = results
        .iter()
        .map(|(rule, _, path)| {
            json!({
                "ruleId": rule, "level": "error", "message": {"text": format!("{rule} in {path}")},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": path}, "region": {"startLine": 3}}}]
            })
        })
        .collect();
    serde_json::to_vec(&json!({
        "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": tool, "version": "1.0.0", "rules": rules}}, "results": results}]
    }))
    .unwrap()
}

const COVERAGE: &str = "query($f: String!, $t: UUID) { compliance(framework: $f, targetId: $t) { score passed failed notTested openFindings fixedFindings controls { id state openFindings fixedFindings } } }";

/// `(score, passed, failed, not tested, open, fixed)` and the controls that are not
/// `NOT_TESTED`, as `(id, state, open, fixed)`.
type Summary = (Value, i64, i64, i64, i64, i64);

async fn coverage(
    app: &TestApp,
    auth: Auth<'_>,
    framework: &str,
    target: Option<&str>,
) -> (Summary, Vec<(String, String, i64, i64)>) {
    let res = app
        .gql(auth, COVERAGE, json!({"f": framework, "t": target}))
        .await;
    let c = res.data("compliance");
    let n = |v: &Value| v.as_i64().unwrap();
    let controls = c["controls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["state"] != "NOT_TESTED")
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["state"].as_str().unwrap().to_string(),
                n(&c["openFindings"]),
                n(&c["fixedFindings"]),
            )
        })
        .collect();
    (
        (
            c["score"].clone(),
            n(&c["passed"]),
            n(&c["failed"]),
            n(&c["notTested"]),
            n(&c["openFindings"]),
            n(&c["fixedFindings"]),
        ),
        controls,
    )
}

fn rows(expected: &[(&str, &str, i64, i64)]) -> Vec<(String, String, i64, i64)> {
    expected
        .iter()
        .map(|(id, state, open, fixed)| (id.to_string(), state.to_string(), *open, *fixed))
        .collect()
}

/// Org A: target `web` scanned twice by semgrep (the XSS fixed in between), target `api`
/// scanned by semgrep with nothing found. Returns (web, api) target ids.
async fn two_targets(app: &TestApp, token: &str) -> (String, String) {
    let auth = Auth::Bearer(token);
    let first = app
        .ingest_and_wait(
            auth,
            "target=web&target_kind=repository",
            sarif(
                "semgrep",
                &[
                    ("sqli", "CWE-89", "a.py"),
                    ("sqli", "CWE-89", "b.py"),
                    ("xss", "CWE-79", "c.js"),
                    ("path", "CWE-22", "d.py"),
                    ("style", "", "e.py"),
                ],
            ),
        )
        .await;
    assert_eq!(first["status"], "COMPLETE", "{first}");
    let second = app
        .ingest_and_wait(
            auth,
            "target=web&target_kind=repository",
            sarif(
                "semgrep",
                &[
                    ("sqli", "CWE-89", "a.py"),
                    ("sqli", "CWE-89", "b.py"),
                    ("path", "CWE-22", "d.py"),
                    ("style", "", "e.py"),
                ],
            ),
        )
        .await;
    assert_eq!(second["findingsFixed"], 1, "{second}");
    let api = app
        .ingest_and_wait(
            auth,
            "target=api&target_kind=repository",
            sarif("semgrep", &[]),
        )
        .await;
    assert_eq!(api["status"], "COMPLETE", "{api}");
    (
        first["targetId"].as_str().unwrap().to_string(),
        api["targetId"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn coverage_counts_what_the_findings_say() {
    let app = TestApp::spawn().await;
    let token = app.login_admin().await;
    let auth = Auth::Bearer(&token);
    let (web, api) = two_targets(&app, &token).await;

    // web: open sqli ×2 (CWE-89), path ×1 (CWE-22), style ×1 (no CWE); fixed xss ×1 (CWE-79).
    // OWASP: A01 ← CWE-22 (1 open), A03 ← CWE-89, CWE-79 (2 open, 1 fixed); the other eight
    // were never tested (semgrep has reported no weakness of theirs). Score 0 / 2.
    let (summary, controls) = coverage(&app, auth, "owasp-top10-2021", Some(&web)).await;
    assert_eq!(summary, (json!(0.0), 0, 2, 8, 3, 1));
    assert_eq!(
        controls,
        rows(&[("A01:2021", "FAILED", 1, 0), ("A03:2021", "FAILED", 2, 1)])
    );
    // api: nothing found, but semgrep scanned it and detects CWE-22, -79 and -89: A01 and A03
    // passed. Score 2 / 2.
    let (summary, controls) = coverage(&app, auth, "owasp-top10-2021", Some(&api)).await;
    assert_eq!(summary, (json!(100.0), 2, 0, 8, 0, 0));
    assert_eq!(
        controls,
        rows(&[("A01:2021", "PASSED", 0, 0), ("A03:2021", "PASSED", 0, 0)])
    );
    // The org: failed wins over passed.
    let (summary, _) = coverage(&app, auth, "owasp-top10-2021", None).await;
    assert_eq!(summary, (json!(0.0), 0, 2, 8, 3, 1));

    // CWE Top 25 on web: CWE-79 fixed (passed), CWE-89 and CWE-22 open. 1 / 3 = 33.3.
    let (summary, controls) = coverage(&app, auth, "cwe-top25-2024", Some(&web)).await;
    assert_eq!(summary, (json!(33.3), 1, 2, 22, 3, 1));
    assert_eq!(
        controls,
        rows(&[
            ("CWE-79", "PASSED", 0, 1),
            ("CWE-89", "FAILED", 2, 0),
            ("CWE-22", "FAILED", 1, 0),
        ])
    );
    // PCI DSS: CWE-89 → injection, CWE-79 → business logic, CWE-22 → access control.
    let (summary, controls) = coverage(&app, auth, "pci-dss-4.0", Some(&web)).await;
    assert_eq!(summary, (json!(33.3), 1, 2, 3, 3, 1));
    assert_eq!(
        controls,
        rows(&[
            ("6.2.4-injection", "FAILED", 2, 0),
            ("6.2.4-business-logic", "PASSED", 0, 1),
            ("6.2.4-access-control", "FAILED", 1, 0),
        ])
    );
    // NIST: CWE-22 → AC-3; CWE-89 and CWE-79 → SI-10.
    let (summary, controls) = coverage(&app, auth, "nist-800-53-r5", Some(&web)).await;
    assert_eq!(summary, (json!(0.0), 0, 2, 16, 3, 1));
    assert_eq!(
        controls,
        rows(&[("AC-3", "FAILED", 1, 0), ("SI-10", "FAILED", 2, 1)])
    );

    // A false positive counts nowhere: the path finding leaves A01 tested and clean.
    let path = app
        .gql(
            auth,
            "query($t: UUID) { findings(targetId: $t, ruleId: \"path\") { nodes { id } } }",
            json!({"t": web}),
        )
        .await;
    let id = path.data("findings")["nodes"][0]["id"].clone();
    let triaged = app
        .gql(
            auth,
            "mutation($id: UUID!) { setFindingState(id: $id, input: {state: FALSE_POSITIVE}) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(triaged.code(), None, "{:?}", triaged.body);
    let (summary, controls) = coverage(&app, auth, "owasp-top10-2021", Some(&web)).await;
    assert_eq!(summary, (json!(50.0), 1, 1, 8, 2, 1));
    assert_eq!(
        controls,
        rows(&[("A01:2021", "PASSED", 0, 0), ("A03:2021", "FAILED", 2, 1)])
    );

    // Viewers and read keys read it; an unknown framework is NOT_FOUND.
    app.add_member(&token, "viewer@acme.test", "VIEWER").await;
    let viewer = app.login("viewer@acme.test", MEMBER_PASSWORD).await.0;
    let read_key = app.create_key(&token, "READ").await;
    for reader in [Auth::Bearer(&viewer), Auth::ApiKey(&read_key)] {
        let (summary, _) = coverage(&app, reader, "owasp-top10-2021", Some(&web)).await;
        assert_eq!(summary.0, json!(50.0));
    }
    let unknown = app
        .gql(auth, COVERAGE, json!({"f": "iso-27001", "t": null}))
        .await;
    assert_eq!(unknown.code(), Some("NOT_FOUND"));

    // The REST rows answer the same, in the documented shape.
    let api_client = Client::new(&app).await;
    let listed = api_client
        .get(Auth::ApiKey(&read_key), "/api/v1/compliance/frameworks")
        .await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let ids: Vec<&str> = listed.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "owasp-top10-2021",
            "cwe-top25-2024",
            "pci-dss-4.0",
            "nist-800-53-r5",
            "kafkaguard-baseline-dev",
            "kafkaguard-enterprise-default",
            "kafkaguard-finance-iso",
        ]
    );
    let row = api_client
        .get(
            Auth::Bearer(&viewer),
            &format!("/api/v1/compliance/cwe-top25-2024?target_id={web}"),
        )
        .await;
    assert_eq!(row.status, 200, "{}", row.body);
    let data = &row.body["data"];
    assert_eq!(
        (
            &data["score"],
            &data["passed"],
            &data["failed"],
            &data["not_tested"]
        ),
        (&json!(66.7), &json!(2), &json!(1), &json!(22))
    );
    assert_eq!(data["target_id"], web);
    assert_eq!(data["controls"][0]["id"], "CWE-79");
    assert_eq!(data["controls"][0]["state"], "passed");
    assert_eq!(data["controls"][0]["cwe_ids"], json!(["CWE-79"]));
    assert_eq!(data["controls"][2]["state"], "failed");
    assert_eq!(data["controls"][3]["state"], "not_tested");
    let missing = api_client.get(auth, "/api/v1/compliance/iso-27001").await;
    assert_eq!(missing.status, 404);
    assert_envelope(&missing.body, 404, "NOT_FOUND");
    let trend = api_client
        .get(
            auth,
            &format!(
                "/api/v1/compliance/owasp-top10-2021/trend?target_id={web}&period=7d&interval=day"
            ),
        )
        .await;
    assert_eq!(trend.status, 200, "{}", trend.body);
    let points = trend.body["data"].as_array().unwrap();
    assert_eq!(points.len(), 8);
    assert_eq!(points[7]["score"], json!(50.0));
    assert_eq!(points[7]["open_findings"], 2);
    let bad = api_client
        .get(
            auth,
            "/api/v1/compliance/owasp-top10-2021/trend?interval=month",
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
}

#[tokio::test]
async fn kafkaguard_tiers_follow_native_checks() {
    let app = TestApp::spawn().await;
    let token = app.login_admin().await;
    let auth = Auth::Bearer(&token);
    let report = serde_json::to_vec(&json!({
        "rampart_report": "1",
        "target": {"name": "prod-us", "kind": "kafka_cluster"},
        "scanner": {"name": "KafkaGuard", "version": "2.3.0"},
        "policy_tier": "enterprise-default",
        "checks": [
            {"id": "KG-001", "title": "TLS on client listeners", "status": "pass", "severity": "high"},
            {"id": "KG-014", "title": "Anonymous access disabled", "status": "fail", "severity": "critical",
             "resource": "broker/1", "cwe_ids": ["CWE-306"]},
            {"id": "KG-014", "title": "Anonymous access disabled", "status": "fail", "severity": "critical",
             "resource": "broker/2", "cwe_ids": ["CWE-306"]},
            {"id": "KG-030", "title": "Replication factor", "status": "fail", "severity": "medium"},
            {"id": "KG-020", "title": "Audit logging", "status": "fail", "severity": "high"}
        ]
    }))
    .unwrap();
    let scan = app
        .ingest_and_wait(auth, "target=prod-us&target_kind=kafka_cluster", report)
        .await;
    assert_eq!(scan["status"], "COMPLETE", "{scan}");
    let cluster = scan["targetId"].as_str().unwrap().to_string();

    // enterprise-default (46 checks, all run by this scan): KG-014 (2 open) and KG-030 failed,
    // 44 passed; KG-020 is not one of its checks. 44 / 46 = 95.7.
    let (summary, controls) =
        coverage(&app, auth, "kafkaguard-enterprise-default", Some(&cluster)).await;
    assert_eq!(summary, (json!(95.7), 44, 2, 0, 3, 0));
    let failed: Vec<_> = controls.iter().filter(|c| c.1 == "FAILED").collect();
    assert_eq!(
        failed,
        rows(&[("KG-014", "FAILED", 2, 0), ("KG-030", "FAILED", 1, 0)])
            .iter()
            .collect::<Vec<_>>()
    );
    // finance-iso (56): the enterprise scan ran 46 of them; KG-020's open finding fails it
    // untested; the other 9 finance-only checks are not tested. 44 / 47 = 93.6.
    let (summary, _) = coverage(&app, auth, "kafkaguard-finance-iso", Some(&cluster)).await;
    assert_eq!(summary, (json!(93.6), 44, 3, 9, 4, 0));
    // baseline-dev (31, every one run by the enterprise tier): KG-030 failed. 30 / 31 = 96.8.
    let (summary, _) = coverage(&app, auth, "kafkaguard-baseline-dev", None).await;
    assert_eq!(summary, (json!(96.8), 30, 1, 0, 1, 0));
    // The native check's CWE maps it into the CWE frameworks too: OWASP A07 ← CWE-306.
    let (summary, controls) = coverage(&app, auth, "owasp-top10-2021", None).await;
    assert_eq!(summary, (json!(0.0), 0, 1, 9, 2, 0));
    assert_eq!(controls, rows(&[("A07:2021", "FAILED", 2, 0)]));
}

#[tokio::test]
async fn the_trend_replays_first_seen_and_fixed_times() {
    use entity::{finding, rule, scan};
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

    let app = TestApp::spawn().await;
    let token = app.login_admin().await;
    let auth = Auth::Bearer(&token);
    let (web, _) = two_targets(&app, &token).await;
    let web_id: uuid::Uuid = web.parse().unwrap();
    let db = &app.state.db;
    let now = Utc::now();
    let hour = Duration::hours(1);
    // History, an hour off each day boundary: semgrep known and scanning from 6 days 2 hours
    // ago; the XSS seen 6 days 1 hour ago and fixed 1 day 1 hour ago; the SQL injections seen
    // 5 days 1 hour ago; the path traversal 2 days 1 hour ago.
    rule::Entity::update_many()
        .col_expr(
            rule::Column::CreatedAt,
            Expr::value(now - Duration::days(7)),
        )
        .exec(db)
        .await
        .unwrap();
    scan::Entity::update_many()
        .col_expr(
            scan::Column::ScannedAt,
            Expr::value(now - Duration::days(6) - hour * 2),
        )
        .filter(scan::Column::TargetId.eq(web_id))
        .exec(db)
        .await
        .unwrap();
    for (rule_id, seen, fixed) in [
        ("xss", Duration::days(6), Some(Duration::days(1))),
        ("sqli", Duration::days(5), None),
        ("path", Duration::days(2), None),
    ] {
        finding::Entity::update_many()
            .col_expr(finding::Column::FirstSeenAt, Expr::value(now - seen - hour))
            .col_expr(
                finding::Column::FixedAt,
                Expr::value(fixed.map(|f| now - f - hour)),
            )
            .filter(finding::Column::TargetId.eq(web_id))
            .filter(finding::Column::RuleId.eq(rule_id))
            .exec(db)
            .await
            .unwrap();
    }
    let res = app
        .gql(
            auth,
            "query($t: UUID) { complianceTrend(framework: \"cwe-top25-2024\", targetId: $t, period: \"7d\") { at score passed failed notTested openFindings fixedFindings } }",
            json!({"t": web}),
        )
        .await;
    let points: Vec<(Value, i64, i64, i64, i64, i64)> = res
        .data("complianceTrend")
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let n = |k: &str| p[k].as_i64().unwrap();
            (
                p["score"].clone(),
                n("passed"),
                n("failed"),
                n("notTested"),
                n("openFindings"),
                n("fixedFindings"),
            )
        })
        .collect();
    // Controls CWE-79, CWE-89, CWE-22; the rest (22) never tested.
    assert_eq!(
        points,
        vec![
            // 7 days ago: nothing scanned yet.
            (Value::Null, 0, 0, 25, 0, 0),
            // 6 days: scanned; the XSS open, the others clean.
            (json!(66.7), 2, 1, 22, 1, 0),
            // 5, 4, 3 days: the SQL injections open too.
            (json!(33.3), 1, 2, 22, 3, 0),
            (json!(33.3), 1, 2, 22, 3, 0),
            (json!(33.3), 1, 2, 22, 3, 0),
            // 2 days: the path traversal too.
            (json!(0.0), 0, 3, 22, 4, 0),
            // 1 day and now: the XSS fixed.
            (json!(33.3), 1, 2, 22, 3, 1),
            (json!(33.3), 1, 2, 22, 3, 1),
        ]
    );
    // By week over 30 days: 5 points, the last now.
    let weekly = app
        .gql(
            auth,
            "query($t: UUID) { complianceTrend(framework: \"cwe-top25-2024\", targetId: $t, period: \"30d\", interval: \"week\") { score } }",
            json!({"t": web}),
        )
        .await;
    assert_eq!(
        weekly.data("complianceTrend"),
        &json!([{"score": null}, {"score": null}, {"score": null}, {"score": null}, {"score": 33.3}])
    );
}

/// A Trivy JSON report of an image with these `(CVE, package, CWE ids)` vulnerabilities.
fn trivy(vulns: &[(&str, &str, &[&str])]) -> Vec<u8> {
    let vulns: Vec<Value> = vulns
        .iter()
        .map(|(cve, pkg, cwes)| {
            json!({
                "VulnerabilityID": cve, "PkgName": pkg, "InstalledVersion": "1.0",
                "PkgIdentifier": {"PURL": format!("pkg:apk/alpine/{pkg}@1.0")},
                "Title": format!("{pkg}: bad"), "Severity": "HIGH", "CweIDs": cwes
            })
        })
        .collect();
    serde_json::to_vec(&json!({
        "SchemaVersion": 2,
        "ArtifactName": "shop:1.0",
        "ArtifactType": "container_image",
        "Results": [{"Target": "shop:1.0 (alpine 3.19)", "Class": "os-pkgs", "Vulnerabilities": vulns}]
    }))
    .unwrap()
}

#[tokio::test]
async fn known_vulnerabilities_map_through_their_cves() {
    let app = TestApp::spawn().await;
    let token = app.login_admin().await;
    let auth = Auth::Bearer(&token);
    let shop = app
        .ingest_and_wait(
            auth,
            "target=shop&target_kind=container_image",
            trivy(&[
                ("CVE-2024-1001", "busybox", &["CWE-416"]),
                ("CVE-2024-1002", "musl", &[]),
            ]),
        )
        .await;
    assert_eq!(shop["status"], "COMPLETE", "{shop}");
    let shop = shop["targetId"].as_str().unwrap().to_string();
    let clean = app
        .ingest_and_wait(auth, "target=clean&target_kind=container_image", trivy(&[]))
        .await;
    assert_eq!(clean["status"], "COMPLETE", "{clean}");
    let clean = clean["targetId"].as_str().unwrap().to_string();

    // Both findings carry a CVE: OWASP A06 (2 open); CWE-416 is in no OWASP category.
    let (summary, controls) = coverage(&app, auth, "owasp-top10-2021", Some(&shop)).await;
    assert_eq!(summary, (json!(0.0), 0, 1, 9, 2, 0));
    assert_eq!(controls, rows(&[("A06:2021", "FAILED", 2, 0)]));
    // PCI: CWE-416 → 6.2.4 data structures (1), the CVEs → 6.3.3 (2); 2 findings in all.
    let (summary, controls) = coverage(&app, auth, "pci-dss-4.0", Some(&shop)).await;
    assert_eq!(summary, (json!(0.0), 0, 2, 4, 2, 0));
    assert_eq!(
        controls,
        rows(&[
            ("6.2.4-data-structures", "FAILED", 1, 0),
            ("6.3.3", "FAILED", 2, 0),
        ])
    );
    // NIST: SI-2 (the CVEs) and SI-16 (CWE-416).
    let (summary, controls) = coverage(&app, auth, "nist-800-53-r5", Some(&shop)).await;
    assert_eq!(summary, (json!(0.0), 0, 2, 16, 2, 0));
    assert_eq!(
        controls,
        rows(&[("SI-2", "FAILED", 2, 0), ("SI-16", "FAILED", 1, 0)])
    );
    // The clean image: a dependency scan tests A06, and trivy, having reported CWE-416, tests
    // CWE Top 25's #8 there.
    let (summary, controls) = coverage(&app, auth, "owasp-top10-2021", Some(&clean)).await;
    assert_eq!(summary, (json!(100.0), 1, 0, 9, 0, 0));
    assert_eq!(controls, rows(&[("A06:2021", "PASSED", 0, 0)]));
    let (summary, controls) = coverage(&app, auth, "cwe-top25-2024", Some(&clean)).await;
    assert_eq!(summary, (json!(100.0), 1, 0, 24, 0, 0));
    assert_eq!(controls, rows(&[("CWE-416", "PASSED", 0, 0)]));

    // Patched: the next scan of the shop finds nothing, both findings are fixed, A06 passes.
    let patched = app
        .ingest_and_wait(auth, "target=shop&target_kind=container_image", trivy(&[]))
        .await;
    assert_eq!(patched["findingsFixed"], 2, "{patched}");
    let (summary, controls) = coverage(&app, auth, "owasp-top10-2021", Some(&shop)).await;
    assert_eq!(summary, (json!(100.0), 1, 0, 9, 0, 2));
    assert_eq!(controls, rows(&[("A06:2021", "PASSED", 0, 2)]));
}
