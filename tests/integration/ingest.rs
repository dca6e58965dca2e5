//! The ingest pipeline end to end: upload over HTTP, worker processing, matching across scans.

use std::io::Write as _;

use rampart::ingest::synthetic::{sarif, SyntheticResult};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::json;

use crate::support::{assert_envelope, Auth, TestApp, TestConfig};

fn results(range: std::ops::Range<u64>) -> Vec<SyntheticResult> {
    range.map(SyntheticResult::numbered).collect()
}

async fn open_findings(app: &TestApp, token: &str, target: &str) -> (u64, u64) {
    let res = app
        .gql(
            Auth::Bearer(token),
            "query($t: UUID!) { open: findings(targetId: $t, status: OPEN) { totalCount } fixed: findings(targetId: $t, status: FIXED) { totalCount } }",
            json!({"t": target}),
        )
        .await;
    (
        res.body["data"]["open"]["totalCount"].as_u64().unwrap(),
        res.body["data"]["fixed"]["totalCount"].as_u64().unwrap(),
    )
}

/// Every finding row of the scan's target is what the parser read from `report`, in the state
/// a first sighting gives it.
async fn assert_stored_as_parsed(app: &TestApp, scan: &serde_json::Value, report: &[u8]) {
    let data: std::sync::Arc<[u8]> = std::sync::Arc::from(report);
    let mut open = || -> std::io::Result<Box<dyn std::io::Read + Send>> {
        Ok(Box::new(std::io::Cursor::new(data.clone())))
    };
    let mut parsed = Vec::new();
    rampart::ingest::parse_report(None, &mut open, &mut |f| {
        parsed.push(f);
        Ok(())
    })
    .unwrap();
    let scan_id = uuid::Uuid::parse_str(scan["id"].as_str().unwrap()).unwrap();
    let scan = entity::scan::Entity::find_by_id(scan_id)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    let rows = entity::finding::Entity::find()
        .filter(entity::finding::Column::TargetId.eq(scan.target_id))
        .find_also_related(entity::rule::Entity)
        .all(&app.state.db)
        .await
        .unwrap();
    assert_eq!(rows.len(), parsed.len());
    let by_fingerprint: std::collections::HashMap<
        &str,
        (&entity::finding::Model, &entity::rule::Model),
    > = rows
        .iter()
        .map(|(r, rule)| {
            let rule = rule.as_ref().expect("every finding points at its rule");
            (r.fingerprint.as_str(), (r, rule))
        })
        .collect();
    let json_list = |ids: &[String]| serde_json::to_string(ids).unwrap();
    for f in &parsed {
        let (r, rule) = by_fingerprint[f.fingerprint.as_str()];
        assert_eq!(
            (rule.scanner.as_str(), rule.rule_id.as_str()),
            (r.scanner.as_str(), r.rule_id.as_str())
        );
        assert_eq!(
            (
                (r.scanner.as_str(), r.rule_id.as_str(), r.title.as_str()),
                (r.severity.as_str(), r.cve_ids.clone(), rule.cwe_ids.clone()),
                (
                    r.location_path.as_deref(),
                    r.location_line,
                    r.component.as_deref()
                ),
                (
                    r.description.as_str(),
                    rule.description.as_deref(),
                    rule.remediation.as_deref(),
                    r.occurrences
                ),
            ),
            (
                (f.scanner.as_str(), f.rule_id.as_str(), f.title.as_str()),
                (
                    f.severity.as_str(),
                    json_list(&f.cve_ids),
                    json_list(&f.cwe_ids)
                ),
                (
                    f.location_path.as_deref(),
                    f.location_line.map(|l| l as i32),
                    f.component.as_deref()
                ),
                (
                    f.description.as_str(),
                    f.rule_description.as_deref(),
                    f.remediation.as_deref(),
                    f.occurrences as i32
                ),
            ),
            "{}",
            f.fingerprint
        );
        assert_eq!((r.org_id, r.status.as_str()), (scan.org_id, "open"));
        assert_eq!(
            (r.first_seen_at, r.last_seen_at, r.fixed_at),
            (scan.scanned_at, scan.scanned_at, None)
        );
        assert_eq!(
            (r.first_scan_id, r.last_scan_id),
            (Some(scan.id), Some(scan.id))
        );
        assert_eq!(
            (r.triage_state.as_str(), &r.triage_note, &r.triaged_by),
            ("untriaged", &None, &None)
        );
    }
}

#[tokio::test]
#[cfg_attr(not(rampart_has_samples), ignore = "needs ../shared/samples")]
async fn real_samples_ingest_into_their_documented_counts() {
    let samples = crate::support::samples_dir();
    let app = TestApp::spawn().await;
    let token = app.login_admin().await;
    for (file, expected, occurrences) in [
        ("semgrep-0.17.0-owasp-benchmark.sarif", 1768, 1768),
        ("codeql-2.5.4-output.sarif", 72, 72),
        ("semgrep-oss-1.69.0.sarif.json", 77, 77),
        ("gitleaks-7.x.sarif", 4, 8),
        ("cyclonedx-1.5-trivy-0.48.1-vulns.json", 14, 14),
        ("trivy-schema2-alpine-image.json", 29, 29),
    ] {
        let body = std::fs::read(samples.join(file)).unwrap();
        let scan = app
            .ingest_and_wait(Auth::Bearer(&token), &format!("target={file}"), body)
            .await;
        assert_eq!(scan["status"], "COMPLETE", "{file}: {scan}");
        assert_eq!(scan["counts"]["total"], expected, "{file}");
        assert_eq!(scan["findingsNew"], expected, "{file}");
        let found = entity::finding::Entity::find()
            .filter(
                entity::finding::Column::TargetId
                    .eq(uuid::Uuid::parse_str(scan["targetId"].as_str().unwrap()).unwrap()),
            )
            .all(&app.state.db)
            .await
            .unwrap();
        assert_eq!(found.len(), expected as usize, "{file}");
        assert_eq!(
            found.iter().map(|f| f.occurrences as u64).sum::<u64>(),
            occurrences,
            "{file}"
        );
    }
}

#[tokio::test]
async fn identical_reupload_changes_nothing_and_one_change_is_one_new_one_fixed() {
    let app = TestApp::spawn().await;
    let token = app.login_admin().await;
    let report = sarif("semgrep", results(0..40));

    let first = app
        .ingest_and_wait(
            Auth::Bearer(&token),
            "target=shop&target_kind=repository",
            report.clone(),
        )
        .await;
    assert_eq!(first["status"], "COMPLETE");
    assert_eq!(
        (first["findingsNew"].clone(), first["findingsFixed"].clone()),
        (json!(40), json!(0))
    );
    let target = first["targetId"].as_str().unwrap().to_string();

    // Triage one finding; it must survive every later scan.
    let any = app
        .gql(
            Auth::Bearer(&token),
            "query($t: UUID!) { findings(targetId: $t, pageSize: 1) { edges { node { id } } } }",
            json!({"t": target}),
        )
        .await;
    let triaged = any.data("findings")["edges"][0]["node"]["id"].clone();
    app.gql(
        Auth::Bearer(&token),
        "mutation($id: UUID!) { setFindingState(id: $id, input: {state: CONFIRMED}) { id } }",
        json!({"id": triaged}),
    )
    .await
    .data("setFindingState");

    let again = app
        .ingest_and_wait(
            Auth::Bearer(&token),
            "target=shop&target_kind=repository",
            report,
        )
        .await;
    assert_eq!(again["status"], "COMPLETE");
    assert_eq!(
        (
            again["findingsNew"].clone(),
            again["findingsFixed"].clone(),
            again["findingsUnchanged"].clone()
        ),
        (json!(0), json!(0), json!(40))
    );
    assert_eq!(open_findings(&app, &token, &target).await, (40, 0));

    // Result 0 replaced by result 40: one new, one fixed.
    let mut changed = results(1..40);
    changed.push(SyntheticResult::numbered(40));
    let third = app
        .ingest_and_wait(
            Auth::Bearer(&token),
            "target=shop&target_kind=repository",
            sarif("semgrep", changed),
        )
        .await;
    assert_eq!(
        (third["findingsNew"].clone(), third["findingsFixed"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(open_findings(&app, &token, &target).await, (40, 1));

    // Back again: the fixed one reopens.
    let fourth = app
        .ingest_and_wait(
            Auth::Bearer(&token),
            "target=shop&target_kind=repository",
            sarif("semgrep", results(0..40)),
        )
        .await;
    assert_eq!(
        (
            fourth["findingsNew"].clone(),
            fourth["findingsFixed"].clone()
        ),
        (json!(1), json!(1))
    );
    // Result 0 is open again (and result 40 fixed).
    assert_eq!(open_findings(&app, &token, &target).await, (40, 1));

    let still = app
        .gql(
            Auth::Bearer(&token),
            "query($id: UUID!) { finding(id: $id) { triage { state } } }",
            json!({"id": triaged}),
        )
        .await;
    assert_eq!(still.data("finding")["triage"]["state"], "CONFIRMED");

    // Moving code down keeps identities: same results two lines lower.
    let moved: Vec<_> = results(0..40)
        .into_iter()
        .map(|mut r| {
            r.line += 2;
            r
        })
        .collect();
    let fifth = app
        .ingest_and_wait(
            Auth::Bearer(&token),
            "target=shop&target_kind=repository",
            sarif("semgrep", moved),
        )
        .await;
    assert_eq!(
        (fifth["findingsNew"].clone(), fifth["findingsFixed"].clone()),
        (json!(0), json!(0))
    );
}

#[tokio::test]
async fn two_scanners_do_not_fix_each_others_findings() {
    let app = TestApp::spawn().await;
    let token = app.login_admin().await;
    let q = "target=api&target_kind=repository";
    let a = app
        .ingest_and_wait(Auth::Bearer(&token), q, sarif("semgrep", results(0..10)))
        .await;
    let b = app
        .ingest_and_wait(Auth::Bearer(&token), q, sarif("bandit", results(100..105)))
        .await;
    assert_eq!(
        (b["findingsNew"].clone(), b["findingsFixed"].clone()),
        (json!(5), json!(0))
    );
    let a2 = app
        .ingest_and_wait(Auth::Bearer(&token), q, sarif("semgrep", results(0..9)))
        .await;
    assert_eq!(
        (a2["findingsNew"].clone(), a2["findingsFixed"].clone()),
        (json!(0), json!(1))
    );
    let target = a["targetId"].as_str().unwrap();
    assert_eq!(open_findings(&app, &token, target).await, (14, 1));
}

/// A batch is written as several statements in one transaction (SQLite bounds a statement's
/// parameters): findings inserted, found and sighted across statement boundaries must come out
/// as they do for a small report.
#[tokio::test]
async fn reports_larger_than_one_statement_match_like_small_ones() {
    let app = TestApp::spawn().await;
    let token = app.login_admin().await;
    let q = "target=monorepo&target_kind=repository";
    let report = sarif("semgrep", results(0..2_500));
    let first = app
        .ingest_and_wait(Auth::Bearer(&token), q, report.clone())
        .await;
    assert_eq!(first["status"], "COMPLETE", "{first}");
    assert_eq!(
        (
            first["findingsNew"].clone(),
            first["counts"]["total"].clone()
        ),
        (json!(2_500), json!(2_500))
    );
    assert_stored_as_parsed(&app, &first, &report).await;
    // 2,400 of them again (straddling every statement boundary) and 100 never seen.
    let second = app
        .ingest_and_wait(
            Auth::Bearer(&token),
            q,
            sarif("semgrep", results(100..2_600)),
        )
        .await;
    assert_eq!(
        (
            second["findingsNew"].clone(),
            second["findingsFixed"].clone(),
            second["findingsUnchanged"].clone()
        ),
        (json!(100), json!(100), json!(2_400))
    );
    let target = first["targetId"].as_str().unwrap();
    assert_eq!(open_findings(&app, &token, target).await, (2_500, 100));
    let second_id = uuid::Uuid::parse_str(second["id"].as_str().unwrap()).unwrap();
    let sightings = entity::scan_finding::Entity::find()
        .filter(entity::scan_finding::Column::ScanId.eq(second_id))
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(sightings, 2_500);

    // Components, CVE ids and absent values land in their columns too.
    let vulnerabilities: Vec<_> = (0..1_500)
        .map(|n| {
            let severity = ["LOW", "MEDIUM", "HIGH", "CRITICAL"][n % 4];
            json!({
                "VulnerabilityID": format!("CVE-2024-{}", 10_000 + n),
                "PkgName": format!("pkg{}", n % 40),
                "InstalledVersion": "1.0",
                "FixedVersion": if n % 2 == 0 { json!("1.1") } else { json!(null) },
                "Severity": severity,
                "Title": format!("Problem {n}"),
                "PkgIdentifier": {"PURL": format!("pkg:apk/alpine/pkg{}@1.0", n % 40)}
            })
        })
        .collect();
    let trivy = serde_json::to_vec(&json!({
        "SchemaVersion": 2, "ArtifactName": "img:1", "ArtifactType": "container_image",
        "Results": [{"Target": "img:1 (alpine 3.19)", "Vulnerabilities": vulnerabilities}]
    }))
    .unwrap();
    let image = app
        .ingest_and_wait(
            Auth::Bearer(&token),
            "target=img&target_kind=container_image",
            trivy.clone(),
        )
        .await;
    assert_eq!(image["findingsNew"], 1_500, "{image}");
    assert_stored_as_parsed(&app, &image, &trivy).await;
}

#[tokio::test]
async fn idempotency_key_returns_the_first_scan_even_when_racing() {
    let app = TestApp::spawn().await;
    let key = app.create_key(&app.login_admin().await, "WRITE").await;
    let body = sarif("semgrep", results(0..3));
    let first = app
        .ingest_with(
            Auth::ApiKey(&key),
            "target=svc",
            body.clone(),
            &[("idempotency-key", "build-77")],
        )
        .await;
    assert_eq!(first.status, 202, "{}", first.body);
    let repeat = app
        .ingest_with(
            Auth::ApiKey(&key),
            "target=svc",
            body.clone(),
            &[("idempotency-key", "build-77")],
        )
        .await;
    assert_eq!(repeat.status, 200);
    assert_eq!(repeat.body["data"]["id"], first.body["data"]["id"]);

    let racers = (0..6).map(|_| {
        app.ingest_with(
            Auth::ApiKey(&key),
            "target=svc",
            body.clone(),
            &[("idempotency-key", "build-78")],
        )
    });
    let answers = futures::future::join_all(racers).await;
    let ids: std::collections::HashSet<_> = answers
        .iter()
        .map(|a| a.body["data"]["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 1, "{answers:?}");
    let scans = entity::scan::Entity::find()
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(scans, 2);
}

#[tokio::test]
async fn raw_report_comes_back_byte_for_byte_and_gzip_is_accepted() {
    let app = TestApp::spawn().await;
    let token = app.login_admin().await;
    let body = sarif("semgrep", results(0..25));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&body).unwrap();
    let compressed = gz.finish().unwrap();
    let res = app
        .ingest_with(
            Auth::Bearer(&token),
            "target=zipped",
            compressed,
            &[("content-encoding", "gzip")],
        )
        .await;
    assert_eq!(res.status, 202, "{}", res.body);
    assert_eq!(
        res.body["links"]["events"],
        format!(
            "/api/v1/scans/{}/events",
            res.body["data"]["id"].as_str().unwrap()
        )
    );
    let id = res.body["data"]["id"].as_str().unwrap().to_string();
    let scan = app.wait_scan(Auth::Bearer(&token), &id).await;
    assert_eq!(scan["counts"]["total"], 25);

    let raw = app
        .http
        .get(app.url(&format!("/api/v1/scans/{id}/raw")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 200);
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&body))
    };
    assert_eq!(raw.headers()["etag"], format!("\"{sha}\""));
    assert_eq!(raw.headers()["content-length"], body.len().to_string());
    assert_eq!(raw.bytes().await.unwrap().to_vec(), body);
    let cached = app
        .http
        .get(app.url(&format!("/api/v1/scans/{id}/raw")))
        .bearer_auth(&token)
        .header("if-none-match", format!("\"{sha}\""))
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), 304);
}

#[tokio::test]
async fn bad_reports_fail_their_scan_or_the_request_and_touch_nothing_else() {
    let mut tc = TestConfig::new().await;
    tc.config.max_upload_bytes = 64 * 1024;
    let app = TestApp::spawn_with(tc.config.clone()).await;
    let token = app.login_admin().await;
    let good = app
        .ingest_and_wait(
            Auth::Bearer(&token),
            "target=svc",
            sarif("semgrep", results(0..5)),
        )
        .await;
    let target = good["targetId"].as_str().unwrap().to_string();

    let full = sarif("semgrep", results(0..5));
    let truncated = full[..full.len() / 2].to_vec();
    let failed = app
        .ingest_and_wait(Auth::Bearer(&token), "target=svc", truncated)
        .await;
    assert_eq!(failed["status"], "FAILED");
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains("line") && error.contains("column"),
        "{error}"
    );

    let binary: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 251) as u8).collect();
    let failed = app
        .ingest_and_wait(Auth::Bearer(&token), "target=svc", binary)
        .await;
    assert_eq!(failed["status"], "FAILED");
    assert!(
        failed["error"].as_str().unwrap().contains("not JSON"),
        "{failed}"
    );

    let not_a_report = app
        .ingest_and_wait(
            Auth::Bearer(&token),
            "target=svc",
            br#"{"hello": "world"}"#.to_vec(),
        )
        .await;
    assert_eq!(not_a_report["status"], "FAILED");
    assert!(
        not_a_report["error"]
            .as_str()
            .unwrap()
            .contains("unsupported format"),
        "{not_a_report}"
    );

    // Refused outright.
    let empty = app
        .ingest(Auth::Bearer(&token), "target=svc", Vec::new())
        .await;
    assert_envelope(&empty.body, 400, "BAD_REQUEST");
    let unknown = app
        .ingest(
            Auth::Bearer(&token),
            "target=svc&format=pdf",
            b"{}".to_vec(),
        )
        .await;
    assert_envelope(&unknown.body, 415, "UNSUPPORTED_FORMAT");
    let anonymous = app
        .ingest(Auth::Bearer(&token), "", br#"{"hello": 1}"#.to_vec())
        .await;
    assert_envelope(&anonymous.body, 415, "UNSUPPORTED_FORMAT");
    let too_big = app
        .ingest(Auth::Bearer(&token), "target=svc", vec![b' '; 65 * 1024])
        .await;
    assert_envelope(&too_big.body, 413, "PAYLOAD_TOO_LARGE");
    let streamed_too_big = app
        .http
        .post(app.url("/api/v1/ingest?target=svc"))
        .bearer_auth(&token)
        .body(reqwest::Body::wrap_stream(futures::stream::iter(
            (0..20).map(|_| Ok::<_, std::io::Error>(vec![b' '; 8192])),
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(streamed_too_big.status(), 413);
    let extra = app
        .ingest(
            Auth::Bearer(&token),
            "target=svc&colour=blue",
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(extra.status, 400, "{}", extra.body);
    let unauthenticated = app.ingest(Auth::None, "target=svc", b"{}".to_vec()).await;
    assert_envelope(&unauthenticated.body, 401, "UNAUTHENTICATED");

    // The good scan's findings are as they were.
    assert_eq!(open_findings(&app, &token, &target).await, (5, 0));
    drop(tc);
}

#[tokio::test]
async fn cancelling_during_processing_leaves_no_findings() {
    let app = TestApp::spawn().await;
    let token = app.login_admin().await;
    let res = app
        .ingest(
            Auth::Bearer(&token),
            "target=big",
            sarif("semgrep", results(0..60_000)),
        )
        .await;
    let id = res.body["data"]["id"].as_str().unwrap().to_string();
    let scan_id = uuid::Uuid::parse_str(&id).unwrap();
    let sightings = || {
        entity::scan_finding::Entity::find()
            .filter(entity::scan_finding::Column::ScanId.eq(scan_id))
            .count(&app.state.db)
    };
    // Wait until the worker has written its first batches, then cancel while it runs.
    let mut written = 0;
    for _ in 0..3000 {
        written = sightings().await.unwrap();
        if written > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(written > 0, "the worker never started writing the scan");
    let cancel = app
        .gql(
            Auth::Bearer(&token),
            "mutation($id: UUID!) { cancelScan(id: $id) { status } }",
            json!({"id": id}),
        )
        .await;
    // Only a scan that has not finished can be cancelled: it was running, part-written.
    assert_eq!(
        cancel.data("cancelScan")["status"],
        "CANCELLED",
        "{}",
        cancel.body
    );
    let scan = app.wait_scan(Auth::Bearer(&token), &id).await;
    assert_eq!(scan["status"], "CANCELLED");
    // The worker notices between batches and cleans up.
    let mut left = u64::MAX;
    for _ in 0..200 {
        let sightings = sightings().await.unwrap();
        let findings = entity::finding::Entity::find()
            .count(&app.state.db)
            .await
            .unwrap();
        left = sightings + findings;
        let job_done = entity::job::Entity::find()
            .filter(entity::job::Column::ScanId.eq(scan_id))
            .one(&app.state.db)
            .await
            .unwrap()
            .is_some_and(|j| j.status == "done");
        if left == 0 && job_done {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(left, 0, "half-written findings remain");
}

#[tokio::test]
async fn graphql_multipart_upload_queues_a_scan() {
    let app = TestApp::spawn().await;
    let token = app.login_admin().await;
    let operations = json!({
        "query": "mutation($file: Upload!) { ingestReport(file: $file, target: \"gql-upload\", targetKind: REPOSITORY) { id status } }",
        "variables": {"file": null}
    });
    let form = reqwest::multipart::Form::new()
        .text("operations", operations.to_string())
        .text("map", json!({"0": ["variables.file"]}).to_string())
        .part(
            "0",
            reqwest::multipart::Part::bytes(sarif("semgrep", results(0..7)))
                .file_name("report.sarif"),
        );
    let res: serde_json::Value = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let scan = &res["data"]["ingestReport"];
    assert_eq!(scan["status"], "QUEUED", "{res}");
    let done = app
        .wait_scan(Auth::Bearer(&token), scan["id"].as_str().unwrap())
        .await;
    assert_eq!(done["counts"]["total"], 7);
}

/// Bandit reports `if t == "dot" or t == "lbracket":` as B105 twice, once per string: two
/// findings, kept apart across uploads; an identical result is one finding seen twice.
#[tokio::test]
async fn one_rule_on_one_line_with_two_messages_is_stored_as_two_findings() {
    let app = TestApp::spawn().await;
    let token = app.login_admin().await;
    let result = |line: u32, code: &str, message: &str| {
        json!({
            "ruleId": "B105", "ruleIndex": 0, "level": "note",
            "message": {"text": message},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": "lib/tokenizer.py"},
                "region": {"startLine": line, "endLine": line, "snippet": {"text": code}}
            }}]
        })
    };
    let compare = "        if t == \"dot\" or t == \"lbracket\":\n";
    let report = serde_json::to_vec(&json!({
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "Bandit", "rules": [{"id": "B105", "name": "hardcoded_password_string"}]}},
            "results": [
                result(88, compare, "Possible hardcoded password: 'dot'"),
                result(88, compare, "Possible hardcoded password: 'lbracket'"),
                result(88, compare, "Possible hardcoded password: 'dot'")
            ]
        }]
    }))
    .unwrap();
    let q = "target=tokenizer&target_kind=repository";
    let first = app
        .ingest_and_wait(Auth::Bearer(&token), q, report.clone())
        .await;
    assert_eq!(first["status"], "COMPLETE", "{first}");
    assert_eq!(
        (
            first["findingsNew"].clone(),
            first["counts"]["total"].clone()
        ),
        (json!(2), json!(2))
    );
    assert_stored_as_parsed(&app, &first, &report).await;
    let target = uuid::Uuid::parse_str(first["targetId"].as_str().unwrap()).unwrap();
    let mut stored: Vec<(String, i32)> = entity::finding::Entity::find()
        .filter(entity::finding::Column::TargetId.eq(target))
        .all(&app.state.db)
        .await
        .unwrap()
        .into_iter()
        .map(|f| (f.description, f.occurrences))
        .collect();
    stored.sort();
    assert_eq!(
        stored,
        vec![
            ("Possible hardcoded password: 'dot'".to_string(), 2),
            ("Possible hardcoded password: 'lbracket'".to_string(), 1)
        ]
    );

    let again = app.ingest_and_wait(Auth::Bearer(&token), q, report).await;
    assert_eq!(again["status"], "COMPLETE", "{again}");
    assert_eq!(
        (
            again["findingsNew"].clone(),
            again["findingsFixed"].clone(),
            again["findingsUnchanged"].clone()
        ),
        (json!(0), json!(0), json!(2))
    );
    assert_eq!(
        open_findings(&app, &token, first["targetId"].as_str().unwrap()).await,
        (2, 0)
    );
}
