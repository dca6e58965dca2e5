//! The audit log over REST: every change lands in it, `GET /api/v1/audit-events` lists and
//! filters it, and the export streams it whole as CSV or JSON.

use chrono::{Duration, Utc};
use rampart::ingest::synthetic::{sarif, SyntheticResult};
use reqwest::Method as M;
use sea_orm::{ActiveModelTrait, Set};
use serde_json::{json, Value};

use crate::support::{builders, Auth, TestApp, ADMIN_EMAIL, MEMBER_PASSWORD};

/// A REST call: status and body (JSON when it parses, else the text as a string).
async fn call(
    app: &TestApp,
    auth: Auth<'_>,
    method: M,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let (status, _, text) = call_text(app, auth, method, path, body).await;
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn call_text(
    app: &TestApp,
    auth: Auth<'_>,
    method: M,
    path: &str,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut req = app.http.request(method, app.url(path));
    req = match auth {
        Auth::None => req,
        Auth::Bearer(token) => req.bearer_auth(token),
        Auth::ApiKey(key) => req.header("x-api-key", key),
    };
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.expect("request");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, headers, res.text().await.expect("body"))
}

/// `(action, resource_id)` of every event the list shows under `query`.
async fn events(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let (status, page) = call(
        app,
        Auth::Bearer(token),
        M::GET,
        &format!("/api/v1/audit-events?page_size=500&{query}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    page["data"].as_array().expect("a list").clone()
}

fn has(events: &[Value], action: &str, resource_id: &str) -> bool {
    events
        .iter()
        .any(|e| e["action"] == action && e["resource_id"] == resource_id)
}

#[tokio::test]
async fn every_change_is_audited_and_listed_with_filters() {
    let app = TestApp::spawn().await;
    let token = app.login_admin().await;
    let admin = Auth::Bearer(&token);

    // Keys.
    let (status, key) = call(
        &app,
        admin,
        M::POST,
        "/api/v1/api-keys",
        Some(json!({"label": "ci", "scopes": "write"})),
    )
    .await;
    assert_eq!(status, 201, "{key}");
    let key_id = key["data"]["api_key"]["id"].as_str().unwrap().to_string();
    let key_secret = key["data"]["key"].as_str().unwrap().to_string();
    // Uploads (by the key), the target they create, and its scan.
    let scan = app
        .ingest_and_wait(
            Auth::ApiKey(&key_secret),
            "target=web&target_kind=repository",
            sarif("semgrep", (0..2).map(SyntheticResult::numbered)),
        )
        .await;
    let scan_id = scan["id"].as_str().unwrap().to_string();
    let target_id = scan["targetId"].as_str().unwrap().to_string();
    let (status, _) = call(
        &app,
        admin,
        M::DELETE,
        &format!("/api/v1/api-keys/{key_id}"),
        None,
    )
    .await;
    assert_eq!(status, 204);

    // Target updates.
    let (status, patched) = call(
        &app,
        admin,
        M::PATCH,
        &format!("/api/v1/targets/{target_id}"),
        Some(json!({"name": "web-app", "labels": {"team": "blue"}})),
    )
    .await;
    assert_eq!(status, 200, "{patched}");

    // Triage and comments.
    let (_, findings) = call(
        &app,
        admin,
        M::GET,
        &format!("/api/v1/findings?target_id={target_id}"),
        None,
    )
    .await;
    let finding = findings["data"][0]["id"].as_str().unwrap().to_string();
    let (status, _) = call(
        &app,
        admin,
        M::PATCH,
        &format!("/api/v1/findings/{finding}/state"),
        Some(json!({"state": "confirmed"})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, comment) = call(
        &app,
        admin,
        M::POST,
        &format!("/api/v1/findings/{finding}/comments"),
        Some(json!({"body": "looking"})),
    )
    .await;
    assert_eq!(status, 201);
    let comment_id = comment["data"]["id"].as_str().unwrap().to_string();
    let (status, _) = call(
        &app,
        admin,
        M::DELETE,
        &format!("/api/v1/findings/{finding}/comments/{comment_id}"),
        None,
    )
    .await;
    assert_eq!(status, 204);

    // Cancel and delete: a queued scan that no worker holds (written straight, without a job).
    let db = &app.state.db;
    let org = builders::org_id(db, "default").await;
    let other = builders::target(db, org, "repository", "api", json!({})).await;
    let queued = builders::scan(db, &other, "queued", Utc::now(), None).await;
    let queued_id = queued.id.to_string();
    let (status, cancelled) = call(
        &app,
        admin,
        M::POST,
        &format!("/api/v1/scans/{queued_id}/cancel"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{cancelled}");
    let (status, _) = call(
        &app,
        admin,
        M::DELETE,
        &format!("/api/v1/scans/{queued_id}"),
        None,
    )
    .await;
    assert_eq!(status, 204);

    // Members.
    let member = app.add_member(&token, "dana@example.com", "MEMBER").await;
    let changed = app
        .gql(
            admin,
            "mutation($id: UUID!) { updateUser(id: $id, input: {role: VIEWER}) { id } }",
            json!({"id": member}),
        )
        .await;
    changed.data("updateUser");
    let (status, _) = call(
        &app,
        admin,
        M::DELETE,
        &format!("/api/v1/users/{member}"),
        None,
    )
    .await;
    assert_eq!(status, 204);

    let all = events(&app, &token, "").await;
    for (action, id) in [
        ("api_key.create", key_id.as_str()),
        ("api_key.revoke", key_id.as_str()),
        ("target.create", target_id.as_str()),
        ("scan.upload", scan_id.as_str()),
        ("target.update", target_id.as_str()),
        ("finding.triage", finding.as_str()),
        ("comment.create", comment_id.as_str()),
        ("comment.delete", comment_id.as_str()),
        ("scan.cancel", queued_id.as_str()),
        ("scan.delete", queued_id.as_str()),
        ("member.role_change", member.as_str()),
        ("member.remove", member.as_str()),
    ] {
        assert!(
            has(&all, action, id),
            "{action} on {id} is not in the audit log: {all:#?}"
        );
    }
    let upload = all.iter().find(|e| e["action"] == "scan.upload").unwrap();
    assert_eq!(upload["actor"], "api-key:ci");
    assert_eq!(upload["actor_api_key_id"], key_id.as_str());
    assert_eq!(upload["details"]["target_id"], target_id.as_str());
    let update = all.iter().find(|e| e["action"] == "target.update").unwrap();
    assert_eq!(
        update["details"]["name"],
        json!({"from": "web", "to": "web-app"})
    );
    assert_eq!(update["actor"], ADMIN_EMAIL);

    // Filters: action, resource type, actor (label or id), time range; and the list envelope.
    let (_, page) = call(
        &app,
        admin,
        M::GET,
        "/api/v1/audit-events?action=scan.upload",
        None,
    )
    .await;
    assert_eq!(page["meta"]["total"], 1, "{page}");
    assert!(page["links"]["self"]
        .as_str()
        .unwrap()
        .contains("action=scan.upload"));
    let comments = events(&app, &token, "resource_type=comment").await;
    assert_eq!(comments.len(), 2, "{comments:#?}");
    let by_key = events(&app, &token, &format!("actor={key_id}")).await;
    assert!(
        !by_key.is_empty()
            && by_key
                .iter()
                .all(|e| e["actor_api_key_id"] == key_id.as_str()),
        "{by_key:#?}"
    );
    let by_label = events(&app, &token, "actor=api-key:ci").await;
    assert_eq!(by_label.len(), by_key.len());
    let by_admin = events(&app, &token, &format!("actor={ADMIN_EMAIL}")).await;
    assert!(by_admin.iter().all(|e| e["actor"] == ADMIN_EMAIL));
    assert!(has(&by_admin, "target.update", &target_id));
    let later =
        (Utc::now() + Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let earlier =
        (Utc::now() - Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert!(events(&app, &token, &format!("since={later}"))
        .await
        .is_empty());
    assert_eq!(
        events(&app, &token, &format!("since={earlier}&until={later}"))
            .await
            .len(),
        all.len()
    );
    assert!(events(&app, &token, &format!("until={earlier}"))
        .await
        .is_empty());
    let (status, bad) = call(
        &app,
        admin,
        M::GET,
        "/api/v1/audit-events?since=yesterday",
        None,
    )
    .await;
    assert_eq!(status, 400, "{bad}");

    // Admins only: a member, and any API key, are refused.
    app.add_member(&token, "erin@example.com", "MEMBER").await;
    let (member_token, _) = app.login("erin@example.com", MEMBER_PASSWORD).await;
    let (status, _) = call(
        &app,
        Auth::Bearer(&member_token),
        M::GET,
        "/api/v1/audit-events",
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = call(
        &app,
        Auth::Bearer(&member_token),
        M::GET,
        "/api/v1/audit-events/export",
        None,
    )
    .await;
    assert_eq!(status, 403);
    let reader = app.create_key(&token, "READ").await;
    let (status, _) = call(
        &app,
        Auth::ApiKey(&reader),
        M::GET,
        "/api/v1/audit-events/export",
        None,
    )
    .await;
    assert_eq!(status, 403);
}

/// Writes `n` events of `action` at `at` straight into the org's log.
async fn write_events(
    app: &TestApp,
    org: uuid::Uuid,
    action: &str,
    at: chrono::DateTime<Utc>,
    n: usize,
) {
    for i in 0..n {
        entity::audit_event::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            org_id: Set(org),
            actor_user_id: Set(None),
            actor_api_key_id: Set(None),
            actor_label: Set(if i % 2 == 0 {
                "=cmd|' /C calc'!A0".into()
            } else {
                "system".into()
            }),
            action: Set(action.into()),
            resource_type: Set("thing".into()),
            resource_id: Set(Some(format!("r{i}"))),
            ip: Set(None),
            request_id: Set(None),
            details: Set(Some(json!({"note": "a, \"quoted\"\nline"}).to_string())),
            created_at: Set(at),
        }
        .insert(&app.state.db)
        .await
        .unwrap();
    }
}

/// The export holds exactly what the list shows, in the same order, across its chunks (500
/// rows each, with many events sharing one instant at a chunk's edge), as CSV and as JSON.
#[tokio::test]
async fn the_export_streams_the_whole_filtered_log() {
    let app = TestApp::spawn().await;
    let token = app.login_admin().await;
    let org = builders::org_id(&app.state.db, "default").await;
    let at = Utc::now() - Duration::minutes(5);
    write_events(&app, org, "bulk.same_instant", at, 700).await;
    write_events(&app, org, "bulk.later", at + Duration::seconds(1), 520).await;

    // The list, page by page: the reference order.
    let mut listed = Vec::new();
    for page in 1..=3 {
        let (_, body) = call(
            &app,
            Auth::Bearer(&token),
            M::GET,
            &format!("/api/v1/audit-events?resource_type=thing&page={page}&page_size=500"),
            None,
        )
        .await;
        assert_eq!(body["meta"]["total"], 1220);
        for e in body["data"].as_array().unwrap() {
            listed.push(e["id"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(listed.len(), 1220);

    let (status, headers, json_text) = call_text(
        &app,
        Auth::Bearer(&token),
        M::GET,
        "/api/v1/audit-events/export?format=json&resource_type=thing",
        None,
    )
    .await;
    assert_eq!(status, 200, "{json_text}");
    assert_eq!(headers["content-type"], "application/json");
    let exported: Vec<Value> = serde_json::from_str(&json_text).expect("one JSON array");
    let ids: Vec<String> = exported
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ids, listed,
        "the JSON export is the list, in order, once each"
    );
    assert_eq!(exported[0]["details"]["note"], "a, \"quoted\"\nline");

    let (status, headers, csv) = call_text(
        &app,
        Auth::Bearer(&token),
        M::GET,
        "/api/v1/audit-events/export?resource_type=thing",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert!(headers["content-disposition"]
        .to_str()
        .unwrap()
        .contains("audit-events.csv"));
    let records = parse_csv(&csv);
    assert_eq!(
        records[0],
        [
            "id",
            "created_at",
            "actor",
            "actor_user_id",
            "actor_api_key_id",
            "action",
            "resource_type",
            "resource_id",
            "ip",
            "request_id",
            "details"
        ]
    );
    let csv_ids: Vec<String> = records[1..].iter().map(|r| r[0].clone()).collect();
    assert_eq!(
        csv_ids, listed,
        "the CSV export is the list, in order, once each"
    );
    for record in &records[1..] {
        assert_eq!(record.len(), 11, "{record:?}");
        assert!(
            !record[2].starts_with('='),
            "a formula is defused: {record:?}"
        );
        let details: Value = serde_json::from_str(&record[10]).unwrap();
        assert_eq!(details["note"], "a, \"quoted\"\nline");
    }

    // Filters apply to the export as to the list.
    let (_, _, only_later) = call_text(
        &app,
        Auth::Bearer(&token),
        M::GET,
        "/api/v1/audit-events/export?format=json&action=bulk.later",
        None,
    )
    .await;
    let only_later: Vec<Value> = serde_json::from_str(&only_later).unwrap();
    assert_eq!(only_later.len(), 520);
    let (status, body) = call(
        &app,
        Auth::Bearer(&token),
        M::GET,
        "/api/v1/audit-events/export?format=xml",
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");
}

/// RFC 4180 records (quoted fields may hold separators, quotes and line breaks).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let (mut record, mut field) = (Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    records
}
