//! The GraphQL API over HTTP: lists with filters, order and paging, trends, mutations, limits.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use chrono::{Duration, Utc};
use sea_orm::EntityTrait;
use serde_json::{json, Value};

use crate::support::builders::{finding, org_id, scan, target};
use crate::support::{Auth, TestApp, TestConfig};

fn names(list: &Value, field: &str) -> Vec<String> {
    list["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["node"][field]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| e["node"][field].to_string())
        })
        .collect()
}

#[tokio::test]
async fn targets_filter_order_and_page() {
    let app = TestApp::spawn().await;
    let token = app.login_admin().await;
    let db = &app.state.db;
    let org = org_id(db, "default").await;
    for (kind, name, labels) in [
        (
            "repository",
            "api-gateway",
            json!({"env": "prod", "team": "edge"}),
        ),
        ("repository", "billing", json!({"env": "staging"})),
        ("container_image", "api-image", json!({"env": "prod"})),
        ("kafka_cluster", "prod-us", json!({})),
        ("host", "bastion", json!({"team": "ops"})),
    ] {
        target(db, org, kind, name, labels).await;
    }
    let q = |args: &str| {
        format!("{{ targets{} {{ totalCount page pageSize totalPages pageInfo {{ hasNextPage hasPreviousPage }} edges {{ cursor node {{ name kind }} }} }} }}", if args.is_empty() { String::new() } else { format!("({args})") })
    };
    let run = |args: String| {
        let app = &app;
        let token = token.clone();
        async move {
            app.gql(Auth::Bearer(&token), &args, json!({}))
                .await
                .data("targets")
                .clone()
        }
    };

    let all = run(q("")).await;
    assert_eq!(all["totalCount"], 5);
    assert_eq!(
        names(&all, "name"),
        ["api-gateway", "api-image", "bastion", "billing", "prod-us"]
    );

    assert_eq!(
        names(&run(q("kind: REPOSITORY")).await, "name"),
        ["api-gateway", "billing"]
    );
    assert_eq!(
        names(&run(q("search: \"API\"")).await, "name"),
        ["api-gateway", "api-image"]
    );
    assert_eq!(
        names(&run(q("label: \"env=prod\"")).await, "name"),
        ["api-gateway", "api-image"]
    );
    assert_eq!(
        names(&run(q("label: \"team\"")).await, "name"),
        ["api-gateway", "bastion"]
    );
    assert_eq!(
        names(
            &run(q("orderBy: {field: NAME, direction: DESC}, pageSize: 2")).await,
            "name"
        ),
        ["prod-us", "billing"]
    );

    // Pages: first, middle, last, beyond the end.
    let first = run(q("page: 1, pageSize: 2")).await;
    assert_eq!(
        (first["page"].clone(), first["totalPages"].clone()),
        (json!(1), json!(3))
    );
    assert_eq!(
        first["pageInfo"],
        json!({"hasNextPage": true, "hasPreviousPage": false})
    );
    let middle = run(q("page: 2, pageSize: 2")).await;
    assert_eq!(names(&middle, "name"), ["bastion", "billing"]);
    let last = run(q("page: 3, pageSize: 2")).await;
    assert_eq!(names(&last, "name"), ["prod-us"]);
    assert_eq!(
        last["pageInfo"],
        json!({"hasNextPage": false, "hasPreviousPage": true})
    );
    let beyond = run(q("page: 9, pageSize: 2")).await;
    assert!(beyond["edges"].as_array().unwrap().is_empty());
    assert_eq!(beyond["totalCount"], 5);
    let empty = run(q("search: \"nothing-matches\"")).await;
    assert_eq!(
        (empty["totalCount"].clone(), empty["totalPages"].clone()),
        (json!(0), json!(0))
    );

    // Relay cursors walk the same order.
    let cursor = first["edges"][1]["cursor"].as_str().unwrap().to_string();
    let after = run(q(&format!("first: 2, after: \"{cursor}\""))).await;
    assert_eq!(names(&after, "name"), ["bastion", "billing"]);
}

#[tokio::test]
async fn scans_and_findings_filters() {
    let app = TestApp::spawn().await;
    let token = app.login_admin().await;
    let db = &app.state.db;
    let org = org_id(db, "default").await;
    let t1 = target(db, org, "repository", "svc-a", json!({})).await;
    let t2 = target(db, org, "repository", "svc-b", json!({})).await;
    let now = Utc::now();
    let old = scan(db, &t1, "complete", now - Duration::days(10), Some(60.0)).await;
    let recent = scan(db, &t1, "complete", now - Duration::days(1), Some(80.0)).await;
    let failed = scan(db, &t2, "failed", now - Duration::days(2), None).await;
    finding(
        db,
        &t1,
        "sqli",
        "critical",
        "SQL injection",
        &[&old, &recent],
    )
    .await;
    finding(db, &t1, "xss", "high", "Cross-site scripting", &[&recent]).await;
    finding(db, &t1, "weak-hash", "medium", "Weak hash", &[&old]).await;
    finding(db, &t2, "debug", "low", "Debug enabled", &[&failed]).await;

    let gql = |query: String| {
        let app = &app;
        let token = token.clone();
        async move { app.gql(Auth::Bearer(&token), &query, json!({})).await }
    };
    let scans =
        gql("{ scans { totalCount edges { node { id status score target { name } } } } }".into())
            .await;
    let ids: Vec<_> = names(scans.data("scans"), "id");
    assert_eq!(
        ids,
        [
            recent.id.to_string(),
            failed.id.to_string(),
            old.id.to_string()
        ],
        "newest first"
    );
    let by_target = gql(format!(
        "{{ scans(targetId: \"{}\", status: [COMPLETE]) {{ totalCount }} }}",
        t1.id
    ))
    .await;
    assert_eq!(by_target.data("scans")["totalCount"], 2);
    let since = (now - Duration::days(3)).to_rfc3339();
    let windowed = gql(format!(
        "{{ scans(since: \"{since}\", status: [COMPLETE, FAILED]) {{ totalCount }} }}"
    ))
    .await;
    assert_eq!(windowed.data("scans")["totalCount"], 2);

    let findings = gql("{ findings { edges { node { title severity } } } }".into()).await;
    assert_eq!(
        names(findings.data("findings"), "severity"),
        ["CRITICAL", "HIGH", "MEDIUM", "LOW"],
        "worst first"
    );
    let high_up = gql("{ findings(severity: [CRITICAL, HIGH]) { totalCount } }".into()).await;
    assert_eq!(high_up.data("findings")["totalCount"], 2);
    let in_scan = gql(format!(
        "{{ findings(scanId: \"{}\") {{ totalCount }} }}",
        old.id
    ))
    .await;
    assert_eq!(in_scan.data("findings")["totalCount"], 2);
    let by_cve =
        gql("{ findings(cve: \"cve-2024-4\") { edges { node { title cveIds } } } }".into()).await;
    assert_eq!(names(by_cve.data("findings"), "title"), ["SQL injection"]);
    let search = gql("{ findings(search: \"SCRIPT\") { edges { node { title } } } }".into()).await;
    assert_eq!(
        names(search.data("findings"), "title"),
        ["Cross-site scripting"]
    );
    let by_rule = gql("{ findings(ruleId: \"rule.debug\", targetId: \"00000000-0000-0000-0000-000000000000\") { totalCount } }".into()).await;
    assert_eq!(by_rule.data("findings")["totalCount"], 0);
    let by_title = gql(
        "{ findings(orderBy: {field: TITLE, direction: ASC}) { edges { node { title } } } }".into(),
    )
    .await;
    assert_eq!(
        names(by_title.data("findings"), "title")[0],
        "Cross-site scripting"
    );

    let scan_findings = gql(format!("{{ scanFindings(scanId: \"{}\") {{ totalCount edges {{ node {{ title target {{ name }} latestScan {{ id }} }} }} }} }}", recent.id)).await;
    assert_eq!(scan_findings.data("scanFindings")["totalCount"], 2);
    let summary = gql(format!(
        "{{ scanSummary(scanId: \"{}\") {{ status score durationMs }} }}",
        recent.id
    ))
    .await;
    assert_eq!(
        summary.data("scanSummary"),
        &json!({"status": "COMPLETE", "score": 80.0, "durationMs": 2000})
    );

    let compare = gql(format!("{{ compareScans(scanA: \"{}\", scanB: \"{}\") {{ new {{ nodes {{ title }} }} fixed {{ nodes {{ title }} }} unchanged {{ nodes {{ title }} }} }} }}", old.id, recent.id)).await;
    assert_eq!(
        compare.data("compareScans"),
        &json!({
            "new": {"nodes": [{"title": "Cross-site scripting"}]},
            "fixed": {"nodes": [{"title": "Weak hash"}]},
            "unchanged": {"nodes": [{"title": "SQL injection"}]},
        })
    );
    let across = gql(format!(
        "{{ compareScans(scanA: \"{}\", scanB: \"{}\") {{ new {{ nodes {{ title }} }} }} }}",
        old.id, failed.id
    ))
    .await;
    assert_eq!(across.code(), Some("BAD_REQUEST"));

    let target_view = gql(format!("{{ target(id: \"{}\") {{ lastScore latestScan {{ id }} openFindings {{ critical high medium low total }} }} }}", t1.id)).await;
    assert_eq!(
        target_view.data("target"),
        &json!({
            "lastScore": 80.0,
            "latestScan": {"id": recent.id.to_string()},
            "openFindings": {"critical": 1, "high": 1, "medium": 1, "low": 0, "total": 3},
        })
    );
}

#[tokio::test]
async fn trends_and_fleet_match_hand_computed_answers() {
    let app = TestApp::spawn().await;
    let token = app.login_admin().await;
    let db = &app.state.db;
    let org = org_id(db, "default").await;
    let now = Utc::now();
    let day = |n: i64| now - Duration::days(n);

    // Dropping: 80 (40 days ago, outside 30d), 75 (20d), 72 (10d), 70 (2d).
    let dropping = target(db, org, "kafka_cluster", "a-dropping", json!({})).await;
    scan(db, &dropping, "complete", day(40), Some(80.0)).await;
    let s20 = scan(db, &dropping, "complete", day(20), Some(75.0)).await;
    scan(db, &dropping, "complete", day(10), Some(72.0)).await;
    scan(db, &dropping, "failed", day(5), None).await;
    let s2 = scan(db, &dropping, "complete", day(2), Some(70.0)).await;
    // One scan in the period.
    let single = target(db, org, "kafka_cluster", "b-single", json!({})).await;
    scan(db, &single, "complete", day(3), Some(90.0)).await;
    // Scanned, but not in the last 30 days.
    let stale = target(db, org, "kafka_cluster", "c-stale", json!({})).await;
    scan(db, &stale, "complete", day(60), Some(55.0)).await;
    // Never scanned.
    target(db, org, "kafka_cluster", "d-never", json!({})).await;

    let fleet = app
        .gql(
            Auth::Bearer(&token),
            "{ fleetComparison(period: \"30d\") { nodes { name currentScore deltaPct sparkline } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        &fleet.data("fleetComparison")["nodes"],
        &json!([
            {"name": "a-dropping", "currentScore": 70.0, "deltaPct": -5.0, "sparkline": [75.0, 72.0, 70.0]},
            {"name": "b-single", "currentScore": 90.0, "deltaPct": 0.0, "sparkline": [90.0]},
            {"name": "c-stale", "currentScore": 55.0, "deltaPct": null, "sparkline": []},
            {"name": "d-never", "currentScore": null, "deltaPct": null, "sparkline": []},
        ])
    );
    let default_period = app
        .gql(
            Auth::Bearer(&token),
            "{ fleetComparison { nodes { name deltaPct } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        default_period.data("fleetComparison")["nodes"][0]["deltaPct"],
        -5.0
    );
    let year = app
        .gql(
            Auth::Bearer(&token),
            "{ fleetComparison(period: \"1y\") { nodes { deltaPct } } }",
            json!({}),
        )
        .await;
    assert_eq!(year.data("fleetComparison")["nodes"][0]["deltaPct"], -10.0);

    let trend = app
        .gql(
            Auth::Bearer(&token),
            &format!(
                "{{ targetTrend(targetId: \"{}\", period: \"30d\") {{ nodes {{ scanId score }} }} }}",
                dropping.id
            ),
            json!({}),
        )
        .await;
    let points = trend.data("targetTrend")["nodes"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(points.len(), 3);
    assert_eq!(
        points[0],
        json!({"scanId": s20.id.to_string(), "score": 75.0})
    );
    assert_eq!(
        points[2],
        json!({"scanId": s2.id.to_string(), "score": 70.0})
    );
    let week = app
        .gql(
            Auth::Bearer(&token),
            &format!(
                "{{ targetTrend(targetId: \"{}\", period: \"7d\") {{ nodes {{ score }} }} }}",
                dropping.id
            ),
            json!({}),
        )
        .await;
    assert_eq!(week.data("targetTrend")["nodes"], json!([{"score": 70.0}]));
    let bad = app
        .gql(
            Auth::Bearer(&token),
            &format!(
                "{{ targetTrend(targetId: \"{}\", period: \"2w\") {{ nodes {{ score }} }} }}",
                dropping.id
            ),
            json!({}),
        )
        .await;
    assert_eq!(bad.code(), Some("VALIDATION_FAILED"));
}

/// Burns CPU until dropped: OS threads spinning on every core, and tasks on the test's runtime
/// that keep its workers busy beside the server's own tasks.
struct CpuLoad {
    stop: Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl CpuLoad {
    fn start() -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let spin = |stop: &std::sync::atomic::AtomicBool| {
            let mut x = 0u64;
            for i in 0..20_000u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
            !stop.load(Ordering::Relaxed)
        };
        let threads = (0..2 * cores)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || while spin(&stop) {})
            })
            .collect();
        let tasks = (0..2 * cores)
            .map(|_| {
                let stop = stop.clone();
                tokio::spawn(async move {
                    while spin(&stop) {
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        Self {
            stop,
            threads,
            tasks,
        }
    }
}

impl Drop for CpuLoad {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Each nested relation costs one statement per query, however many rows and however busy the
/// machine: loaders batch what one resolver level asks for, with no timing involved. Measured
/// five times per size, while other threads and tasks compete for every core.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nested_relations_cost_a_constant_number_of_statements() {
    let mut tc = TestConfig::new().await;
    // No workers: their polling for jobs would add statements at random moments.
    tc.config.workers = 0;
    let mut backends = rampart::app::open_backends(&tc.config).await.unwrap();
    let statements = Arc::new(AtomicUsize::new(0));
    let counter = statements.clone();
    let log = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sink = log.clone();
    backends.db.set_metric_callback(move |info| {
        counter.fetch_add(1, Ordering::SeqCst);
        sink.lock()
            .unwrap()
            .push(info.statement.sql.chars().take(90).collect());
    });
    let app = TestApp::spawn_with_backends(tc.config.clone(), backends).await;
    let token = app.login_admin().await;
    let db = &app.state.db;
    let org = org_id(db, "default").await;
    let now = Utc::now();
    for i in 0..100 {
        let t = target(db, org, "repository", &format!("t{i:03}"), json!({})).await;
        let s = scan(db, &t, "complete", now - Duration::minutes(i), Some(50.0)).await;
        finding(db, &t, &format!("f{i}"), "high", "x", &[&s]).await;
    }
    // Each query beside the same page without the relations (what the request costs besides
    // its loaders), and the statements the relations add: one per relation.
    let shapes = [
        (
            "scans",
            "query($n: Int) { scans(pageSize: $n) { totalCount edges { node { id counts { total } } } } }",
            // Target, its latest scan, its open findings.
            "query($n: Int) { scans(pageSize: $n) { totalCount edges { node { id counts { total } target { name lastScore latestScan { id } openFindings { high total } } } } } }",
            3,
        ),
        (
            "findings",
            "query($n: Int) { findings(pageSize: $n) { totalCount edges { node { id title } } } }",
            // Every loader, at two depths, with batches of different depths in flight at once:
            // target, its latest scan and open findings; latest scan and its target; comments.
            "query($n: Int) { findings(pageSize: $n) { totalCount edges { node { id title target { name latestScan { id } openFindings { total } } latestScan { id target { name } } comments { body } } } } }",
            6,
        ),
    ];
    let cost = |root: &'static str, query: &'static str, n: usize| {
        let (app, token, statements, log) = (&app, &token, &statements, &log);
        async move {
            log.lock().unwrap().clear();
            let before = statements.load(Ordering::SeqCst);
            let res = app.gql(Auth::Bearer(token), query, json!({"n": n})).await;
            assert_eq!(res.data(root)["edges"].as_array().unwrap().len(), n);
            let spent = statements.load(Ordering::SeqCst) - before;
            (spent, log.lock().unwrap().clone())
        }
    };

    let load = CpuLoad::start();
    for _ in 0..5 {
        for (root, flat, nested, relations) in shapes {
            for n in [1, 10, 100] {
                let (base, _) = cost(root, flat, n).await;
                let (with_relations, statements) = cost(root, nested, n).await;
                assert_eq!(
                    with_relations,
                    base + relations,
                    "{root}, {n} rows: {base} statements without the relations, {with_relations} with: {statements:#?}"
                );
            }
        }
    }
    drop(load);
    drop(tc);
}

#[tokio::test]
async fn mutations_change_what_they_should() {
    let app = TestApp::spawn().await;
    let token = app.login_admin().await;
    let db = &app.state.db;
    let org = org_id(db, "default").await;
    let now = Utc::now();
    let t = target(db, org, "kafka_cluster", "prod-us", json!({})).await;
    let first = scan(db, &t, "complete", now - Duration::days(2), Some(60.0)).await;
    let second = scan(db, &t, "complete", now - Duration::days(1), Some(70.0)).await;
    let running = scan(db, &t, "running", now, None).await;
    let f = finding(db, &t, "acl", "high", "Open ACL", &[&first, &second]).await;
    let gql = |query: String, vars: Value| {
        let app = &app;
        let token = token.clone();
        async move { app.gql(Auth::Bearer(&token), &query, vars).await }
    };

    let updated = gql("mutation($id: UUID!) { updateTarget(id: $id, input: {name: \"prod-us-east\", labels: {env: \"prod\"}, metadata: {bootstrap_servers: \"k1:9092\"}}) { name labels metadata } }".into(), json!({"id": t.id})).await;
    assert_eq!(
        updated.data("updateTarget"),
        &json!({"name": "prod-us-east", "labels": {"env": "prod"}, "metadata": {"bootstrap_servers": "k1:9092"}})
    );
    let bad_labels = gql(
        "mutation($id: UUID!) { updateTarget(id: $id, input: {labels: {env: 3}}) { name } }".into(),
        json!({"id": t.id}),
    )
    .await;
    assert_eq!(bad_labels.code(), Some("VALIDATION_FAILED"));

    // Triage, with an acceptance that lapses.
    let triaged = gql("mutation($id: UUID!, $at: DateTime!) { setFindingState(id: $id, input: {state: ACCEPTED_RISK, note: \"compensating control\", expiresAt: $at}) { triage { state note by } } }".into(), json!({"id": f.id, "at": (now + Duration::days(30)).to_rfc3339()})).await;
    assert_eq!(
        triaged.data("setFindingState")["triage"],
        json!({"state": "ACCEPTED_RISK", "note": "compensating control", "by": "owner@acme.test"})
    );
    let missing_expiry = gql(
        "mutation($id: UUID!) { setFindingState(id: $id, input: {state: ACCEPTED_RISK}) { id } }"
            .into(),
        json!({"id": f.id}),
    )
    .await;
    assert_eq!(missing_expiry.code(), Some("VALIDATION_FAILED"));
    let mut lapse: entity::finding::ActiveModel = entity::finding::Entity::find_by_id(f.id)
        .one(db)
        .await
        .unwrap()
        .unwrap()
        .into();
    lapse.triage_expires_at = sea_orm::Set(Some(now - Duration::minutes(1)));
    sea_orm::ActiveModelTrait::update(lapse, db).await.unwrap();
    let after = gql(
        format!(
            "{{ finding(id: \"{}\") {{ triage {{ state expiresAt }} }} }}",
            f.id
        ),
        json!({}),
    )
    .await;
    assert_eq!(
        after.data("finding")["triage"],
        json!({"state": "UNTRIAGED", "expiresAt": null})
    );
    let untriaged = gql("{ findings(triageState: UNTRIAGED) { totalCount } accepted: findings(triageState: ACCEPTED_RISK) { totalCount } }".into(), json!({})).await;
    assert_eq!(untriaged.body["data"]["findings"]["totalCount"], 1);
    assert_eq!(untriaged.body["data"]["accepted"]["totalCount"], 0);

    // Comments.
    let added = gql("mutation($id: UUID!) { addComment(findingId: $id, body: \"looking into it\") { id author } }".into(), json!({"id": f.id})).await;
    let comment_id = added.data("addComment")["id"].clone();
    let listed = gql(
        format!(
            "{{ finding(id: \"{}\") {{ comments {{ body author }} }} }}",
            f.id
        ),
        json!({}),
    )
    .await;
    assert_eq!(
        listed.data("finding")["comments"],
        json!([{"body": "looking into it", "author": "owner@acme.test"}])
    );
    let deleted = gql(
        "mutation($id: UUID!) { deleteComment(id: $id) }".into(),
        json!({"id": comment_id}),
    )
    .await;
    assert_eq!(deleted.data("deleteComment"), true);

    // Cancel: only while queued or running.
    let cancelled = gql(
        "mutation($id: UUID!) { cancelScan(id: $id) { status } }".into(),
        json!({"id": running.id}),
    )
    .await;
    assert_eq!(cancelled.data("cancelScan")["status"], "CANCELLED");
    let again = gql(
        "mutation($id: UUID!) { cancelScan(id: $id) { status } }".into(),
        json!({"id": running.id}),
    )
    .await;
    assert_eq!(again.code(), Some("CONFLICT"));

    // Delete the latest scan: the target falls back to the one before.
    let deleted = gql(
        "mutation($id: UUID!) { deleteScan(id: $id) }".into(),
        json!({"id": second.id}),
    )
    .await;
    assert_eq!(deleted.data("deleteScan"), true);
    let target_now = gql(
        format!("{{ target(id: \"{}\") {{ lastScore }} }}", t.id),
        json!({}),
    )
    .await;
    assert_eq!(target_now.data("target")["lastScore"], 60.0);
    let gone = gql(
        format!("{{ scan(id: \"{}\") {{ id }} }}", second.id),
        json!({}),
    )
    .await;
    assert_eq!(gone.code(), Some("NOT_FOUND"));
    // The finding seen by both scans stays, no longer pointing at the deleted one.
    let kept = entity::finding::Entity::find_by_id(f.id)
        .one(db)
        .await
        .unwrap()
        .expect("finding seen by an earlier scan is kept");
    assert_eq!(
        (kept.first_scan_id, kept.last_scan_id),
        (Some(first.id), None)
    );

    let audit = gql(
        "{ auditEvents(pageSize: 50) { edges { node { action } } } }".into(),
        json!({}),
    )
    .await;
    let actions = names(audit.data("auditEvents"), "action");
    for expected in [
        "finding.triage",
        "scan.cancel",
        "scan.delete",
        "comment.delete",
    ] {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected} in {actions:?}"
        );
    }

    let removed = gql(
        "mutation($id: UUID!) { deleteTarget(id: $id) }".into(),
        json!({"id": t.id}),
    )
    .await;
    assert_eq!(removed.data("deleteTarget"), true);
    let none = gql(
        "{ targets { totalCount } findings { totalCount } scans { totalCount } }".into(),
        json!({}),
    )
    .await;
    assert_eq!(
        none.body["data"],
        json!({"targets": {"totalCount": 0}, "findings": {"totalCount": 0}, "scans": {"totalCount": 0}})
    );
}

#[tokio::test]
async fn running_scans_cannot_be_deleted_and_viewers_cannot_write() {
    let app = TestApp::spawn().await;
    let owner = app.login_admin().await;
    let db = &app.state.db;
    let org = org_id(db, "default").await;
    let t = target(db, org, "host", "h1", json!({})).await;
    let running = scan(db, &t, "running", Utc::now(), None).await;
    let f = finding(db, &t, "ssh", "medium", "Weak SSH", &[&running]).await;

    let refused = app
        .gql(
            Auth::Bearer(&owner),
            "mutation($id: UUID!) { deleteScan(id: $id) }",
            json!({"id": running.id}),
        )
        .await;
    assert_eq!(refused.code(), Some("CONFLICT"));

    app.add_member(&owner, "viewer@acme.test", "VIEWER").await;
    let viewer = app
        .login("viewer@acme.test", crate::support::MEMBER_PASSWORD)
        .await
        .0;
    let read_key = app.create_key(&owner, "READ").await;
    let write_key = app.create_key(&owner, "WRITE").await;
    let triage =
        "mutation($id: UUID!) { setFindingState(id: $id, input: {state: CONFIRMED}) { id } }";
    for (who, auth, expected) in [
        ("viewer", Auth::Bearer(&viewer), Some("FORBIDDEN")),
        ("read key", Auth::ApiKey(&read_key), Some("FORBIDDEN")),
        ("write key", Auth::ApiKey(&write_key), None),
    ] {
        let res = app.gql(auth, triage, json!({"id": f.id})).await;
        assert_eq!(res.code(), expected, "{who}");
    }
    let key_delete = app
        .gql(
            Auth::ApiKey(&write_key),
            "mutation($id: UUID!) { deleteTarget(id: $id) }",
            json!({"id": t.id}),
        )
        .await;
    assert_eq!(key_delete.code(), Some("FORBIDDEN"));
}

#[tokio::test]
async fn limits_refuse_clearly() {
    let mut tc = TestConfig::new().await;
    tc.config.graphql_max_depth = 4;
    tc.config.graphql_introspection = false;
    let app = TestApp::spawn_with(tc.config.clone()).await;
    let token = app.login_admin().await;
    let deep = app
        .gql(
            Auth::Bearer(&token),
            "{ scans { edges { node { target { latestScan { id } } } } } }",
            json!({}),
        )
        .await;
    assert!(
        deep.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("nested too deep"),
        "{}",
        deep.body
    );
    let introspect = app
        .gql(
            Auth::Bearer(&token),
            "{ __schema { types { name } } }",
            json!({}),
        )
        .await;
    assert!(
        introspect.body.get("errors").is_some() || introspect.body["data"]["__schema"].is_null(),
        "{}",
        introspect.body
    );
    let capped = app
        .gql(
            Auth::Bearer(&token),
            "{ targets(pageSize: 1000) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(capped.code(), Some("VALIDATION_FAILED"));
    drop(tc);
}

#[tokio::test]
async fn demo_data_fills_an_empty_installation_once() {
    let mut tc = TestConfig::new().await;
    tc.config.demo = true;
    let app = TestApp::spawn_with(tc.config.clone()).await;
    let token = app.login_admin().await;
    let orgs = app
        .gql(
            Auth::Bearer(&token),
            "{ organizations { nodes { organization { slug } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        orgs.data("organizations")["nodes"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let fleet = app
        .gql(Auth::Bearer(&token), "{ fleetComparison(period: \"90d\") { nodes { name currentScore deltaPct sparkline } } findings(status: OPEN) { totalCount } scans { totalCount } }", json!({}))
        .await;
    let entries = fleet.data("fleetComparison")["nodes"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(entries.len(), 4);
    assert!(
        entries
            .iter()
            .all(|e| e["sparkline"].as_array().unwrap().len() >= 12),
        "{entries:?}"
    );
    assert!(
        entries.iter().any(|e| e["deltaPct"].as_f64() != Some(0.0)),
        "scores move"
    );
    assert_eq!(fleet.body["data"]["scans"]["totalCount"], 52);
    assert!(
        fleet.body["data"]["findings"]["totalCount"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(
        !rampart::demo::seed(&app.state.db).await.unwrap(),
        "a second seed writes nothing"
    );
    drop(tc);
}
