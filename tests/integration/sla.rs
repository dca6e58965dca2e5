//! SLA (issue 17): the policy, due dates and states of open findings, counts, compliance, and
//! the filter, against numbers worked out by hand from findings written with chosen dates.

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use serde_json::{json, Value};

use crate::insights::rest;
use crate::support::builders::{finding_seen, org_id, target};
use crate::support::{Auth, TestApp, MEMBER_PASSWORD};

const SUMMARY: &str = "query($t: UUID) { slaSummary(targetId: $t) { onTime dueSoon breached met missed compliancePct } }";

fn pct(v: &Value) -> f64 {
    v["compliancePct"].as_f64().unwrap_or(-1.0)
}

async fn states(app: &TestApp, token: &str) -> BTreeMap<String, Value> {
    let res = app
        .gql(
            Auth::Bearer(token),
            "{ findings(pageSize: 500) { nodes { fingerprint slaState dueAt } } }",
            json!({}),
        )
        .await;
    res.data("findings")["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["fingerprint"].as_str().unwrap().to_string(),
                n["slaState"].clone(),
            )
        })
        .collect()
}

async fn filtered(app: &TestApp, token: &str, state: &str) -> Vec<String> {
    let res = app
        .gql(
            Auth::Bearer(token),
            &format!(
                "{{ findings(slaState: {state}, pageSize: 500) {{ nodes {{ fingerprint }} }} }}"
            ),
            json!({}),
        )
        .await;
    let mut out: Vec<String> = res.data("findings")["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["fingerprint"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn due_dates_states_counts_and_compliance() {
    let app = TestApp::spawn().await;
    let owner = app.login_admin().await;
    app.add_member(&owner, "dev@acme.test", "MEMBER").await;
    let member = app.login("dev@acme.test", MEMBER_PASSWORD).await.0;
    let db = &app.state.db;
    let org = org_id(db, "default").await;
    let t1 = target(db, org, "repository", "t1", json!({})).await;
    let t2 = target(db, org, "host", "t2", json!({})).await;

    let policy = app
        .gql(
            Auth::Bearer(&member),
            "{ slaPolicy { criticalDays highDays mediumDays lowDays infoDays updatedAt } }",
            json!({}),
        )
        .await;
    assert_eq!(
        policy.data("slaPolicy"),
        &json!({"criticalDays": 7, "highDays": 30, "mediumDays": 90, "lowDays": 180, "infoDays": null, "updatedAt": null})
    );

    let now = Utc::now();
    let ago = |days: i64| now - Duration::days(days);
    // fingerprint, target, severity, first seen (days ago), fixed (days ago)
    let rows: [(&str, &entity::target::Model, &str, i64, Option<i64>); 17] = [
        ("c1", &t1, "critical", 8, None),      // due 1 day ago: breached
        ("c2", &t1, "critical", 6, None),      // due in 24 h ≤ 33.6 h: due soon
        ("c3", &t1, "critical", 1, None),      // due in 6 days: on time
        ("h1", &t1, "high", 25, None),         // due in 5 days ≤ 6: due soon
        ("h2", &t1, "high", 40, None),         // breached
        ("h3", &t1, "high", 40, None),         // accepted risk: outside
        ("fp", &t1, "high", 40, None),         // false positive: outside
        ("m1", &t2, "medium", 100, None),      // breached
        ("l1", &t2, "low", 10, None),          // on time
        ("i1", &t1, "info", 400, None),        // no SLA
        ("i2", &t1, "info", 1, None),          // due in 3 days by hand: due soon
        ("fh1", &t1, "high", 20, Some(5)),     // fixed after 15 days ≤ 30: met
        ("fh2", &t1, "high", 50, Some(10)),    // after 40 days: missed
        ("fc1", &t1, "critical", 10, Some(1)), // after 9 days > 7: missed
        ("fc2", &t1, "critical", 3, Some(2)),  // after 1 day: met
        ("fi", &t1, "info", 10, Some(1)),      // no SLA: neither
        ("old", &t1, "high", 100, Some(60)),   // fixed before the period
    ];
    let mut ids = BTreeMap::new();
    for (fp, t, severity, seen, fixed) in rows {
        let row = finding_seen(
            db,
            t,
            fp,
            severity,
            "semgrep",
            &format!("rule.{fp}"),
            &[],
            ago(seen),
            fixed.map(ago),
        )
        .await;
        ids.insert(fp, row.id);
    }
    let triage = |id: uuid::Uuid, input: Value| {
        let app = &app;
        let member = &member;
        async move {
            let res = app
                .gql(
                    Auth::Bearer(member),
                    "mutation($id: UUID!, $input: SetFindingStateInput!) { setFindingState(id: $id, input: $input) { id } }",
                    json!({"id": id, "input": input}),
                )
                .await;
            assert_eq!(res.code(), None, "{}", res.body);
        }
    };
    triage(
        ids["h3"],
        json!({"state": "ACCEPTED_RISK", "expiresAt": (now + Duration::days(30)).to_rfc3339()}),
    )
    .await;
    triage(ids["fp"], json!({"state": "FALSE_POSITIVE"})).await;
    // An explicit due date, through REST (members may).
    let due = (now + Duration::days(3))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let (status, body) = rest(
        &app,
        &member,
        reqwest::Method::PUT,
        &format!("/api/v1/findings/{}/due-date", ids["i2"]),
        Some(json!({"due_at": due})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let stored: chrono::DateTime<Utc> = body["data"]["due_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(stored, due.parse::<chrono::DateTime<Utc>>().unwrap());
    assert_eq!(body["data"]["sla_state"], "due_soon");

    let expected: BTreeMap<String, Value> = [
        ("c1", "BREACHED"),
        ("c2", "DUE_SOON"),
        ("c3", "ON_TIME"),
        ("h1", "DUE_SOON"),
        ("h2", "BREACHED"),
        ("m1", "BREACHED"),
        ("l1", "ON_TIME"),
        ("i2", "DUE_SOON"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), json!(v)))
    .chain(
        ["h3", "fp", "i1", "fh1", "fh2", "fc1", "fc2", "fi", "old"]
            .into_iter()
            .map(|k| (k.to_string(), Value::Null)),
    )
    .collect();
    assert_eq!(states(&app, &member).await, expected);
    // The filter agrees with the states shown.
    assert_eq!(
        filtered(&app, &member, "BREACHED").await,
        ["c1", "h2", "m1"]
    );
    assert_eq!(
        filtered(&app, &member, "DUE_SOON").await,
        ["c2", "h1", "i2"]
    );
    assert_eq!(filtered(&app, &member, "ON_TIME").await, ["c3", "l1"]);

    // Org: 2 on time, 3 due soon, 3 breached; in 30 days met fh1 and fc2, missed fh2 and fc1:
    // 2 / (2 + 2 + 3).
    let s = app.gql(Auth::Bearer(&member), SUMMARY, json!({})).await;
    let s = s.data("slaSummary");
    assert_eq!(
        (
            &s["onTime"],
            &s["dueSoon"],
            &s["breached"],
            &s["met"],
            &s["missed"]
        ),
        (&json!(2), &json!(3), &json!(3), &json!(2), &json!(2)),
        "{s}"
    );
    assert!((pct(s) - 200.0 / 7.0).abs() < 1e-9, "{s}");
    // t2: l1 on time, m1 breached, nothing fixed: 0 %.
    let s = app
        .gql(Auth::Bearer(&member), SUMMARY, json!({"t": t2.id}))
        .await;
    let s = s.data("slaSummary");
    assert_eq!(
        (&s["onTime"], &s["breached"]),
        (&json!(1), &json!(1)),
        "{s}"
    );
    assert_eq!(pct(s), 0.0);

    // A due date set by hand wins over the policy: c1 is due in 10 days, on time.
    let res = app
        .gql(
            Auth::Bearer(&member),
            "mutation($id: UUID!, $d: DateTime) { setFindingDueDate(id: $id, dueAt: $d) { slaState dueAt } }",
            json!({"id": ids["c1"], "d": (now + Duration::days(10)).to_rfc3339()}),
        )
        .await;
    assert_eq!(
        res.data("setFindingDueDate")["slaState"],
        "ON_TIME",
        "{}",
        res.body
    );
    let s = app.gql(Auth::Bearer(&member), SUMMARY, json!({})).await;
    let s = s.data("slaSummary");
    assert_eq!(
        (&s["onTime"], &s["breached"]),
        (&json!(3), &json!(2)),
        "{s}"
    );
    assert!((pct(s) - 100.0 / 3.0).abs() < 1e-9, "{s}");

    // Admins change the policy: high 45 days makes h2 (40 days) due in 5 ≤ 7 (20% of 45 = 9,
    // capped at 7), and h1 on time; fh2 (fixed after 40 days) now met. Info gets 30 days.
    let (status, body) = rest(
        &app,
        &member,
        reqwest::Method::PATCH,
        "/api/v1/sla/policy",
        Some(json!({"high_days": 45})),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = rest(
        &app,
        &owner,
        reqwest::Method::PATCH,
        "/api/v1/sla/policy",
        Some(json!({"high_days": 45, "info_days": 30})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["high_days"], 45);
    assert_eq!(body["data"]["critical_days"], 7);
    assert_eq!(body["data"]["info_days"], 30);
    assert_eq!(body["data"]["updated_by"], crate::support::ADMIN_EMAIL);
    let states_now = states(&app, &member).await;
    assert_eq!(states_now["h2"], "DUE_SOON");
    assert_eq!(states_now["h1"], "ON_TIME");
    // i1 (info, 400 days) is breached now; fi (info fixed after 9 days ≤ 30) is met.
    assert_eq!(states_now["i1"], "BREACHED");
    let (status, body) = rest(
        &app,
        &member,
        reqwest::Method::GET,
        "/api/v1/sla/summary",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // on time c1 c3 l1 h1; due soon c2 i2 h2; breached m1 i1; met fh1 fh2 fc2 fi; missed fc1.
    assert_eq!(
        body["data"],
        json!({"target_id": null, "period": "30d", "on_time": 4, "due_soon": 3, "breached": 2,
            "met": 4, "missed": 1, "compliance_pct": 400.0 / 7.0})
    );
    let (status, body) = rest(
        &app,
        &member,
        reqwest::Method::GET,
        "/api/v1/findings?sla_state=breached",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["meta"]["total"], 2, "{body}");
    // `null` removes a severity's SLA; days out of range are refused.
    let cleared = app
        .gql(
            Auth::Bearer(&owner),
            "mutation { updateSlaPolicy(input: {infoDays: null}) { infoDays highDays } }",
            json!({}),
        )
        .await;
    assert_eq!(
        cleared.data("updateSlaPolicy"),
        &json!({"infoDays": null, "highDays": 45})
    );
    let refused = app
        .gql(
            Auth::Bearer(&owner),
            "mutation { updateSlaPolicy(input: {lowDays: 0}) { lowDays } }",
            json!({}),
        )
        .await;
    assert_eq!(
        refused.code(),
        Some("VALIDATION_FAILED"),
        "{}",
        refused.body
    );

    // Both changes are in the audit log.
    let audit = app
        .gql(
            Auth::Bearer(&owner),
            "{ auditEvents(pageSize: 100) { nodes { action details } } }",
            json!({}),
        )
        .await;
    let events = audit.data("auditEvents")["nodes"]
        .as_array()
        .unwrap()
        .clone();
    let policy_changes: Vec<&Value> = events
        .iter()
        .filter(|e| e["action"] == "sla_policy.update")
        .collect();
    assert_eq!(policy_changes.len(), 2, "{events:?}");
    assert_eq!(
        policy_changes[1]["details"]["from"]["high_days"], 30,
        "{events:?}"
    );
    assert_eq!(
        policy_changes[1]["details"]["to"]["high_days"], 45,
        "{events:?}"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e["action"] == "finding.due_date")
            .count(),
        2
    );
}
