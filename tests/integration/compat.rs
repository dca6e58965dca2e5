//! What the seed products' clients expect of the REST layer: report target metadata shown on
//! the target (KafkaGuard's `bootstrap_servers`), `meta` and `links` on every list, API key
//! scopes as one value or a list.

use reqwest::Method as M;
use serde_json::{json, Value};

use crate::support::{Auth, TestApp};

async fn call(app: &TestApp, token: &str, method: M, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = app.http.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.expect("request");
    let status = res.status().as_u16();
    let text = res.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
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
    let (_, page) = call(app, token, M::GET, "/api/v1/audit-events?action=target.metadata_update", None).await;
    page["data"].as_array().expect("a list").clone()
}

#[tokio::test]
async fn report_target_metadata_is_stored_on_the_target() {
    let app = TestApp::spawn().await;
    let token = app.login_admin().await;
    let first = app
        .ingest_and_wait(Auth::Bearer(&token), "", kafkaguard(json!({"bootstrap_servers": "kafka1:9092,kafka2:9092"})))
        .await;
    assert_eq!(first["status"], "COMPLETE", "{first}");
    let cluster = first["targetId"].as_str().unwrap().to_string();

    let (status, clusters) = call(&app, &token, M::GET, "/api/v1/clusters", None).await;
    assert_eq!(status, 200);
    assert_eq!(clusters["data"][0]["bootstrap_servers"], "kafka1:9092,kafka2:9092", "{clusters}");
    let updates = metadata_updates(&app, &token).await;
    assert_eq!(updates.len(), 1, "{updates:#?}");
    assert_eq!(updates[0]["resource_id"], cluster.as_str());
    assert_eq!(updates[0]["details"]["scan_id"], first["id"]);
    assert_eq!(updates[0]["actor"], crate::support::ADMIN_EMAIL);

    // An edit adds a key; the next report replaces the keys it carries and keeps the others.
    let (status, _) = call(&app, &token, M::PATCH, &format!("/api/v1/clusters/{cluster}"),
        Some(json!({"metadata": {"bootstrap_servers": "kafka1:9092,kafka2:9092", "owner": "platform"}}))).await;
    assert_eq!(status, 200);
    app.ingest_and_wait(Auth::Bearer(&token), "", kafkaguard(json!({"bootstrap_servers": "kafka3:9092", "version": "3.7"})))
        .await;
    let (_, one) = call(&app, &token, M::GET, &format!("/api/v1/clusters/{cluster}"), None).await;
    assert_eq!(one["data"]["bootstrap_servers"], "kafka3:9092");
    assert_eq!(one["data"]["metadata"], json!({"bootstrap_servers": "kafka3:9092", "owner": "platform", "version": "3.7"}));
    let updates = metadata_updates(&app, &token).await;
    assert_eq!(updates.len(), 2);
    assert_eq!(updates[0]["details"]["metadata"]["bootstrap_servers"], json!({"from": "kafka1:9092,kafka2:9092", "to": "kafka3:9092"}));

    // The same facts again change nothing and add nothing to the log; a report without
    // metadata leaves it as it is.
    app.ingest_and_wait(Auth::Bearer(&token), "", kafkaguard(json!({"bootstrap_servers": "kafka3:9092"})))
        .await;
    app.ingest_and_wait(Auth::Bearer(&token), "", kafkaguard(Value::Null)).await;
    assert_eq!(metadata_updates(&app, &token).await.len(), 2);
    let (_, one) = call(&app, &token, M::GET, &format!("/api/v1/clusters/{cluster}"), None).await;
    assert_eq!(one["data"]["bootstrap_servers"], "kafka3:9092");
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
        let (status, body) = call(&app, &token, M::POST, "/api/v1/api-keys", Some(json!({"label": "ci", "scopes": scopes}))).await;
        assert_eq!(status, 201, "{scopes}: {body}");
        assert_eq!(body["data"]["api_key"]["scopes"], expected, "{scopes}");
    }
    let (status, body) = call(&app, &token, M::POST, "/api/v1/api-keys", Some(json!({"label": "ci", "scopes": []}))).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["details"][0]["field"], "scopes");
    let (status, body) = call(&app, &token, M::POST, "/api/v1/api-keys", Some(json!({"label": "ci", "scopes": ["admin"]}))).await;
    assert_eq!(status, 422, "{body}");
    let listed = app
        .gql(Auth::Bearer(&token), "mutation { a: createApiKey(input: {label: \"a\", scopes: [WRITE]}) { apiKey { scopes } } b: createApiKey(input: {label: \"b\", scopes: READ}) { apiKey { scopes } } }", json!({}))
        .await;
    assert_eq!(listed.data("a")["apiKey"]["scopes"], "WRITE");
    assert_eq!(listed.data("b")["apiKey"]["scopes"], "READ");
}
