//! The REST rows of the domain (targets, clusters, scans, findings, trends) over HTTP.

use rampart::ingest::synthetic::{sarif, SyntheticResult};
use serde_json::{json, Value};

use crate::support::{Auth, TestApp};

async fn call(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app.http.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn domain_rows_answer_in_the_contract_shape() {
    use reqwest::Method as M;
    let app = TestApp::spawn().await;
    let token = app.login_admin().await;
    let report = sarif("semgrep", (0..30).map(SyntheticResult::numbered));
    let first = app
        .ingest_and_wait(
            Auth::Bearer(&token),
            "target=prod-us&target_kind=kafka_cluster",
            report,
        )
        .await;
    let second = app
        .ingest_and_wait(
            Auth::Bearer(&token),
            "target=prod-us&target_kind=kafka_cluster",
            sarif("semgrep", (1..31).map(SyntheticResult::numbered)),
        )
        .await;
    let other = app
        .ingest_and_wait(
            Auth::Bearer(&token),
            "target=web&target_kind=repository",
            sarif("semgrep", (0..3).map(SyntheticResult::numbered)),
        )
        .await;
    let (a, b) = (
        first["id"].as_str().unwrap(),
        second["id"].as_str().unwrap(),
    );
    let cluster = first["targetId"].as_str().unwrap();
    let repo = other["targetId"].as_str().unwrap();

    let (status, scans) = call(&app, &token, M::GET, "/api/v1/scans?page_size=2", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        scans["meta"],
        json!({"total": 3, "page": 1, "page_size": 2, "total_pages": 2})
    );
    assert_eq!(scans["data"][0]["status"], "complete");
    assert!(scans["links"]["next"].as_str().unwrap().contains("page=2"));
    let (_, filtered) = call(
        &app,
        &token,
        M::GET,
        &format!("/api/v1/scans?target_id={cluster}&status=complete&status=failed"),
        None,
    )
    .await;
    assert_eq!(filtered["meta"]["total"], 2);

    let (status, scan) = call(&app, &token, M::GET, &format!("/api/v1/scans/{b}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(scan["data"]["findings_new"], 1);
    assert_eq!(scan["data"]["target"]["kind"], "kafka_cluster");
    let (_, summary) = call(
        &app,
        &token,
        M::GET,
        &format!("/api/v1/scans/{b}/summary"),
        None,
    )
    .await;
    assert_eq!(
        (
            summary["data"]["findings_new"].clone(),
            summary["data"]["findings_fixed"].clone()
        ),
        (json!(1), json!(1))
    );
    let (_, seen) = call(
        &app,
        &token,
        M::GET,
        &format!("/api/v1/scans/{b}/findings?page_size=5&page=6"),
        None,
    )
    .await;
    assert_eq!(seen["meta"]["total"], 30);
    assert_eq!(seen["data"].as_array().unwrap().len(), 5);
    let (status, compare) = call(
        &app,
        &token,
        M::GET,
        &format!("/api/v1/scans/compare?scan_a={a}&scan_b={b}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{compare}");
    assert_eq!(compare["data"]["new"].as_array().unwrap().len(), 1);
    assert_eq!(compare["data"]["fixed"].as_array().unwrap().len(), 1);
    assert_eq!(compare["data"]["unchanged"].as_array().unwrap().len(), 29);
    let (status, _) = call(
        &app,
        &token,
        M::POST,
        &format!("/api/v1/scans/{b}/cancel"),
        None,
    )
    .await;
    assert_eq!(status, 409);

    // Findings: list with repeated keys, one, triage, comments; same answer as GraphQL.
    let (_, rest) = call(&app, &token, M::GET, &format!("/api/v1/findings?target_id={cluster}&severity=high&severity=medium&status=open&page_size=100"), None).await;
    let gql = app
        .gql(Auth::Bearer(&token), "query($t: UUID!) { findings(targetId: $t, severity: [HIGH, MEDIUM], status: OPEN, pageSize: 100) { totalCount edges { node { id ruleId severity } } } }", json!({"t": cluster}))
        .await;
    assert_eq!(rest["meta"]["total"], gql.data("findings")["totalCount"]);
    for (r, g) in rest["data"]
        .as_array()
        .unwrap()
        .iter()
        .zip(gql.data("findings")["edges"].as_array().unwrap())
    {
        assert_eq!(r["id"], g["node"]["id"]);
        assert_eq!(r["rule_id"], g["node"]["ruleId"]);
        assert_eq!(
            r["severity"].as_str().unwrap(),
            g["node"]["severity"].as_str().unwrap().to_lowercase()
        );
    }
    let finding = rest["data"][0]["id"].as_str().unwrap().to_string();
    let (status, triaged) = call(
        &app,
        &token,
        M::PATCH,
        &format!("/api/v1/findings/{finding}/state"),
        Some(json!({"state": "false_positive", "note": "test data"})),
    )
    .await;
    assert_eq!(status, 200, "{triaged}");
    assert_eq!(triaged["data"]["triage"]["state"], "false_positive");
    let (status, _) = call(
        &app,
        &token,
        M::PATCH,
        &format!("/api/v1/findings/{finding}/state"),
        Some(json!({"state": "accepted_risk"})),
    )
    .await;
    assert_eq!(status, 422);
    let (status, comment) = call(
        &app,
        &token,
        M::POST,
        &format!("/api/v1/findings/{finding}/comments"),
        Some(json!({"body": "seen"})),
    )
    .await;
    assert_eq!(status, 201);
    let comment_id = comment["data"]["id"].as_str().unwrap();
    let (_, comments) = call(
        &app,
        &token,
        M::GET,
        &format!("/api/v1/findings/{finding}/comments"),
        None,
    )
    .await;
    assert_eq!(comments["data"][0]["body"], "seen");
    let (status, _) = call(
        &app,
        &token,
        M::DELETE,
        &format!(
            "/api/v1/findings/{}/comments/{comment_id}",
            uuid::Uuid::now_v7()
        ),
        None,
    )
    .await;
    assert_eq!(status, 404, "a comment is deleted only under its finding");
    let (status, _) = call(
        &app,
        &token,
        M::DELETE,
        &format!("/api/v1/findings/{finding}/comments/{comment_id}"),
        None,
    )
    .await;
    assert_eq!(status, 204);

    // Targets and the KafkaGuard cluster view.
    let (_, targets) = call(
        &app,
        &token,
        M::GET,
        "/api/v1/targets?kind=repository",
        None,
    )
    .await;
    assert_eq!(targets["meta"]["total"], 1);
    let (status, patched) = call(
        &app,
        &token,
        M::PATCH,
        &format!("/api/v1/clusters/{cluster}"),
        Some(json!({"name": "prod-us-east", "metadata": {"bootstrap_servers": "k1:9092"}})),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["data"]["bootstrap_servers"], "k1:9092");
    let (_, clusters) = call(&app, &token, M::GET, "/api/v1/clusters", None).await;
    assert_eq!(clusters["data"][0]["name"], "prod-us-east");
    assert!(clusters["data"][0]["last_score"].is_number());
    let (status, _) = call(
        &app,
        &token,
        M::GET,
        &format!("/api/v1/clusters/{repo}"),
        None,
    )
    .await;
    assert_eq!(status, 404, "a repository is not a cluster");

    // Trends: `compare` is routed before `{target_id}`.
    let (status, fleet) = call(
        &app,
        &token,
        M::GET,
        "/api/v1/trends/compare?period=7d",
        None,
    )
    .await;
    assert_eq!(status, 200, "{fleet}");
    assert_eq!(fleet["data"].as_array().unwrap().len(), 2);
    let (_, trend) = call(
        &app,
        &token,
        M::GET,
        &format!("/api/v1/trends/{cluster}"),
        None,
    )
    .await;
    assert_eq!(trend["data"].as_array().unwrap().len(), 2);
    let (status, _) = call(
        &app,
        &token,
        M::GET,
        &format!("/api/v1/trends/{cluster}?period=2w"),
        None,
    )
    .await;
    assert_eq!(status, 422);

    let (status, _) = call(&app, &token, M::DELETE, &format!("/api/v1/scans/{a}"), None).await;
    assert_eq!(status, 204);
    let (status, _) = call(
        &app,
        &token,
        M::DELETE,
        &format!("/api/v1/targets/{repo}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = call(
        &app,
        &token,
        M::GET,
        &format!("/api/v1/targets/{repo}"),
        None,
    )
    .await;
    assert_eq!(status, 404);
}
