//! Table-driven tenancy and permission checks: what each caller may do, and that one org's
//! resources are invisible (404, absent from lists) to another.

use serde_json::{json, Value};

use crate::support::{Auth, TestApp, MEMBER_PASSWORD};

/// Runs `query` and reduces the answer to `ok` or the error code.
async fn outcome(app: &TestApp, auth: Auth<'_>, query: &str, vars: Value) -> String {
    let res = app.gql(auth, query, vars).await;
    match res.code() {
        None => "ok".into(),
        Some(code) => code.to_string(),
    }
}

#[tokio::test]
async fn permission_matrix() {
    let app = TestApp::spawn().await;
    let owner = app.login_admin().await;
    for (email, role) in [
        ("admin@acme.test", "ADMIN"),
        ("member@acme.test", "MEMBER"),
        ("viewer@acme.test", "VIEWER"),
    ] {
        app.add_member(&owner, email, role).await;
    }
    let admin = app.login("admin@acme.test", MEMBER_PASSWORD).await.0;
    let member = app.login("member@acme.test", MEMBER_PASSWORD).await.0;
    let viewer = app.login("viewer@acme.test", MEMBER_PASSWORD).await.0;
    let write_key = app.create_key(&owner, "WRITE").await;
    let read_key = app.create_key(&owner, "READ").await;
    let callers: [(&str, Auth); 6] = [
        ("owner", Auth::Bearer(&owner)),
        ("admin", Auth::Bearer(&admin)),
        ("member", Auth::Bearer(&member)),
        ("viewer", Auth::Bearer(&viewer)),
        ("write key", Auth::ApiKey(&write_key)),
        ("read key", Auth::ApiKey(&read_key)),
    ];

    const F: &str = "FORBIDDEN";
    const S: &str = "SESSION_REQUIRED";
    const OK: &str = "ok";
    // operation, expected for [owner, admin, member, viewer, write key, read key]
    let matrix: &[(&str, [&str; 6])] = &[
        ("{ me { kind } }", [OK, OK, OK, OK, OK, OK]),
        ("{ organization { id } }", [OK, OK, OK, OK, OK, OK]),
        ("{ organizations { nodes { role } } }", [OK, OK, OK, OK, OK, OK]),
        ("{ users { totalCount } }", [OK, OK, F, F, S, S]),
        ("{ apiKeys { totalCount } }", [OK, OK, F, F, F, F]),
        ("{ auditEvents { totalCount } }", [OK, OK, F, F, F, F]),
        ("{ complianceFrameworks { id } }", [OK, OK, OK, OK, OK, OK]),
        ("{ compliance(framework: \"owasp-top10-2021\") { score } }", [OK, OK, OK, OK, OK, OK]),
        ("{ complianceTrend(framework: \"cwe-top25-2024\", period: \"7d\") { score } }", [OK, OK, OK, OK, OK, OK]),
        ("mutation { createApiKey(input: {label: \"m\"}) { key } }", [OK, OK, F, F, S, S]),
        ("mutation($key: UUID!) { revokeApiKey(id: $key) { id } }", [OK, OK, F, F, S, S]),
        ("mutation($email: String!) { inviteMember(input: {email: $email, role: VIEWER}) { token } }", [OK, OK, F, F, S, S]),
        ("mutation($email: String!) { inviteMember(input: {email: $email, role: OWNER}) { token } }", [OK, F, F, F, S, S]),
        ("{ invitations { totalCount } }", [OK, OK, F, F, S, S]),
        ("{ myInvitations { totalCount } }", [OK, OK, OK, OK, S, S]),
        ("mutation($victim: UUID!) { updateUser(id: $victim, input: {role: MEMBER}) { id } }", [OK, OK, F, F, S, S]),
        ("mutation($victim: UUID!) { updateUser(id: $victim, input: {role: OWNER}) { id } }", [OK, F, F, F, S, S]),
        ("mutation($victim: UUID!) { removeUser(id: $victim) }", [OK, OK, F, F, S, S]),
        ("mutation($name: String!) { createOrganization(input: {name: $name}) { id } }", [OK, OK, OK, OK, S, S]),
        ("mutation { logout }", ["-", "-", "-", "-", S, S]),
        ("{ suppressionRules { totalCount } }", [OK, OK, OK, OK, OK, OK]),
        ("mutation { createSuppressionRule(input: {scanner: \"none\", reason: \"r\"}) { suppressed } }", [OK, OK, OK, F, OK, F]),
        ("mutation { bulkTriageFindings(input: {findings: {filter: {ruleId: \"none\"}}, state: CONFIRMED}) { count } }", [OK, OK, OK, F, OK, F]),
        // Notifications are a person's own: every role has an inbox, no key has one.
        ("{ notifications { totalCount } }", [OK, OK, OK, OK, S, S]),
        ("{ notificationCounts { unread } }", [OK, OK, OK, OK, S, S]),
        ("{ notificationPreferences { email } }", [OK, OK, OK, OK, S, S]),
        ("mutation { updateNotificationPreferences(input: {email: false}) { email } }", [OK, OK, OK, OK, S, S]),
        ("mutation { markAllNotificationsRead { count } }", [OK, OK, OK, OK, S, S]),
        ("{ followedTargets { totalCount } }", [OK, OK, OK, OK, S, S]),
        ("{ findingStats { riskScore open { total } topCwes { cwe } } }", [OK, OK, OK, OK, OK, OK]),
        ("{ findingTrend { at } }", [OK, OK, OK, OK, OK, OK]),
        ("{ slaPolicy { highDays } }", [OK, OK, OK, OK, OK, OK]),
        ("{ slaSummary { breached compliancePct } }", [OK, OK, OK, OK, OK, OK]),
        ("mutation { updateSlaPolicy(input: {highDays: 30}) { highDays } }", [OK, OK, F, F, F, F]),
        ("mutation($finding: UUID!) { setFindingDueDate(id: $finding, dueAt: null) { id } }", [OK, OK, OK, F, OK, F]),
    ];
    // A finding for the due-date cases.
    let db = &app.state.db;
    let org = crate::support::builders::org_id(db, "default").await;
    let t = crate::support::builders::target(db, org, "repository", "matrix", json!({})).await;
    let finding = crate::support::builders::finding(db, &t, "matrix", "high", "m", &[]).await;

    let mut n = 0;
    for (operation, expected) in matrix {
        for ((caller, auth), expected) in callers.iter().zip(expected) {
            if *expected == "-" {
                continue;
            }
            n += 1;
            // Fresh objects to act on, so allowed operations do not disturb later cases.
            let victim = app
                .add_member(&owner, &format!("victim{n}@acme.test"), "VIEWER")
                .await;
            let keys = app
                .gql(
                    Auth::Bearer(&owner),
                    "mutation { createApiKey(input: {label: \"victim\"}) { apiKey { id } } }",
                    json!({}),
                )
                .await;
            let key = keys.data("createApiKey")["apiKey"]["id"].clone();
            let vars = json!({
                "finding": finding.id,
                "victim": victim,
                "key": key,
                "email": format!("new{n}@acme.test"),
                "name": format!("Org {n}"),
            });
            let got = outcome(&app, *auth, operation, vars).await;
            assert_eq!(&got, expected, "{caller}: {operation}");
        }
    }
}

#[tokio::test]
async fn isolation_matrix() {
    let app = TestApp::spawn().await;
    // Org A: the bootstrap org with its owner, a member and a key.
    let owner_a = app.login_admin().await;
    let member_a = app.add_member(&owner_a, "dev@a.test", "MEMBER").await;
    let key_a = app
        .gql(
            Auth::Bearer(&owner_a),
            "mutation { createApiKey(input: {label: \"a-ci\"}) { apiKey { id } } }",
            json!({}),
        )
        .await
        .data("createApiKey")["apiKey"]["id"]
        .clone();
    let org_a = app
        .gql(Auth::Bearer(&owner_a), "{ organization { id } }", json!({}))
        .await
        .data("organization")["id"]
        .clone();

    // Org B: created by A's owner, who hands it to B's own owner and leaves; B's people belong
    // to B only.
    let (org_b, in_b) = app.switch_to_new_org(&owner_a, "Org B").await;
    app.add_member(&in_b, "admin@b.test", "OWNER").await;
    let me = app
        .gql(Auth::Bearer(&in_b), "{ me { user { id } } }", json!({}))
        .await;
    let left = app
        .gql(
            Auth::Bearer(&in_b),
            "mutation($id: UUID!) { removeUser(id: $id) }",
            json!({"id": me.data("me")["user"]["id"]}),
        )
        .await;
    assert_eq!(left.data("removeUser"), true);
    let admin_b = app.login("admin@b.test", MEMBER_PASSWORD).await.0;
    // Switching moved A's owner's session to B; sign in again, landing in A.
    let owner_a = app.login_admin().await;
    let key_b = app.create_key(&admin_b, "WRITE").await;

    // Every resource of A, asked for by id from B, answers exactly like a missing one.
    let by_id: &[(&str, &str, Value)] = &[
        (
            "api key",
            "mutation($id: UUID!) { revokeApiKey(id: $id) { id } }",
            key_a.clone(),
        ),
        (
            "user (role)",
            "mutation($id: UUID!) { updateUser(id: $id, input: {role: VIEWER}) { id } }",
            json!(member_a),
        ),
        (
            "user (remove)",
            "mutation($id: UUID!) { removeUser(id: $id) }",
            json!(member_a),
        ),
        (
            "organization",
            "mutation($id: UUID!) { switchOrganization(orgId: $id) { token } }",
            org_a.clone(),
        ),
    ];
    let missing = json!(uuid::Uuid::now_v7());
    for (resource, query, id) in by_id {
        let foreign = app
            .gql(Auth::Bearer(&admin_b), query, json!({"id": id}))
            .await;
        let absent = app
            .gql(Auth::Bearer(&admin_b), query, json!({"id": missing}))
            .await;
        assert_eq!(
            foreign.code(),
            Some("NOT_FOUND"),
            "{resource}: {}",
            foreign.body
        );
        assert_eq!(
            foreign.body["errors"][0]["message"], absent.body["errors"][0]["message"],
            "{resource}"
        );
    }

    // The two orgs' lists share no row.
    let lists: &[(&str, &str)] = &[
        (
            "users",
            "{ users(pageSize: 500) { edges { node { id } } } }",
        ),
        (
            "apiKeys",
            "{ apiKeys(pageSize: 500) { edges { node { id } } } }",
        ),
        (
            "auditEvents",
            "{ auditEvents(pageSize: 500) { edges { node { id } } } }",
        ),
    ];
    let ids = |value: &Value| -> Vec<String> {
        value["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["id"].as_str().unwrap().to_string())
            .collect()
    };
    for (field, query) in lists {
        let a = ids(app
            .gql(Auth::Bearer(&owner_a), query, json!({}))
            .await
            .data(field));
        let b = ids(app
            .gql(Auth::Bearer(&admin_b), query, json!({}))
            .await
            .data(field));
        assert!(
            !a.is_empty() && !b.is_empty(),
            "{field}: both orgs have rows"
        );
        assert!(
            a.iter().all(|id| !b.contains(id)),
            "{field}: {a:?} vs {b:?}"
        );
    }
    let b_orgs = app
        .gql(
            Auth::Bearer(&admin_b),
            "{ organizations { nodes { organization { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        b_orgs.data("organizations")["nodes"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        b_orgs.data("organizations")["nodes"][0]["organization"]["id"],
        org_b
    );

    // Domain resources of A: a target with a scan, a finding and a comment.
    let db = &app.state.db;
    let org_a_id = crate::support::builders::org_id(db, "default").await;
    let t = crate::support::builders::target(db, org_a_id, "repository", "a-repo", json!({})).await;
    let s =
        crate::support::builders::scan(db, &t, "complete", chrono::Utc::now(), Some(80.0)).await;
    let f = crate::support::builders::finding(db, &t, "a-fp", "high", "A's finding", &[&s]).await;
    let c = app
        .gql(
            Auth::Bearer(&owner_a),
            "mutation($id: UUID!) { addComment(findingId: $id, body: \"a\") { id } }",
            json!({"id": f.id}),
        )
        .await
        .data("addComment")["id"]
        .clone();
    // A suppression rule of A that matches none of its findings.
    let rule = app
        .gql(
            Auth::Bearer(&owner_a),
            "mutation { createSuppressionRule(input: {scanner: \"none\", reason: \"a\"}) { rule { id } } }",
            json!({}),
        )
        .await
        .data("createSuppressionRule")["rule"]["id"]
        .clone();
    // A notification of A's owner, about A's scan.
    let owner_a_id: uuid::Uuid = app
        .gql(Auth::Bearer(&owner_a), "{ me { user { id } } }", json!({}))
        .await
        .data("me")["user"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let n = {
        use sea_orm::{ActiveModelTrait, Set};
        entity::notification::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            org_id: Set(org_a_id),
            user_id: Set(Some(owner_a_id)),
            kind: Set("scan.failed".into()),
            title: Set("A scan of a-repo failed".into()),
            body: Set(String::new()),
            read_at: Set(None),
            created_at: Set(chrono::Utc::now()),
            target_id: Set(Some(t.id)),
            scan_id: Set(Some(s.id)),
            severity: Set(None),
        }
        .insert(db)
        .await
        .unwrap()
    };
    let domain: &[(&str, &str, Value)] = &[
        (
            "target",
            "query($id: UUID!) { target(id: $id) { id } }",
            json!(t.id),
        ),
        (
            "target update",
            "mutation($id: UUID!) { updateTarget(id: $id, input: {name: \"x\"}) { id } }",
            json!(t.id),
        ),
        (
            "target delete",
            "mutation($id: UUID!) { deleteTarget(id: $id) }",
            json!(t.id),
        ),
        (
            "target trend",
            "query($id: UUID!) { targetTrend(targetId: $id) { totalCount } }",
            json!(t.id),
        ),
        (
            "compliance of a target",
            "query($id: UUID!) { compliance(framework: \"owasp-top10-2021\", targetId: $id) { score } }",
            json!(t.id),
        ),
        (
            "compliance trend of a target",
            "query($id: UUID!) { complianceTrend(framework: \"owasp-top10-2021\", targetId: $id) { score } }",
            json!(t.id),
        ),
        (
            "scan",
            "query($id: UUID!) { scan(id: $id) { id } }",
            json!(s.id),
        ),
        (
            "scan summary",
            "query($id: UUID!) { scanSummary(scanId: $id) { score } }",
            json!(s.id),
        ),
        (
            "scan findings",
            "query($id: UUID!) { scanFindings(scanId: $id) { totalCount } }",
            json!(s.id),
        ),
        (
            "scan cancel",
            "mutation($id: UUID!) { cancelScan(id: $id) { id } }",
            json!(s.id),
        ),
        (
            "scan delete",
            "mutation($id: UUID!) { deleteScan(id: $id) }",
            json!(s.id),
        ),
        (
            "finding",
            "query($id: UUID!) { finding(id: $id) { id } }",
            json!(f.id),
        ),
        (
            "finding comments",
            "query($id: UUID!) { findingComments(findingId: $id) { totalCount } }",
            json!(f.id),
        ),
        (
            "triage",
            "mutation($id: UUID!) { setFindingState(id: $id, input: {state: CONFIRMED}) { id } }",
            json!(f.id),
        ),
        (
            "comment add",
            "mutation($id: UUID!) { addComment(findingId: $id, body: \"b\") { id } }",
            json!(f.id),
        ),
        (
            "comment delete",
            "mutation($id: UUID!) { deleteComment(id: $id) }",
            c.clone(),
        ),
        (
            "raw report",
            "query($id: UUID!) { scan(id: $id) { rawSha256 } }",
            json!(s.id),
        ),
        (
            "finding assign",
            "mutation($id: UUID!) { assignFinding(id: $id, assigneeId: null) { id } }",
            json!(f.id),
        ),
        (
            "bulk triage by id",
            "mutation($id: UUID!) { bulkTriageFindings(input: {findings: {ids: [$id]}, state: CONFIRMED}) { count } }",
            json!(f.id),
        ),
        (
            "suppression rule",
            "query($id: UUID!) { suppressionRule(id: $id) { id } }",
            rule.clone(),
        ),
        (
            "suppression rule delete",
            "mutation($id: UUID!) { deleteSuppressionRule(id: $id) }",
            rule.clone(),
        ),
        (
            "suppression rule on a target",
            "mutation($id: UUID!) { createSuppressionRule(input: {targetId: $id, reason: \"b\"}) { suppressed } }",
            json!(t.id),
        ),
        (
            "follow target",
            "mutation($id: UUID!) { followTarget(targetId: $id) { id } }",
            json!(t.id),
        ),
        (
            "unfollow target",
            "mutation($id: UUID!) { unfollowTarget(targetId: $id) }",
            json!(t.id),
        ),
        (
            "notification",
            "query($id: UUID!) { notification(id: $id) { id } }",
            json!(n.id),
        ),
        (
            "notification read",
            "mutation($id: UUID!) { markNotificationRead(id: $id) { id } }",
            json!(n.id),
        ),
        (
            "finding stats",
            "query($id: UUID!) { findingStats(targetId: $id) { open { total } } }",
            json!(t.id),
        ),
        (
            "finding trend",
            "query($id: UUID!) { findingTrend(targetId: $id) { at } }",
            json!(t.id),
        ),
        (
            "sla summary",
            "query($id: UUID!) { slaSummary(targetId: $id) { breached } }",
            json!(t.id),
        ),
        (
            "finding due date",
            "mutation($id: UUID!) { setFindingDueDate(id: $id, dueAt: null) { id } }",
            json!(f.id),
        ),
    ];
    for (resource, query, id) in domain {
        let foreign = app
            .gql(Auth::Bearer(&admin_b), query, json!({"id": id}))
            .await;
        let absent = app
            .gql(Auth::Bearer(&admin_b), query, json!({"id": missing}))
            .await;
        assert_eq!(
            foreign.code(),
            Some("NOT_FOUND"),
            "{resource}: {}",
            foreign.body
        );
        assert_eq!(
            foreign.body["errors"][0]["message"], absent.body["errors"][0]["message"],
            "{resource}"
        );
    }
    for (field, query) in [
        ("targets", "{ targets { totalCount } }"),
        ("scans", "{ scans { totalCount } }"),
        ("findings", "{ findings { totalCount } }"),
        ("suppressionRules", "{ suppressionRules { totalCount } }"),
        ("notifications", "{ notifications { totalCount } }"),
    ] {
        let b_view = app.gql(Auth::Bearer(&admin_b), query, json!({})).await;
        assert_eq!(b_view.data(field)["totalCount"], 0, "{field} of org B");
        let a_view = app.gql(Auth::Bearer(&owner_a), query, json!({})).await;
        assert_eq!(a_view.data(field)["totalCount"], 1, "{field} of org A");
    }
    // Org-wide figures count the caller's org only.
    let stats = "{ findingStats { open { total } } slaSummary { onTime dueSoon breached } }";
    let b_view = app.gql(Auth::Bearer(&admin_b), stats, json!({})).await;
    assert_eq!(
        b_view.data("findingStats")["open"]["total"],
        0,
        "{}",
        b_view.body
    );
    let a_view = app.gql(Auth::Bearer(&owner_a), stats, json!({})).await;
    assert_eq!(
        a_view.data("findingStats")["open"]["total"],
        1,
        "{}",
        a_view.body
    );
    assert_eq!(a_view.data("slaSummary")["onTime"], 1, "{}", a_view.body);
    assert_eq!(b_view.data("slaSummary")["onTime"], 0, "{}", b_view.body);
    for path in [
        format!("/api/v1/stats?target_id={}", t.id),
        format!("/api/v1/trends/{}/findings", t.id),
        format!("/api/v1/sla/summary?target_id={}", t.id),
    ] {
        let res = app
            .http
            .get(app.url(&path))
            .bearer_auth(&admin_b)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{path}");
    }
    let fleet = app
        .gql(
            Auth::Bearer(&admin_b),
            "{ fleetComparison { nodes { targetId } } }",
            json!({}),
        )
        .await;
    assert_eq!(fleet.data("fleetComparison")["nodes"], json!([]));
    let raw = app
        .http
        .get(app.url(&format!("/api/v1/scans/{}/raw", s.id)))
        .bearer_auth(&admin_b)
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 404);
    let compliance = app
        .http
        .get(app.url(&format!(
            "/api/v1/compliance/owasp-top10-2021?target_id={}",
            t.id
        )))
        .bearer_auth(&admin_b)
        .send()
        .await
        .unwrap();
    assert_eq!(compliance.status(), 404);
    let body: Value = compliance.json().await.unwrap();
    crate::support::assert_envelope(&body, 404, "NOT_FOUND");

    // A key of B sees B only.
    let me = app
        .gql(Auth::ApiKey(&key_b), "{ organization { id } }", json!({}))
        .await;
    assert_eq!(me.data("organization")["id"], org_b);
}

/// One GraphQL operation over the WebSocket (`graphql-transport-ws`) as `token`: its payload.
async fn over_websocket(app: &TestApp, token: &str, query: &str) -> Value {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;

    let mut request = format!("ws://{}/graphql/ws", app.addr)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    for message in [
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}}),
        json!({"type": "subscribe", "id": "1", "payload": {"query": query}}),
    ] {
        ws.send(Message::Text(message.to_string().into()))
            .await
            .unwrap();
    }
    loop {
        let message = tokio::time::timeout(std::time::Duration::from_secs(30), ws.next())
            .await
            .expect("an answer in time");
        let Some(Ok(Message::Text(text))) = message else {
            panic!("the socket ended: {message:?}");
        };
        let message: Value = serde_json::from_str(&text).unwrap();
        match message["type"].as_str() {
            Some("next") => return message["payload"].clone(),
            Some("error") => panic!("{message}"),
            _ => {}
        }
    }
}

/// Nested fields load in the caller's org only, on every surface that runs the schema. The
/// rows below point across orgs on purpose (the foreign keys allow it): each would show org A's
/// data through org B's nested fields if a loader did not filter by the caller's org.
#[tokio::test]
async fn nested_fields_load_only_the_callers_org() {
    use chrono::{Duration, Utc};
    use entity::{comment, target as target_row};
    use sea_orm::{ActiveModelTrait, Set};

    use crate::support::builders::{finding, org_id, scan, target};

    let app = TestApp::spawn().await;
    let owner = app.login_admin().await;
    let db = &app.state.db;
    let org_a = org_id(db, "default").await;
    let (org_b, as_b) = app.switch_to_new_org(&owner, "Beta").await;
    let org_b: uuid::Uuid = org_b.as_str().unwrap().parse().unwrap();
    let now = Utc::now();
    // A's target and scan; B's target, its scan, and a finding on it whose latest scan is A's.
    let ta = target(db, org_a, "repository", "alpha-secret", json!({})).await;
    let sa = scan(db, &ta, "complete", now - Duration::hours(3), Some(90.0)).await;
    let tb = target(db, org_b, "repository", "beta", json!({})).await;
    let sb = scan(db, &tb, "complete", now - Duration::hours(2), Some(20.0)).await;
    let fb = finding(db, &tb, "fb", "high", "B's finding", &[&sa]).await;
    // Rows of A about B's objects: a newer scan of B's target, an open critical finding on it,
    // a comment on B's finding.
    let tb_in_a = target_row::Model {
        org_id: org_a,
        ..tb.clone()
    };
    let sx = scan(
        db,
        &tb_in_a,
        "complete",
        now - Duration::hours(1),
        Some(99.0),
    )
    .await;
    finding(db, &tb_in_a, "fx", "critical", "A's finding", &[&sx]).await;
    comment::ActiveModel {
        id: Set(uuid::Uuid::now_v7()),
        org_id: Set(org_a),
        finding_id: Set(fb.id),
        author_id: Set(None),
        author_label: Set("someone@alpha.test".into()),
        body: Set("alpha-secret comment".into()),
        created_at: Set(now),
    }
    .insert(db)
    .await
    .unwrap();
    // A row of B about A's target: a scan of B whose target is A's.
    let ta_in_b = target_row::Model {
        org_id: org_b,
        ..ta.clone()
    };
    let sy = scan(
        db,
        &ta_in_b,
        "complete",
        now - Duration::hours(4),
        Some(10.0),
    )
    .await;

    let targets = "{ targets { edges { node { name latestScan { id } openFindings { critical high total } } } } }";
    let findings = "{ findings { edges { node { title target { name } latestScan { id } comments { body } } } } }";
    let b_targets = json!({"targets": {"edges": [{"node": {
        "name": "beta",
        "latestScan": {"id": sb.id},
        "openFindings": {"critical": 0, "high": 1, "total": 1},
    }}]}});
    let b_findings = json!({"findings": {"edges": [{"node": {
        "title": "B's finding",
        "target": {"name": "beta"},
        "latestScan": null,
        "comments": [],
    }}]}});

    // POST /graphql.
    let over_http = app.gql(Auth::Bearer(&as_b), targets, json!({})).await;
    assert_eq!(over_http.body, json!({"data": b_targets}));
    let over_http = app.gql(Auth::Bearer(&as_b), findings, json!({})).await;
    assert_eq!(over_http.body, json!({"data": b_findings}));
    let foreign_target = app
        .gql(
            Auth::Bearer(&as_b),
            "query($id: UUID!) { scan(id: $id) { target { name } } }",
            json!({"id": sy.id}),
        )
        .await;
    assert_eq!(foreign_target.code(), Some("NOT_FOUND"));
    assert!(!foreign_target.body.to_string().contains("alpha-secret"));

    // A WebSocket operation (its caller comes from `connection_init`).
    assert_eq!(
        over_websocket(&app, &as_b, targets).await,
        json!({"data": b_targets})
    );
    assert_eq!(
        over_websocket(&app, &as_b, findings).await,
        json!({"data": b_findings})
    );

    // REST rows (`target { name kind }` of a scan goes through the loader).
    let rest = |id: uuid::Uuid| {
        app.http
            .get(app.url(&format!("/api/v1/scans/{id}")))
            .bearer_auth(&as_b)
            .send()
    };
    let own = rest(sb.id).await.unwrap();
    assert_eq!(own.status(), 200);
    let own: Value = own.json().await.unwrap();
    assert_eq!(own["data"]["target"]["name"], "beta", "{own}");
    let foreign = rest(sy.id).await.unwrap();
    assert_eq!(foreign.status(), 404);
    let foreign: Value = foreign.json().await.unwrap();
    assert!(!foreign.to_string().contains("alpha-secret"), "{foreign}");
}
