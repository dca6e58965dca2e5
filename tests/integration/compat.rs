//! What the seed products' clients expect of the REST layer: report target metadata shown on
//! the target (KafkaGuard's `bootstrap_servers`), `meta` and `links` on every list, API key
//! scopes as one value or a list.

use reqwest::Method as M;
use serde_json::{json, Value};

use crate::support::{Auth, TestApp};

async fn call(
    app: &TestApp,
    token: &str,
    method: M,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app.http.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.expect("request");
    let status = res.status().as_u16();
    let text = res.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A KafkaGuard scan in the native format, carrying the cluster's metadata.
fn kafkaguard(metadata: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "rampart_report": "1",
        "target": {"name": "prod-us", "kind": "kafka_cluster", "metadata": metadata},
        "scanner": {"name": "kafkaguard", "version": "2.3.0"},
        "policy_tier": "enterprise-default",
        "checks": [
            {"id": "KG-001", "title": "TLS on client listeners", "status": "pass", "severity": "high"},
            {"id": "KG-014", "title": "Anonymous access disabled", "status": "fail", "severity": "critical", "resource": "broker/1"}
        ]
    }))
    .unwrap()
}

async fn metadata_updates(app: &TestApp, token: &str) -> Vec<Value> {
    let (_, page) = call(
        app,
        token,
        M::GET,
        "/api/v1/audit-events?action=target.metadata_update",
        None,
    )
    .await;
    page["data"].as_array().expect("a list").clone()
}

#[tokio::test]
async fn report_target_metadata_is_stored_on_the_target() {
    let app = TestApp::spawn().await;
    let token = app.login_admin().await;
    let first = app
        .ingest_and_wait(
            Auth::Bearer(&token),
            "",
            kafkaguard(json!({"bootstrap_servers": "kafka1:9092,kafka2:9092"})),
        )
        .await;
    assert_eq!(first["status"], "COMPLETE", "{first}");
    let cluster = first["targetId"].as_str().unwrap().to_string();

    let (status, clusters) = call(&app, &token, M::GET, "/api/v1/clusters", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        clusters["data"][0]["bootstrap_servers"], "kafka1:9092,kafka2:9092",
        "{clusters}"
    );
    let updates = metadata_updates(&app, &token).await;
    assert_eq!(updates.len(), 1, "{updates:#?}");
    assert_eq!(updates[0]["resource_id"], cluster.as_str());
    assert_eq!(updates[0]["details"]["scan_id"], first["id"]);
    assert_eq!(updates[0]["actor"], crate::support::ADMIN_EMAIL);

    // An edit adds a key; the next report replaces the keys it carries and keeps the others.
    let (status, _) = call(&app, &token, M::PATCH, &format!("/api/v1/clusters/{cluster}"),
        Some(json!({"metadata": {"bootstrap_servers": "kafka1:9092,kafka2:9092", "owner": "platform"}}))).await;
    assert_eq!(status, 200);
    app.ingest_and_wait(
        Auth::Bearer(&token),
        "",
        kafkaguard(json!({"bootstrap_servers": "kafka3:9092", "version": "3.7"})),
    )
    .await;
    let (_, one) = call(
        &app,
        &token,
        M::GET,
        &format!("/api/v1/clusters/{cluster}"),
        None,
    )
    .await;
    assert_eq!(one["data"]["bootstrap_servers"], "kafka3:9092");
    assert_eq!(
        one["data"]["metadata"],
        json!({"bootstrap_servers": "kafka3:9092", "owner": "platform", "version": "3.7"})
    );
    let updates = metadata_updates(&app, &token).await;
    assert_eq!(updates.len(), 2);
    assert_eq!(
        updates[0]["details"]["metadata"]["bootstrap_servers"],
        json!({"from": "kafka1:9092,kafka2:9092", "to": "kafka3:9092"})
    );

    // The same facts again change nothing and add nothing to the log; a report without
    // metadata leaves it as it is.
    app.ingest_and_wait(
        Auth::Bearer(&token),
        "",
        kafkaguard(json!({"bootstrap_servers": "kafka3:9092"})),
    )
    .await;
    app.ingest_and_wait(Auth::Bearer(&token), "", kafkaguard(Value::Null))
        .await;
    assert_eq!(metadata_updates(&app, &token).await.len(), 2);
    let (_, one) = call(
        &app,
        &token,
        M::GET,
        &format!("/api/v1/clusters/{cluster}"),
        None,
    )
    .await;
    assert_eq!(one["data"]["bootstrap_servers"], "kafka3:9092");
}

/// The latest scan wins: a report whose scan completes behind a later one of the same target
/// (an older upload that finished late) leaves the target's metadata alone.
#[tokio::test]
async fn a_report_behind_the_latest_scan_changes_no_metadata() {
    let app = TestApp::spawn().await;
    let token = app.login_admin().await;
    let db = &app.state.db;
    let org = crate::support::builders::org_id(db, "default").await;
    let cluster =
        crate::support::builders::target(db, org, "kafka_cluster", "prod-us", json!({})).await;
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    crate::support::builders::scan(db, &cluster, "complete", later, Some(80.0)).await;

    let behind = app
        .ingest_and_wait(
            Auth::Bearer(&token),
            "",
            kafkaguard(json!({"bootstrap_servers": "old:9092"})),
        )
        .await;
    assert_eq!(behind["status"], "COMPLETE", "{behind}");
    assert_eq!(behind["targetId"], cluster.id.to_string());
    let (_, one) = call(
        &app,
        &token,
        M::GET,
        &format!("/api/v1/clusters/{}", cluster.id),
        None,
    )
    .await;
    assert_eq!(one["data"]["metadata"], json!({}), "{one}");
    assert!(one["data"]["bootstrap_servers"].is_null());
    assert!(metadata_updates(&app, &token).await.is_empty());
}

#[tokio::test]
async fn api_key_scopes_are_one_value_or_a_list() {
    let app = TestApp::spawn().await;
    let token = app.login_admin().await;
    for (scopes, expected) in [
        (json!("write"), "write"),
        (json!(["write"]), "write"),
        (json!(["read"]), "read"),
        (json!(["read", "write"]), "write"),
    ] {
        let (status, body) = call(
            &app,
            &token,
            M::POST,
            "/api/v1/api-keys",
            Some(json!({"label": "ci", "scopes": scopes})),
        )
        .await;
        assert_eq!(status, 201, "{scopes}: {body}");
        assert_eq!(body["data"]["api_key"]["scopes"], expected, "{scopes}");
    }
    let (status, body) = call(
        &app,
        &token,
        M::POST,
        "/api/v1/api-keys",
        Some(json!({"label": "ci", "scopes": []})),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["details"][0]["field"], "scopes");
    let (status, body) = call(
        &app,
        &token,
        M::POST,
        "/api/v1/api-keys",
        Some(json!({"label": "ci", "scopes": ["admin"]})),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let listed = app
        .gql(Auth::Bearer(&token), "mutation { a: createApiKey(input: {label: \"a\", scopes: [WRITE]}) { apiKey { scopes } } b: createApiKey(input: {label: \"b\", scopes: READ}) { apiKey { scopes } } }", json!({}))
        .await;
    assert_eq!(listed.data("a")["apiKey"]["scopes"], "WRITE");
    assert_eq!(listed.data("b")["apiKey"]["scopes"], "READ");
}

fn assert_list(body: &Value, total: u64, len: usize, what: &str) {
    assert_eq!(body["meta"]["total"], total, "{what}: {body}");
    assert_eq!(
        body["data"].as_array().map(Vec::len),
        Some(len),
        "{what}: {body}"
    );
    for link in ["self", "first", "last"] {
        assert!(
            body["links"][link].is_string(),
            "{what}: links.{link} in {body}"
        );
    }
}

/// The lists that answered `{data: [...]}` alone now page like every other, and the
/// comparison pages its three lists together.
#[tokio::test]
async fn every_list_answers_with_meta_and_links() {
    let app = TestApp::spawn().await;
    let token = app.login_admin().await;
    use rampart::ingest::synthetic::{sarif, SyntheticResult};
    let a = app
        .ingest_and_wait(
            Auth::Bearer(&token),
            "target=web&target_kind=repository",
            sarif("semgrep", (0..7).map(SyntheticResult::numbered)),
        )
        .await;
    let b = app
        .ingest_and_wait(
            Auth::Bearer(&token),
            "target=web&target_kind=repository",
            sarif("semgrep", (2..12).map(SyntheticResult::numbered)),
        )
        .await;
    let (a, b, target) = (
        a["id"].as_str().unwrap(),
        b["id"].as_str().unwrap(),
        b["targetId"].as_str().unwrap(),
    );
    app.ingest_and_wait(
        Auth::Bearer(&token),
        "target=api&target_kind=repository",
        sarif("semgrep", (0..1).map(SyntheticResult::numbered)),
    )
    .await;

    // Organizations.
    let (status, _) = call(
        &app,
        &token,
        M::POST,
        "/api/v1/organizations",
        Some(json!({"name": "Globex"})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, orgs) = call(
        &app,
        &token,
        M::GET,
        "/api/v1/organizations?page_size=1",
        None,
    )
    .await;
    assert_eq!(status, 200, "{orgs}");
    assert_list(&orgs, 2, 1, "organizations");
    assert_eq!(orgs["meta"]["total_pages"], 2);
    assert!(orgs["links"]["next"].as_str().unwrap().contains("page=2"));

    // Comments.
    let (_, findings) = call(
        &app,
        &token,
        M::GET,
        &format!("/api/v1/findings?target_id={target}&page_size=1"),
        None,
    )
    .await;
    let finding = findings["data"][0]["id"].as_str().unwrap().to_string();
    for i in 0..3 {
        let (status, _) = call(
            &app,
            &token,
            M::POST,
            &format!("/api/v1/findings/{finding}/comments"),
            Some(json!({"body": format!("note {i}")})),
        )
        .await;
        assert_eq!(status, 201);
    }
    let (_, comments) = call(
        &app,
        &token,
        M::GET,
        &format!("/api/v1/findings/{finding}/comments?page=2&page_size=2"),
        None,
    )
    .await;
    assert_list(&comments, 3, 1, "comments");
    assert_eq!(
        comments["data"][0]["body"], "note 2",
        "oldest first: {comments}"
    );
    assert!(comments["links"]["prev"].is_string() && comments["links"]["next"].is_null());

    // Trends, per target and across the fleet.
    let (_, trend) = call(
        &app,
        &token,
        M::GET,
        &format!("/api/v1/trends/{target}?page_size=1"),
        None,
    )
    .await;
    assert_list(&trend, 2, 1, "target trend");
    assert_eq!(trend["data"][0]["scan_id"], a, "oldest first");
    let (_, fleet) = call(
        &app,
        &token,
        M::GET,
        "/api/v1/trends/compare?page_size=1&page=2",
        None,
    )
    .await;
    assert_list(&fleet, 2, 1, "fleet comparison");
    assert_eq!(fleet["data"][0]["name"], "web", "by name");

    // The comparison: 2 fixed, 5 unchanged, 5 new; pages of 2.
    let (status, page) = call(
        &app,
        &token,
        M::GET,
        &format!("/api/v1/scans/compare?scan_a={a}&scan_b={b}&page_size=2&page=3"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["data"]["new"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["data"]["fixed"].as_array().unwrap().len(), 0);
    assert_eq!(page["data"]["unchanged"].as_array().unwrap().len(), 1);
    assert_eq!(
        page["meta"]["new"],
        json!({"total": 5, "page": 3, "page_size": 2, "total_pages": 3})
    );
    assert_eq!(
        page["meta"]["fixed"],
        json!({"total": 2, "page": 3, "page_size": 2, "total_pages": 1})
    );
    assert_eq!(page["meta"]["unchanged"]["total"], 5);
    assert!(
        page["links"]["next"].is_null(),
        "page 3 is the longest list's last: {page}"
    );
    assert!(page["links"]["prev"].as_str().unwrap().contains("page=2"));
    assert!(page["links"]["self"]
        .as_str()
        .unwrap()
        .contains(&format!("scan_a={a}")));
    // Walking the pages visits each finding of each list once.
    let mut seen = std::collections::HashSet::new();
    for n in 1..=3 {
        let (_, page) = call(
            &app,
            &token,
            M::GET,
            &format!("/api/v1/scans/compare?scan_a={a}&scan_b={b}&page_size=2&page={n}"),
            None,
        )
        .await;
        for list in ["new", "fixed", "unchanged"] {
            for f in page["data"][list].as_array().unwrap() {
                assert!(
                    seen.insert((list, f["id"].as_str().unwrap().to_string())),
                    "{list} twice"
                );
            }
        }
    }
    assert_eq!(seen.len(), 12);
}
