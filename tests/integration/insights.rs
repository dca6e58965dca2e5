//! Dashboard figures, finding-count trends and the risk score (issue 17), against numbers
//! worked out by hand from the findings each test writes.

use chrono::{DateTime, Duration, Utc};
use entity::target;
use rampart::ingest::synthetic::{sarif, SyntheticResult};
use serde_json::{json, Value};

use crate::support::builders::{finding_seen, org_id, target};
use crate::support::{Auth, TestApp};

fn sev(critical: i64, high: i64, medium: i64, low: i64) -> Value {
    json!({"critical": critical, "high": high, "medium": medium, "low": low, "info": 0,
        "total": critical + high + medium + low})
}

/// A REST call as `token`: status and body.
pub(crate) async fn rest(
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
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn rest_get(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    rest(app, token, reqwest::Method::GET, path, None).await
}

fn close(actual: &Value, expected: f64) -> bool {
    actual.as_f64().is_some_and(|a| (a - expected).abs() < 1e-6)
}

const STATS: &str = "query($t: UUID, $period: String, $top: Int) { findingStats(targetId: $t, period: $period, top: $top) {
    riskScore open { critical high medium low info total }
    bySeverityStatus { severity status count }
    byTargetKind { kind counts { critical high medium low info total } }
    byScanner { scanner counts { critical high medium low info total } }
    topRules { scanner ruleId count } topCwes { cwe count }
    ageBuckets { bucket minDays maxDays counts { critical high medium low info total } }
    timeToFix { severity fixed meanHours medianHours } } }";

/// Two uploaded SARIF reports: per kind, scanner, rule and CWE, and the risk score.
#[tokio::test]
async fn stats_of_uploaded_reports() {
    let app = TestApp::spawn().await;
    let token = app.login_admin().await;
    // Synthetic result n: rule-(n % 50) with CWE-(79 + n % 50); level error/warning/note for
    // n % 3 = 0/1/2, i.e. high/medium/low.
    let web: Vec<SyntheticResult> = [0, 50, 100, 1, 51, 3]
        .into_iter()
        .map(SyntheticResult::numbered)
        .collect();
    // web: rule-0 ×3 (high, low, medium), rule-1 ×2 (medium, high), rule-3 ×1 (high).
    let scan = app
        .ingest_and_wait(
            Auth::Bearer(&token),
            "target=web&target_kind=repository",
            sarif("semgrep", web),
        )
        .await;
    assert_eq!(scan["status"], "COMPLETE", "{scan}");
    let web_id = scan["targetId"].clone();
    let img = app
        .ingest_and_wait(
            Auth::Bearer(&token),
            "target=img&target_kind=container_image",
            sarif("trivy", [SyntheticResult::numbered(0)]),
        )
        .await;
    assert_eq!(img["status"], "COMPLETE", "{img}");

    let org = app
        .gql(Auth::Bearer(&token), STATS, json!({"top": 2}))
        .await;
    let s = org.data("findingStats");
    assert_eq!(s["open"], sev(0, 4, 2, 1), "{s}");
    assert_eq!(
        s["bySeverityStatus"],
        json!([
            {"severity": "HIGH", "status": "OPEN", "count": 4},
            {"severity": "MEDIUM", "status": "OPEN", "count": 2},
            {"severity": "LOW", "status": "OPEN", "count": 1},
        ])
    );
    assert_eq!(
        s["byTargetKind"],
        json!([
            {"kind": "CONTAINER_IMAGE", "counts": sev(0, 1, 0, 0)},
            {"kind": "REPOSITORY", "counts": sev(0, 3, 2, 1)},
        ])
    );
    assert_eq!(
        s["byScanner"],
        json!([
            {"scanner": "semgrep", "counts": sev(0, 3, 2, 1)},
            {"scanner": "trivy", "counts": sev(0, 1, 0, 0)},
        ])
    );
    assert_eq!(
        s["topRules"],
        json!([
            {"scanner": "semgrep", "ruleId": "rampart.synthetic.rule-0", "count": 3},
            {"scanner": "semgrep", "ruleId": "rampart.synthetic.rule-1", "count": 2},
        ])
    );
    assert_eq!(
        s["topCwes"],
        json!([{"cwe": "CWE-79", "count": 4}, {"cwe": "CWE-80", "count": 2}])
    );
    // W = 10·4 + 4·2 + 1 = 49.
    assert!(close(&s["riskScore"], 25.0 * 50f64.log10()), "{s}");
    // Everything was first seen just now.
    assert_eq!(s["ageBuckets"][0]["counts"], sev(0, 4, 2, 1));
    assert_eq!(s["ageBuckets"][3]["counts"], sev(0, 0, 0, 0));
    assert_eq!(s["timeToFix"], json!([]));

    // One target: its figures only, and its risk score on the target too (W = 30 + 8 + 1).
    let one = app
        .gql(Auth::Bearer(&token), STATS, json!({"t": web_id, "top": 10}))
        .await;
    let s = one.data("findingStats");
    assert_eq!(s["open"], sev(0, 3, 2, 1));
    assert_eq!(s["topCwes"].as_array().unwrap().len(), 3, "{s}");
    assert_eq!(s["topCwes"][2], json!({"cwe": "CWE-82", "count": 1}));
    let target = app
        .gql(
            Auth::Bearer(&token),
            "query($id: UUID!) { target(id: $id) { riskScore lastScore } }",
            json!({"id": web_id}),
        )
        .await;
    assert!(
        close(&target.data("target")["riskScore"], 25.0 * 40f64.log10()),
        "{}",
        target.body
    );

    // REST: the same figures, snake_case, from the route table.
    let (status, body) = rest_get(
        &app,
        &token,
        &format!("/api/v1/stats?target_id={}&top=1", web_id.as_str().unwrap()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["open"], sev(0, 3, 2, 1));
    assert_eq!(
        body["data"]["top_rules"],
        json!([{"scanner": "semgrep", "rule_id": "rampart.synthetic.rule-0", "count": 3}])
    );
    let (status, body) = rest_get(&app, &token, "/api/v1/targets").await;
    assert_eq!(status, 200, "{body}");
    assert!(body["data"][0]["risk_score"].is_number(), "{body}");
    let (status, body) = rest_get(&app, &token, "/api/v1/stats?top=0").await;
    assert_eq!(status, 422, "{body}");
}

/// A history written with chosen timestamps: ages, time to fix, new vs fixed, and the
/// finding-count trend of the org and of one target.
#[tokio::test]
async fn history_figures_and_finding_trends() {
    let app = TestApp::spawn().await;
    let token = app.login_admin().await;
    let db = &app.state.db;
    let org = org_id(db, "default").await;
    let t1 = target(db, org, "repository", "t1", json!({})).await;
    let t2 = target(db, org, "host", "t2", json!({})).await;
    let now = Utc::now();
    let ago = |days: i64| now - Duration::days(days);
    let rows: [(&str, &target::Model, &str, i64, Option<i64>); 11] = [
        // open
        ("a", &t1, "critical", 2, None),
        ("b", &t1, "high", 10, None),
        ("c", &t1, "high", 45, None),
        ("d", &t2, "medium", 100, None),
        ("e", &t2, "low", 6, None),
        // fixed: first seen, fixed (days ago)
        ("f", &t1, "high", 20, Some(18)),
        ("g", &t1, "high", 10, Some(9)),
        ("h", &t1, "high", 5, Some(1)),
        ("i", &t2, "critical", 3, Some(2)),
        ("k", &t2, "critical", 4, Some(1)),
        ("j", &t1, "medium", 200, Some(100)),
    ];
    for (fp, t, severity, seen, fixed) in rows {
        finding_seen(
            db,
            t,
            fp,
            severity,
            "semgrep",
            &format!("rule.{fp}"),
            &["CWE-89"],
            ago(seen),
            fixed.map(ago),
        )
        .await;
    }

    let stats = app
        .gql(Auth::Bearer(&token), STATS, json!({"period": "30d"}))
        .await;
    let s = stats.data("findingStats");
    assert_eq!(s["open"], sev(1, 2, 1, 1), "{s}");
    assert_eq!(
        s["bySeverityStatus"],
        json!([
            {"severity": "CRITICAL", "status": "FIXED", "count": 2},
            {"severity": "CRITICAL", "status": "OPEN", "count": 1},
            {"severity": "HIGH", "status": "FIXED", "count": 3},
            {"severity": "HIGH", "status": "OPEN", "count": 2},
            {"severity": "MEDIUM", "status": "FIXED", "count": 1},
            {"severity": "MEDIUM", "status": "OPEN", "count": 1},
            {"severity": "LOW", "status": "OPEN", "count": 1},
        ])
    );
    assert_eq!(
        s["ageBuckets"],
        json!([
            {"bucket": "0-7", "minDays": 0, "maxDays": 7, "counts": sev(1, 0, 0, 1)},
            {"bucket": "8-30", "minDays": 8, "maxDays": 30, "counts": sev(0, 1, 0, 0)},
            {"bucket": "31-90", "minDays": 31, "maxDays": 90, "counts": sev(0, 1, 0, 0)},
            {"bucket": ">90", "minDays": 91, "maxDays": null, "counts": sev(0, 0, 1, 0)},
        ])
    );
    // Fixed in the last 30 days: critical i 24 h, k 72 h; high f 48 h, g 24 h, h 96 h
    // (j, fixed 100 days ago, is outside the period).
    let ttf = s["timeToFix"].as_array().unwrap();
    assert_eq!(ttf.len(), 2, "{s}");
    assert_eq!(ttf[0]["severity"], "CRITICAL");
    assert_eq!(ttf[0]["fixed"], 2);
    assert!(
        close(&ttf[0]["meanHours"], 48.0) && close(&ttf[0]["medianHours"], 48.0),
        "{s}"
    );
    assert_eq!(ttf[1]["severity"], "HIGH");
    assert_eq!(ttf[1]["fixed"], 3);
    assert!(
        close(&ttf[1]["meanHours"], 56.0) && close(&ttf[1]["medianHours"], 48.0),
        "{s}"
    );
    // Open, not settled: critical 1, high 2, medium 1, low 1 → W = 20 + 20 + 4 + 1 = 45.
    assert!(close(&s["riskScore"], 25.0 * 46f64.log10()), "{s}");

    // Seven days by day: 8 buckets, the first holding now - 7 days, so "k days ago" falls in
    // bucket 7 - k.
    let flows = app
        .gql(
            Auth::Bearer(&token),
            "{ findingStats(period: \"7d\") { newVsFixed { start new fixed } } }",
            json!({}),
        )
        .await;
    let flows = flows.data("findingStats")["newVsFixed"]
        .as_array()
        .unwrap()
        .clone();
    let new: Vec<i64> = flows.iter().map(|p| p["new"].as_i64().unwrap()).collect();
    let fixed: Vec<i64> = flows.iter().map(|p| p["fixed"].as_i64().unwrap()).collect();
    // new: e (6 days ago), h (5), k (4), i (3), a (2); fixed: i (2), h and k (1).
    assert_eq!(new, [0, 1, 1, 1, 1, 1, 0, 0]);
    assert_eq!(fixed, [0, 0, 0, 0, 0, 1, 2, 0]);
    let first: DateTime<Utc> = flows[0]["start"].as_str().unwrap().parse().unwrap();
    assert_eq!(first.date_naive(), ago(7).date_naive());

    // The org's open findings at the end of each day: b, c, d open before the period; then
    // +e, +h, +k, +i, +a -i, -h -k.
    let trend = |target: Option<uuid::Uuid>| {
        let app = &app;
        let token = &token;
        async move {
            app.gql(
                Auth::Bearer(token),
                "query($t: UUID) { findingTrend(targetId: $t, period: \"7d\") { start at open { critical high medium low info total } } }",
                json!({"t": target}),
            )
            .await
            .data("findingTrend")
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["open"].clone())
            .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        trend(None).await,
        [
            sev(0, 2, 1, 0),
            sev(0, 2, 1, 1),
            sev(0, 3, 1, 1),
            sev(1, 3, 1, 1),
            sev(2, 3, 1, 1),
            sev(2, 3, 1, 1),
            sev(1, 2, 1, 1),
            sev(1, 2, 1, 1),
        ]
    );
    // t1: b, c before; +h; +a; -h.
    assert_eq!(
        trend(Some(t1.id)).await,
        [
            sev(0, 2, 0, 0),
            sev(0, 2, 0, 0),
            sev(0, 3, 0, 0),
            sev(0, 3, 0, 0),
            sev(0, 3, 0, 0),
            sev(1, 3, 0, 0),
            sev(1, 2, 0, 0),
            sev(1, 2, 0, 0),
        ]
    );
    // Weeks start on Mondays; REST rows serve both trends.
    let (status, body) = rest_get(
        &app,
        &token,
        "/api/v1/trends/findings?period=30d&interval=week",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let weeks = body["data"].as_array().unwrap();
    assert!((5..=6).contains(&weeks.len()), "{body}");
    for week in weeks {
        let start: DateTime<Utc> = week["start"].as_str().unwrap().parse().unwrap();
        assert_eq!(start.format("%a %H:%M").to_string(), "Mon 00:00", "{week}");
    }
    assert_eq!(weeks.last().unwrap()["open"], sev(1, 2, 1, 1));
    let (status, body) = rest_get(
        &app,
        &token,
        &format!("/api/v1/trends/{}/findings?period=7d", t2.id),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // t2: d before; +e (6 days ago), +k, +i, -i, -k.
    assert_eq!(body["data"][7]["open"], sev(0, 0, 1, 1), "{body}");
    assert_eq!(body["data"][4]["open"], sev(2, 0, 1, 1), "{body}");
}
