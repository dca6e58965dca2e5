//! Remediation workflow: assignment and "my findings", bulk triage (atomic, audited once,
//! bounded), suppression rules (stored and future findings, counts, removal and expiry), and the
//! scan findings' severity filter.

use rampart::ingest::synthetic::{sarif, SyntheticResult};
use serde_json::{json, Value};

use crate::support::{assert_envelope, Auth, TestApp, MEMBER_PASSWORD};

async fn call(
    app: &TestApp,
    auth: Auth<'_>,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app.http.request(method, app.url(path));
    req = match auth {
        Auth::None => req,
        Auth::Bearer(token) => req.bearer_auth(token),
        Auth::ApiKey(key) => req.header("x-api-key", key),
    };
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// One SARIF result of `rule` at `path`, at `level`.
fn result(rule: &str, path: &str, level: &str) -> Value {
    json!({"ruleId": rule, "level": level, "message": {"text": format!("{rule} in {path}")},
           "locations": [{"physicalLocation": {"artifactLocation": {"uri": path},
             "region": {"startLine": 3}}}]})
}

fn report(results: Vec<Value>) -> Vec<u8> {
    serde_json::to_vec(&json!({"version": "2.1.0", "runs": [{
        "tool": {"driver": {"name": "semgrep", "rules": [{"id": "A"}, {"id": "B"}]}},
        "results": results}]}))
    .unwrap()
}

async fn total(app: &TestApp, token: &str, args: &str) -> u64 {
    let res = app
        .gql(
            Auth::Bearer(token),
            &if args.is_empty() {
                "{ findings { totalCount } }".to_string()
            } else {
                format!("{{ findings({args}) {{ totalCount }} }}")
            },
            json!({}),
        )
        .await;
    res.data("findings")["totalCount"]
        .as_u64()
        .unwrap_or_else(|| panic!("{args}: {}", res.body))
}

async fn open_counts(app: &TestApp, token: &str, target: &str) -> Value {
    app.gql(
        Auth::Bearer(token),
        "query($t: UUID!) { target(id: $t) { openFindings { critical high medium low info total } } }",
        json!({"t": target}),
    )
    .await
    .data("target")["openFindings"]
        .clone()
}

async fn finding_ids(app: &TestApp, token: &str, args: &str) -> Vec<String> {
    let res = app
        .gql(
            Auth::Bearer(token),
            &format!("{{ findings({args}, pageSize: 100) {{ edges {{ node {{ id }} }} }} }}"),
            json!({}),
        )
        .await;
    res.data("findings")["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["id"].as_str().unwrap().to_string())
        .collect()
}

/// A session in a new org of its own, made by a new member of `owner`'s org (switching
/// `owner`'s own session would end it).
async fn other_org(app: &TestApp, owner: &str, email: &str) -> String {
    app.add_member(owner, email, "MEMBER").await;
    let (token, _) = app.login(email, MEMBER_PASSWORD).await;
    app.switch_to_new_org(&token, "Elsewhere").await.1
}

/// The kinds and titles of `token`'s notifications.
async fn notifications(app: &TestApp, token: &str) -> Vec<(String, String)> {
    let res = app
        .gql(
            Auth::Bearer(token),
            "{ notifications(pageSize: 50) { edges { node { kind title } } } }",
            json!({}),
        )
        .await;
    res.data("notifications")["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["node"]["kind"].as_str().unwrap().to_string(),
                e["node"]["title"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn audit_count(app: &TestApp, token: &str, action: &str) -> Vec<Value> {
    let res = app
        .gql(
            Auth::Bearer(token),
            "query($a: String) { auditEvents(action: $a, pageSize: 100) { edges { node { action details } } } }",
            json!({"a": action}),
        )
        .await;
    res.data("auditEvents")["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

#[tokio::test]
async fn findings_are_assigned_to_members_and_listed_as_mine() {
    use reqwest::Method as M;
    let app = TestApp::spawn().await;
    let owner = app.login_admin().await;
    let scan = app
        .ingest_and_wait(
            Auth::Bearer(&owner),
            "target=shop&target_kind=repository",
            sarif("semgrep", (0..5).map(SyntheticResult::numbered)),
        )
        .await;
    let target = scan["targetId"].as_str().unwrap().to_string();
    let member_id = app.add_member(&owner, "dev@acme.test", "MEMBER").await;
    let (member, _) = app.login("dev@acme.test", MEMBER_PASSWORD).await;
    let ids = finding_ids(&app, &owner, &format!("targetId: \"{target}\"")).await;
    assert_eq!(ids.len(), 5);

    let (status, body) = call(
        &app,
        Auth::Bearer(&owner),
        M::PUT,
        &format!("/api/v1/findings/{}/assignee", ids[0]),
        Some(json!({"assignee_id": member_id})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["assignee_id"], member_id);
    let assigned = app
        .gql(
            Auth::Bearer(&member),
            "mutation($id: UUID!, $a: UUID) { assignFinding(id: $id, assigneeId: $a) { assigneeId } }",
            json!({"id": ids[1], "a": member_id}),
        )
        .await;
    assert_eq!(assigned.data("assignFinding")["assigneeId"], member_id);

    assert_eq!(
        total(&app, &owner, &format!("assigneeId: \"{member_id}\"")).await,
        2
    );
    assert_eq!(total(&app, &member, "assignedToMe: true").await, 2);
    assert_eq!(total(&app, &owner, "assignedToMe: true").await, 0);
    // Told once: by the owner's assignment, not by their own.
    let told = notifications(&app, &member).await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0].0, "FINDING_ASSIGNED");
    assert!(
        told[0]
            .1
            .starts_with("owner@acme.test assigned you a finding: "),
        "{told:?}"
    );
    let (status, body) = call(
        &app,
        Auth::Bearer(&member),
        M::GET,
        "/api/v1/findings?assigned_to_me=true",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["meta"]["total"], 2, "{body}");

    // Someone outside the org cannot be assigned; nothing changes.
    let other_owner = other_org(&app, &owner, "founder@else.test").await;
    let outsider = app
        .add_member(&other_owner, "out@else.test", "MEMBER")
        .await;
    let refused = app
        .gql(
            Auth::Bearer(&owner),
            "mutation($id: UUID!, $a: UUID) { assignFinding(id: $id, assigneeId: $a) { id } }",
            json!({"id": ids[2], "a": outsider}),
        )
        .await;
    assert_eq!(refused.code(), Some("VALIDATION_FAILED"));
    // A finding of another org is not found.
    let foreign = app
        .gql(
            Auth::Bearer(&other_owner),
            "mutation($id: UUID!, $a: UUID) { assignFinding(id: $id, assigneeId: $a) { id } }",
            json!({"id": ids[2], "a": outsider}),
        )
        .await;
    assert_eq!(foreign.code(), Some("NOT_FOUND"));

    let (status, body) = call(
        &app,
        Auth::Bearer(&owner),
        M::PUT,
        &format!("/api/v1/findings/{}/assignee", ids[0]),
        Some(json!({"assignee_id": null})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["assignee_id"], Value::Null);
    assert_eq!(total(&app, &member, "assignedToMe: true").await, 1);
    assert_eq!(audit_count(&app, &owner, "finding.assign").await.len(), 3);
}

#[tokio::test]
async fn bulk_triage_is_atomic_audited_once_and_bounded() {
    use reqwest::Method as M;
    let app = TestApp::spawn().await;
    let owner = app.login_admin().await;
    // Levels cycle error, warning, note: 0..40 gives 14 high, 13 medium, 13 low.
    let scan = app
        .ingest_and_wait(
            Auth::Bearer(&owner),
            "target=shop&target_kind=repository",
            sarif("semgrep", (0..40).map(SyntheticResult::numbered)),
        )
        .await;
    let target = scan["targetId"].as_str().unwrap().to_string();
    let member_id = app.add_member(&owner, "dev@acme.test", "MEMBER").await;

    let (status, body) = call(
        &app,
        Auth::Bearer(&owner),
        M::POST,
        "/api/v1/findings/bulk-triage",
        Some(
            json!({"findings": {"filter": {"target_id": target, "severity": ["high"]}},
                    "state": "confirmed", "note": "seen in review",
                    "assignee_id": member_id, "comment": "Fix before release"}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["count"], 14);
    assert_eq!(total(&app, &owner, "triageState: CONFIRMED").await, 14);
    assert_eq!(
        total(&app, &owner, &format!("assigneeId: \"{member_id}\"")).await,
        14
    );
    let (member, _) = app.login("dev@acme.test", MEMBER_PASSWORD).await;
    assert_eq!(
        notifications(&app, &member).await,
        vec![(
            "FINDING_ASSIGNED".to_string(),
            "owner@acme.test assigned you 14 findings".to_string()
        )]
    );
    let events = audit_count(&app, &owner, "finding.bulk_triage").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["details"]["count"], 14);
    let confirmed = finding_ids(&app, &owner, "triageState: CONFIRMED").await;
    let comments = app
        .gql(
            Auth::Bearer(&owner),
            "query($f: UUID!) { findingComments(findingId: $f) { totalCount edges { node { body } } } }",
            json!({"f": confirmed[0]}),
        )
        .await;
    assert_eq!(comments.data("findingComments")["totalCount"], 1);

    // By ids: one of another org's findings among them → 404 and nothing changes.
    let other = other_org(&app, &owner, "founder@else.test").await;
    let theirs = app
        .ingest_and_wait(
            Auth::Bearer(&other),
            "target=theirs&target_kind=repository",
            sarif("semgrep", (0..1).map(SyntheticResult::numbered)),
        )
        .await;
    let their_id = finding_ids(
        &app,
        &other,
        &format!("targetId: \"{}\"", theirs["targetId"].as_str().unwrap()),
    )
    .await
    .remove(0);
    let mine = finding_ids(&app, &owner, "severity: [MEDIUM]").await;
    assert_eq!(mine.len(), 13);
    let mut ids = mine.clone();
    ids.push(their_id);
    let (status, body) = call(
        &app,
        Auth::Bearer(&owner),
        M::POST,
        "/api/v1/findings/bulk-triage",
        Some(json!({"findings": {"ids": ids}, "state": "false_positive"})),
    )
    .await;
    assert_envelope(&body, status, "NOT_FOUND");
    assert_eq!(total(&app, &owner, "triageState: FALSE_POSITIVE").await, 0);
    // The same without it: all 13.
    let (status, body) = call(
        &app,
        Auth::Bearer(&owner),
        M::POST,
        "/api/v1/findings/bulk-triage",
        Some(json!({"findings": {"ids": mine}, "state": "false_positive"})),
    )
    .await;
    assert_eq!((status, body["data"]["count"].clone()), (200, json!(13)));

    // An invalid decision, an empty change, both selections: refused, nothing changes.
    for input in [
        json!({"findings": {"filter": {}}, "state": "accepted_risk"}),
        json!({"findings": {"filter": {}}}),
        json!({"findings": {"filter": {}, "ids": []}, "state": "confirmed"}),
    ] {
        let (status, body) = call(
            &app,
            Auth::Bearer(&owner),
            M::POST,
            "/api/v1/findings/bulk-triage",
            Some(input),
        )
        .await;
        assert_envelope(&body, status, "VALIDATION_FAILED");
    }
    assert_eq!(total(&app, &owner, "triageState: UNTRIAGED").await, 13);

    // Viewers and read keys may not.
    app.add_member(&owner, "auditor@acme.test", "VIEWER").await;
    let (viewer, _) = app.login("auditor@acme.test", MEMBER_PASSWORD).await;
    let read_key = app.create_key(&owner, "READ").await;
    for auth in [Auth::Bearer(&viewer), Auth::ApiKey(&read_key)] {
        let (status, body) = call(
            &app,
            auth,
            M::POST,
            "/api/v1/findings/bulk-triage",
            Some(json!({"findings": {"filter": {}}, "state": "wont_fix"})),
        )
        .await;
        assert_envelope(&body, status, "FORBIDDEN");
    }
    assert_eq!(total(&app, &owner, "triageState: WONT_FIX").await, 0);
}

#[tokio::test]
async fn bulk_triage_takes_ten_thousand_findings_and_refuses_more() {
    use reqwest::Method as M;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
    let app = TestApp::spawn().await;
    let owner = app.login_admin().await;
    let scan = app
        .ingest_and_wait(
            Auth::Bearer(&owner),
            "target=big&target_kind=repository",
            sarif("semgrep", (0..10_001).map(SyntheticResult::numbered)),
        )
        .await;
    assert_eq!(scan["counts"]["total"], 10_001);
    let target = scan["targetId"].as_str().unwrap().to_string();
    let (status, body) = call(
        &app,
        Auth::Bearer(&owner),
        M::POST,
        "/api/v1/findings/bulk-triage",
        Some(json!({"findings": {"filter": {"target_id": target}}, "state": "confirmed"})),
    )
    .await;
    assert_envelope(&body, status, "VALIDATION_FAILED");
    assert_eq!(total(&app, &owner, "triageState: CONFIRMED").await, 0);

    let ids: Vec<uuid::Uuid> = entity::finding::Entity::find()
        .select_only()
        .column(entity::finding::Column::Id)
        .filter(entity::finding::Column::TargetId.eq(uuid::Uuid::parse_str(&target).unwrap()))
        .limit(10_000)
        .into_tuple()
        .all(&app.state.db)
        .await
        .unwrap();
    let (status, body) = call(
        &app,
        Auth::Bearer(&owner),
        M::POST,
        "/api/v1/findings/bulk-triage",
        Some(json!({"findings": {"ids": ids}, "state": "confirmed"})),
    )
    .await;
    assert_eq!(
        (status, body["data"]["count"].clone()),
        (200, json!(10_000)),
        "{body}"
    );
    assert_eq!(total(&app, &owner, "triageState: CONFIRMED").await, 10_000);
}

#[tokio::test]
async fn suppression_rules_hide_stored_and_future_findings_until_removed_or_lapsed() {
    use reqwest::Method as M;
    let app = TestApp::spawn().await;
    let owner = app.login_admin().await;
    let q = "target=shop&target_kind=repository";
    let base = vec![
        result("A", "tests/test_a.py", "error"),
        result("A", "src/app.py", "error"),
        result("B", "tests/unit/test_b.py", "warning"),
        result("B", "src/lib.py", "note"),
    ];
    let first = app
        .ingest_and_wait(Auth::Bearer(&owner), q, report(base.clone()))
        .await;
    let target = first["targetId"].as_str().unwrap().to_string();
    assert_eq!(
        open_counts(&app, &owner, &target).await,
        json!({"critical": 0, "high": 2, "medium": 1, "low": 1, "info": 0, "total": 4})
    );

    let (status, body) = call(
        &app,
        Auth::Bearer(&owner),
        M::POST,
        "/api/v1/suppression-rules",
        Some(json!({"path_glob": "tests/**", "reason": "test code is not shipped"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["data"]["suppressed"], 2);
    let rule_id = body["data"]["rule"]["id"].as_str().unwrap().to_string();
    assert_eq!(total(&app, &owner, "").await, 2);
    assert_eq!(total(&app, &owner, "suppression: SUPPRESSED").await, 2);
    assert_eq!(total(&app, &owner, "suppression: ALL").await, 4);
    assert_eq!(
        open_counts(&app, &owner, &target).await,
        json!({"critical": 0, "high": 1, "medium": 0, "low": 1, "info": 0, "total": 2})
    );
    let hidden = app
        .gql(
            Auth::Bearer(&owner),
            "{ findings(suppression: SUPPRESSED) { edges { node { location { path } suppression { ruleId until } } } } }",
            json!({}),
        )
        .await;
    for edge in hidden.data("findings")["edges"].as_array().unwrap() {
        assert_eq!(edge["node"]["suppression"]["ruleId"], rule_id);
        assert!(edge["node"]["location"]["path"]
            .as_str()
            .unwrap()
            .starts_with("tests/"));
    }

    // A later scan: its new finding under tests/ is suppressed at once and left out of the
    // scan's counts (two findings outside tests/ remain: one high, one low).
    let mut more = base.clone();
    more.push(result("A", "tests/test_c.py", "error"));
    let second = app
        .ingest_and_wait(Auth::Bearer(&owner), q, report(more))
        .await;
    assert_eq!(second["findingsNew"], 1);
    assert_eq!(
        second["counts"],
        json!({"critical": 0, "high": 1, "medium": 0, "low": 1, "info": 0, "total": 2})
    );
    assert_eq!(total(&app, &owner, "suppression: SUPPRESSED").await, 3);

    // A second rule overlapping the first: deleting the first leaves what the second matches.
    let (status, body) = call(
        &app,
        Auth::Bearer(&owner),
        M::POST,
        "/api/v1/suppression-rules",
        Some(
            json!({"rule_id": "B", "scanner": "semgrep", "target_id": target,
                    "reason": "B is noisy here"}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    // Only src/lib.py: tests/unit/test_b.py is already suppressed by the first rule.
    assert_eq!(body["data"]["suppressed"], 1);
    let second_rule = body["data"]["rule"]["id"].as_str().unwrap().to_string();
    let released = app
        .gql(
            Auth::Bearer(&owner),
            "mutation($id: UUID!) { deleteSuppressionRule(id: $id) }",
            json!({"id": rule_id}),
        )
        .await;
    // test_a.py and test_c.py come back; tests/unit/test_b.py is now held by rule B.
    assert_eq!(released.data("deleteSuppressionRule"), 2);
    assert_eq!(total(&app, &owner, "suppression: SUPPRESSED").await, 2);
    assert_eq!(
        open_counts(&app, &owner, &target).await,
        json!({"critical": 0, "high": 3, "medium": 0, "low": 0, "info": 0, "total": 3})
    );
    let (status, _) = call(
        &app,
        Auth::Bearer(&owner),
        M::DELETE,
        &format!("/api/v1/suppression-rules/{second_rule}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(total(&app, &owner, "").await, 5);

    // A rule that lapses: its findings count again once it has.
    let soon = chrono::Utc::now() + chrono::Duration::seconds(2);
    let (status, body) = call(
        &app,
        Auth::Bearer(&owner),
        M::POST,
        "/api/v1/suppression-rules",
        Some(json!({"rule_id": "A", "reason": "until the fix ships", "expires_at": soon})),
    )
    .await;
    assert_eq!(
        (status, body["data"]["suppressed"].clone()),
        (201, json!(3))
    );
    assert_eq!(total(&app, &owner, "").await, 2);
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    assert_eq!(total(&app, &owner, "").await, 5);
    assert_eq!(total(&app, &owner, "suppression: SUPPRESSED").await, 0);

    // Bad rules: no condition, blank reason, malformed glob, past expiry; another org's target.
    let past = chrono::Utc::now() - chrono::Duration::hours(1);
    for input in [
        json!({"reason": "everything"}),
        json!({"rule_id": "A", "reason": "  "}),
        json!({"path_glob": "src/[a-", "reason": "bad glob"}),
        json!({"rule_id": "A", "reason": "late", "expires_at": past}),
    ] {
        let (status, body) = call(
            &app,
            Auth::Bearer(&owner),
            M::POST,
            "/api/v1/suppression-rules",
            Some(input),
        )
        .await;
        assert_envelope(&body, status, "VALIDATION_FAILED");
    }
    let other = other_org(&app, &owner, "founder@else.test").await;
    let (status, body) = call(
        &app,
        Auth::Bearer(&other),
        M::POST,
        "/api/v1/suppression-rules",
        Some(json!({"target_id": target, "reason": "not theirs"})),
    )
    .await;
    assert_envelope(&body, status, "NOT_FOUND");
    let (status, body) = call(
        &app,
        Auth::Bearer(&other),
        M::GET,
        "/api/v1/suppression-rules",
        None,
    )
    .await;
    assert_eq!((status, body["meta"]["total"].clone()), (200, json!(0)));

    // Viewers read rules but cannot make them.
    app.add_member(&owner, "auditor@acme.test", "VIEWER").await;
    let (viewer, _) = app.login("auditor@acme.test", MEMBER_PASSWORD).await;
    let (status, body) = call(
        &app,
        Auth::Bearer(&viewer),
        M::POST,
        "/api/v1/suppression-rules",
        Some(json!({"rule_id": "A", "reason": "viewer"})),
    )
    .await;
    assert_envelope(&body, status, "FORBIDDEN");
    let (status, body) = call(
        &app,
        Auth::Bearer(&viewer),
        M::GET,
        "/api/v1/suppression-rules",
        None,
    )
    .await;
    // Three were made, two deleted; the lapsed one is still listed (with its expiry).
    assert_eq!((status, body["meta"]["total"].clone()), (200, json!(1)));
    assert_eq!(
        audit_count(&app, &owner, "suppression_rule.create")
            .await
            .len(),
        3
    );
    assert_eq!(
        audit_count(&app, &owner, "suppression_rule.delete")
            .await
            .len(),
        2
    );
}

#[tokio::test]
async fn a_scans_findings_filter_by_severity() {
    use reqwest::Method as M;
    let app = TestApp::spawn().await;
    let owner = app.login_admin().await;
    let scan = app
        .ingest_and_wait(
            Auth::Bearer(&owner),
            "target=shop&target_kind=repository",
            report(vec![
                result("A", "src/a.py", "error"),
                result("A", "src/b.py", "error"),
                result("B", "src/c.py", "note"),
            ]),
        )
        .await;
    let id = scan["id"].as_str().unwrap();
    let (status, body) = call(
        &app,
        Auth::Bearer(&owner),
        M::GET,
        &format!("/api/v1/scans/{id}/findings?severity=high"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["meta"]["total"], 2);
    assert!(body["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["severity"] == "high"));
    let (_, body) = call(
        &app,
        Auth::Bearer(&owner),
        M::GET,
        &format!("/api/v1/scans/{id}/findings?severity=critical"),
        None,
    )
    .await;
    assert_eq!(body["meta"]["total"], 0);
}

async fn deliveries(app: &TestApp, owner: &str, hook: &Value) -> Vec<Value> {
    app.gql(
        Auth::Bearer(owner),
        "query($id: UUID!) { webhookDeliveries(webhookId: $id) { edges { node { event payload } } } }",
        json!({"id": hook}),
    )
    .await
    .data("webhookDeliveries")["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

/// What the reminder tests start from: an app running reminders every second, an owner's
/// upload of `results` to target `shop`, a webhook for `event` to a port nothing listens on
/// (the delivery rows are what is checked), and a member following the target.
struct Announcing {
    app: TestApp,
    owner: String,
    member: String,
    hook: Value,
}

async fn announcing(event: &str, results: Vec<Value>) -> Announcing {
    let mut tc = crate::support::TestConfig::new().await;
    tc.config.reminder_interval_secs = 1;
    tc.config.risk_expiry_notice_days = 7;
    tc.config.webhook_allow_cidrs = vec!["127.0.0.0/8".parse().unwrap()];
    tc.config.webhook_ports = vec![9];
    let mut app = TestApp::spawn_with(tc.config.clone()).await;
    app.test_config = Some(tc);
    let owner = app.login_admin().await;
    let scan = app
        .ingest_and_wait(
            Auth::Bearer(&owner),
            "target=shop&target_kind=repository",
            report(results),
        )
        .await;
    let target = scan["targetId"].as_str().unwrap().to_string();
    let hook = app
        .gql(
            Auth::Bearer(&owner),
            &format!("mutation {{ createWebhook(input: {{url: \"http://127.0.0.1:9/hook\", events: [{event}]}}) {{ webhook {{ id }} }} }}"),
            json!({}),
        )
        .await
        .data("createWebhook")["webhook"]["id"]
        .clone();
    app.add_member(&owner, "dev@acme.test", "MEMBER").await;
    let (member, _) = app.login("dev@acme.test", MEMBER_PASSWORD).await;
    app.gql(
        Auth::Bearer(&member),
        "mutation($t: UUID!) { followTarget(targetId: $t) { id } }",
        json!({"t": target}),
    )
    .await
    .data("followTarget");
    Announcing {
        app,
        owner,
        member,
        hook,
    }
}

/// The member's notifications of `kind`, once at least one has come (or after 10 s).
async fn told_of(a: &Announcing, kind: &str) -> Vec<(String, String)> {
    let of_kind = |told: Vec<(String, String)>| {
        told.into_iter()
            .filter(|(k, _)| k == kind)
            .collect::<Vec<_>>()
    };
    for _ in 0..100 {
        let told = of_kind(notifications(&a.app, &a.member).await);
        if !told.is_empty() {
            return told;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Vec::new()
}

/// An accepted risk lapsing within the notice period is announced once, to webhooks and to
/// the people following its target (and its assignee); another acceptance with a new expiry is
/// announced again; one lapsing later is not announced yet.
#[tokio::test]
async fn accepted_risks_about_to_lapse_are_announced_once_per_acceptance() {
    let a = announcing(
        "RISK_ACCEPTANCE_EXPIRING",
        vec![
            result("A", "src/a.py", "error"),
            result("B", "src/b.py", "note"),
        ],
    )
    .await;
    let (app, owner) = (&a.app, a.owner.as_str());
    let soon_id = finding_ids(app, owner, "severity: [HIGH]").await.remove(0);
    let later_id = finding_ids(app, owner, "severity: [LOW]").await.remove(0);
    let accept = |id: String, days: i64| async move {
        app.gql(
            Auth::Bearer(owner),
            "mutation($id: UUID!, $at: DateTime!) { setFindingState(id: $id, input: {state: ACCEPTED_RISK, note: \"vendor fix pending\", expiresAt: $at}) { id } }",
            json!({"id": id, "at": chrono::Utc::now() + chrono::Duration::days(days)}),
        )
        .await
        .data("setFindingState");
    };
    accept(soon_id.clone(), 3).await;
    accept(later_id, 30).await;

    let told = told_of(&a, "RISK_ACCEPTANCE_EXPIRING").await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(
        told[0]
            .1
            .starts_with("Accepted risk on shop lapses in 2 days")
            || told[0]
                .1
                .starts_with("Accepted risk on shop lapses in 3 days"),
        "{told:?}"
    );
    // Later runs do not announce it again, nor the acceptance that lapses in 30 days.
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    assert_eq!(told_of(&a, "RISK_ACCEPTANCE_EXPIRING").await.len(), 1);
    let sent = deliveries(app, owner, &a.hook).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["event"], "risk_acceptance.expiring");
    let payload: Value = match &sent[0]["payload"] {
        Value::String(text) => serde_json::from_str(text).unwrap(),
        other => other.clone(),
    };
    assert_eq!(payload["data"]["finding"]["id"], soon_id, "{payload}");

    // A new acceptance of the same finding, with a new expiry, is announced again.
    accept(soon_id.clone(), 4).await;
    for _ in 0..100 {
        if told_of(&a, "RISK_ACCEPTANCE_EXPIRING").await.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(told_of(&a, "RISK_ACCEPTANCE_EXPIRING").await.len(), 2);
    assert_eq!(deliveries(app, owner, &a.hook).await.len(), 2);
}

/// An open finding past its SLA due date is announced once, to webhooks and to the people
/// following its target; findings still on time, fixed or suppressed are not.
#[tokio::test]
async fn sla_breaches_are_announced_once_per_finding() {
    use sea_orm::{ActiveModelTrait, EntityTrait, Set};
    let a = announcing(
        "SLA_BREACHED",
        vec![
            result("A", "src/a.py", "error"),
            result("A", "tests/t.py", "error"),
            result("B", "src/b.py", "note"),
        ],
    )
    .await;
    let (app, owner) = (&a.app, a.owner.as_str());
    // The test code's finding is suppressed; the low one is within its 180 days.
    let (status, _) = call(
        app,
        Auth::Bearer(owner),
        reqwest::Method::POST,
        "/api/v1/suppression-rules",
        Some(json!({"path_glob": "tests/**", "reason": "test code"})),
    )
    .await;
    assert_eq!(status, 201);
    // Both high findings were first seen 40 days ago: past the default 30 days for high.
    let long_ago = chrono::Utc::now() - chrono::Duration::days(40);
    for row in entity::finding::Entity::find()
        .all(&app.state.db)
        .await
        .unwrap()
    {
        let mut active: entity::finding::ActiveModel = row.into();
        active.first_seen_at = Set(long_ago);
        active.update(&app.state.db).await.unwrap();
    }
    let told = told_of(&a, "SLA_BREACHED").await;
    assert_eq!(
        told,
        vec![(
            "SLA_BREACHED".to_string(),
            "SLA breached on shop: [high] A in src/a.py".to_string()
        )]
    );
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    assert_eq!(told_of(&a, "SLA_BREACHED").await.len(), 1);
    let sent = deliveries(app, owner, &a.hook).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["event"], "sla.breached");
    assert_eq!(total(app, owner, "slaState: BREACHED").await, 1);
}
