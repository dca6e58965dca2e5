//! Per-user notifications (issue 18): made from scan completion (new findings on a followed
//! target) and scan failure, filtered by each person's preferences, read and counted by their
//! person only, followed live over `graphql-transport-ws` and SSE, and mailed through an SMTP
//! relay on loopback (aiosmtpd).

use std::time::Duration;

use entity::{job, notification};
use futures::{SinkExt, StreamExt};
use reqwest::Method;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::rest::Client;
use crate::support::smtp::SmtpSink;
use crate::support::{assert_envelope, Auth, TestApp, TestConfig, TestEnv, MEMBER_PASSWORD};

const FIELDS: &str = "id kind title body severity targetId scanId read readAt createdAt";

/// A native report of `target` whose failing checks are `checks` (id, severity); one passing
/// check keeps it a valid report with nothing failing.
fn report(target: &str, checks: &[(&str, &str)]) -> Vec<u8> {
    let mut all = vec![json!({"id": "PASS", "title": "Fine", "status": "pass", "severity": "low"})];
    all.extend(checks.iter().map(|(id, severity)| {
        json!({"id": id, "title": format!("Check {id}"), "status": "fail", "severity": severity, "resource": "svc/1"})
    }));
    json!({
        "rampart_report": "1",
        "target": {"name": target, "kind": "repository"},
        "scanner": {"name": "probe", "version": "1"},
        "checks": all,
    })
    .to_string()
    .into_bytes()
}

/// Uploads a report to target `name` and waits for its scan: the scan.
async fn upload(app: &TestApp, token: &str, name: &str, body: Vec<u8>) -> Value {
    app.ingest_and_wait(
        Auth::Bearer(token),
        &format!("target={name}&target_kind=repository"),
        body,
    )
    .await
}

/// Creates target `name` with a scan that finds nothing; its id.
async fn target(app: &TestApp, token: &str, name: &str) -> String {
    let scan = upload(app, token, name, report(name, &[])).await;
    assert_eq!(scan["status"], "COMPLETE", "{scan}");
    scan["targetId"].as_str().unwrap().to_string()
}

async fn follow(app: &TestApp, token: &str, target_id: &str) {
    let res = app
        .gql(
            Auth::Bearer(token),
            "mutation($t: UUID!) { followTarget(targetId: $t) { id } }",
            json!({"t": target_id}),
        )
        .await;
    assert_eq!(res.data("followTarget")["id"], target_id);
}

/// The caller's notifications, as the GraphQL list gives them.
async fn notifications(app: &TestApp, token: &str) -> Vec<Value> {
    let res = app
        .gql(
            Auth::Bearer(token),
            &format!("{{ notifications(pageSize: 500) {{ totalCount nodes {{ {FIELDS} }} }} }}"),
            json!({}),
        )
        .await;
    res.data("notifications")["nodes"]
        .as_array()
        .unwrap()
        .clone()
}

async fn counts(app: &TestApp, token: &str) -> (u64, u64) {
    let res = app
        .gql(
            Auth::Bearer(token),
            "{ notificationCounts { unread total } }",
            json!({}),
        )
        .await;
    let c = res.data("notificationCounts");
    (c["unread"].as_u64().unwrap(), c["total"].as_u64().unwrap())
}

async fn set_preferences(app: &TestApp, token: &str, input: Value) -> Value {
    app.gql(
        Auth::Bearer(token),
        "mutation($i: UpdateNotificationPreferencesInput!) { updateNotificationPreferences(input: $i) { kinds minSeverity email } }",
        json!({"i": input}),
    )
    .await
    .data("updateNotificationPreferences")
    .clone()
}

#[tokio::test]
async fn new_critical_findings_notify_followers_only_who_read_and_count_them() {
    let app = TestApp::spawn().await;
    let rest = Client::new(&app).await;
    let owner = app.login_admin().await;
    app.add_member(&owner, "dev@acme.test", "MEMBER").await;
    app.add_member(&owner, "ops@acme.test", "VIEWER").await;
    let (dev, _) = app.login("dev@acme.test", MEMBER_PASSWORD).await;
    let (ops, _) = app.login("ops@acme.test", MEMBER_PASSWORD).await;
    let shop = target(&app, &owner, "shop").await;

    // The member follows the target over REST; the viewer does not follow it.
    let followed = rest
        .call(
            Auth::Bearer(&dev),
            Method::PUT,
            &format!("/api/v1/targets/{shop}/follow"),
            None,
        )
        .await;
    assert_eq!(followed.status, 200, "{}", followed.body);
    assert_eq!(followed.body["data"]["id"], shop);
    let list = rest
        .get(Auth::Bearer(&dev), "/api/v1/targets/followed")
        .await;
    assert_eq!(list.body["meta"]["total"], 1, "{}", list.body);
    assert_eq!(list.body["data"][0]["name"], "shop");

    let scan = upload(
        &app,
        &owner,
        "shop",
        report("shop", &[("C1", "critical"), ("H1", "high"), ("L1", "low")]),
    )
    .await;
    assert_eq!(scan["findingsNew"], 3, "{scan}");

    let mine = notifications(&app, &dev).await;
    assert_eq!(mine.len(), 1, "{mine:?}");
    let n = &mine[0];
    assert_eq!(n["kind"], "FINDING_NEW");
    assert_eq!(n["severity"], "CRITICAL");
    assert_eq!(n["targetId"], shop);
    assert_eq!(n["scanId"], scan["id"]);
    assert_eq!(n["read"], false);
    assert_eq!(n["title"], "2 new findings on shop (1 critical, 1 high)");
    let body = n["body"].as_str().unwrap();
    assert!(body.contains("[critical] Check C1") && body.contains("[high] Check H1"));
    assert!(
        !body.contains("Check L1"),
        "below the default minimum: {body}"
    );
    assert!(notifications(&app, &ops).await.is_empty(), "not a follower");
    assert!(
        notifications(&app, &owner).await.is_empty(),
        "the uploader does not follow"
    );
    // No relay is configured: nothing is queued for mail.
    let mail_jobs = job::Entity::find()
        .filter(job::Column::Kind.eq("notification_email"))
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(mail_jobs, 0);

    // A second scan with a new critical finding: two notifications, both unread.
    upload(
        &app,
        &owner,
        "shop",
        report(
            "shop",
            &[
                ("C1", "critical"),
                ("H1", "high"),
                ("L1", "low"),
                ("C2", "critical"),
            ],
        ),
    )
    .await;
    assert_eq!(counts(&app, &dev).await, (2, 2));
    let first = n["id"].as_str().unwrap().to_string();

    // Mark the older one read over REST: the unread one comes first now.
    let read = rest
        .post(
            Auth::Bearer(&dev),
            &format!("/api/v1/notifications/{first}/read"),
            json!({}),
        )
        .await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.body["data"]["read"], true);
    assert_eq!(read.body["data"]["kind"], "finding_new");
    assert_eq!(read.body["data"]["severity"], "critical");
    let read_at = read.body["data"]["read_at"].clone();
    assert!(read_at.is_string());
    // Marking it again keeps the first time.
    let again = rest
        .post(
            Auth::Bearer(&dev),
            &format!("/api/v1/notifications/{first}/read"),
            json!({}),
        )
        .await;
    assert_eq!(again.body["data"]["read_at"], read_at);
    let listed = rest.get(Auth::Bearer(&dev), "/api/v1/notifications").await;
    assert_eq!(listed.body["meta"]["total"], 2);
    assert_eq!(listed.body["data"][0]["read"], false, "{}", listed.body);
    assert_eq!(listed.body["data"][1]["id"], first.as_str());
    let unread = rest
        .get(Auth::Bearer(&dev), "/api/v1/notifications?unread_only=true")
        .await;
    assert_eq!(unread.body["meta"]["total"], 1);
    assert_eq!(
        unread.body["data"][0]["title"],
        "1 new finding on shop (1 critical)"
    );
    let counted = rest
        .get(Auth::Bearer(&dev), "/api/v1/notifications/counts")
        .await;
    assert_eq!(counted.body["data"], json!({"unread": 1, "total": 2}));

    // Mark all read.
    let all = rest
        .post(
            Auth::Bearer(&dev),
            "/api/v1/notifications/read-all",
            json!({}),
        )
        .await;
    assert_eq!(all.body["data"]["count"], 1, "{}", all.body);
    assert_eq!(counts(&app, &dev).await, (0, 2));
    let none_left = rest
        .post(
            Auth::Bearer(&dev),
            "/api/v1/notifications/read-all",
            json!({}),
        )
        .await;
    assert_eq!(none_left.body["data"]["count"], 0);

    // Someone else's notification is missing to everyone else, even the org's owner.
    let one = rest
        .get(
            Auth::Bearer(&dev),
            &format!("/api/v1/notifications/{first}"),
        )
        .await;
    assert_eq!(one.status, 200);
    for path in [
        format!("/api/v1/notifications/{first}"),
        format!("/api/v1/notifications/{}", uuid::Uuid::now_v7()),
    ] {
        let res = rest.get(Auth::Bearer(&owner), &path).await;
        assert_envelope(&res.body, 404, "NOT_FOUND");
        assert_eq!(res.body["error"], "notification not found");
    }
    let res = rest
        .post(
            Auth::Bearer(&ops),
            &format!("/api/v1/notifications/{first}/read"),
            json!({}),
        )
        .await;
    assert_envelope(&res.body, 404, "NOT_FOUND");
    let gql = app
        .gql(
            Auth::Bearer(&owner),
            "mutation($id: UUID!) { markNotificationRead(id: $id) { id } }",
            json!({"id": first}),
        )
        .await;
    assert_eq!(gql.code(), Some("NOT_FOUND"));

    // Notifications are a person's: an API key has none.
    let key = app.create_key(&owner, "READ").await;
    let res = rest.get(Auth::ApiKey(&key), "/api/v1/notifications").await;
    assert_envelope(&res.body, 403, "SESSION_REQUIRED");

    // Unfollowing stops them.
    let gone = rest
        .call(
            Auth::Bearer(&dev),
            Method::DELETE,
            &format!("/api/v1/targets/{shop}/follow"),
            None,
        )
        .await;
    assert_eq!(gone.status, 204);
    let list = rest
        .get(Auth::Bearer(&dev), "/api/v1/targets/followed")
        .await;
    assert_eq!(list.body["meta"]["total"], 0);
    upload(
        &app,
        &owner,
        "shop",
        report("shop", &[("C1", "critical"), ("C3", "critical")]),
    )
    .await;
    assert_eq!(counts(&app, &dev).await, (0, 2));
    // Another org's target, or none, cannot be followed.
    let missing = rest
        .call(
            Auth::Bearer(&dev),
            Method::PUT,
            &format!("/api/v1/targets/{}/follow", uuid::Uuid::now_v7()),
            None,
        )
        .await;
    assert_envelope(&missing.body, 404, "NOT_FOUND");
}

#[tokio::test]
async fn preferences_choose_kinds_and_the_minimum_severity() {
    let app = TestApp::spawn().await;
    let rest = Client::new(&app).await;
    let owner = app.login_admin().await;
    app.add_member(&owner, "dev@acme.test", "MEMBER").await;
    let (dev, _) = app.login("dev@acme.test", MEMBER_PASSWORD).await;
    let api = target(&app, &owner, "api").await;
    follow(&app, &dev, &api).await;

    let defaults = rest
        .get(Auth::Bearer(&dev), "/api/v1/notifications/preferences")
        .await;
    assert_eq!(
        defaults.body["data"],
        json!({"kinds": ["finding_new", "scan_failed", "finding_assigned", "risk_acceptance_expiring", "sla_breached", "webhook_disabled"], "min_severity": "high", "email": true})
    );

    // Critical only: a new high finding says nothing, a new critical one does.
    let changed = rest
        .call(
            Auth::Bearer(&dev),
            Method::PATCH,
            "/api/v1/notifications/preferences",
            Some(json!({"min_severity": "critical"})),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(changed.body["data"]["min_severity"], "critical");
    assert_eq!(
        changed.body["data"]["kinds"],
        json!([
            "finding_new",
            "scan_failed",
            "finding_assigned",
            "risk_acceptance_expiring",
            "sla_breached",
            "webhook_disabled"
        ])
    );
    upload(&app, &owner, "api", report("api", &[("H1", "high")])).await;
    assert_eq!(counts(&app, &dev).await, (0, 0));
    upload(
        &app,
        &owner,
        "api",
        report("api", &[("H1", "high"), ("H2", "high"), ("C1", "critical")]),
    )
    .await;
    let mine = notifications(&app, &dev).await;
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["title"], "1 new finding on api (1 critical)");
    assert!(!mine[0]["body"].as_str().unwrap().contains("Check H2"));

    // Down to low: the same person is told of everything from low up.
    let low = set_preferences(&app, &dev, json!({"minSeverity": "LOW"})).await;
    assert_eq!(low["minSeverity"], "LOW");
    upload(
        &app,
        &owner,
        "api",
        report(
            "api",
            &[
                ("H1", "high"),
                ("H2", "high"),
                ("C1", "critical"),
                ("L1", "low"),
                ("I1", "info"),
            ],
        ),
    )
    .await;
    let mine = notifications(&app, &dev).await;
    assert_eq!(mine.len(), 2);
    assert_eq!(mine[0]["title"], "1 new finding on api (1 low)");
    assert_eq!(mine[0]["severity"], "LOW");

    // Failures only (over REST): new findings say nothing, a failed scan does.
    let prefs = rest
        .call(
            Auth::Bearer(&dev),
            Method::PATCH,
            "/api/v1/notifications/preferences",
            Some(json!({"kinds": ["scan_failed"]})),
        )
        .await;
    assert_eq!(
        prefs.body["data"],
        json!({"kinds": ["scan_failed"], "min_severity": "low", "email": true})
    );
    upload(&app, &owner, "api", report("api", &[("C9", "critical")])).await;
    assert_eq!(counts(&app, &dev).await.1, 2);
    let failed = upload(&app, &owner, "api", b"{\"runs\": [".to_vec()).await;
    assert_eq!(failed["status"], "FAILED", "{failed}");
    let mine = notifications(&app, &dev).await;
    assert_eq!(mine.len(), 3);
    assert_eq!(mine[0]["kind"], "SCAN_FAILED");
    assert_eq!(mine[0]["title"], "A scan of api failed");
    assert_eq!(mine[0]["scanId"], failed["id"]);
    assert_eq!(mine[0]["severity"], Value::Null);
    assert!(
        mine[0]["body"]
            .as_str()
            .unwrap()
            .contains(failed["error"].as_str().unwrap()),
        "{}",
        mine[0]["body"]
    );

    // Nothing at all.
    set_preferences(&app, &dev, json!({"kinds": []})).await;
    upload(&app, &owner, "api", b"{\"runs\": [".to_vec()).await;
    assert_eq!(counts(&app, &dev).await.1, 3);
    // Preferences are per org: another org of the same person starts from the defaults.
    let (_, elsewhere) = app.switch_to_new_org(&dev, "Dev's own").await;
    let there = app
        .gql(
            Auth::Bearer(&elsewhere),
            "{ notificationPreferences { kinds minSeverity } notificationCounts { total } }",
            json!({}),
        )
        .await;
    assert_eq!(
        there.data("notificationPreferences"),
        &json!({"kinds": ["FINDING_NEW", "SCAN_FAILED", "FINDING_ASSIGNED", "RISK_ACCEPTANCE_EXPIRING", "SLA_BREACHED", "WEBHOOK_DISABLED"], "minSeverity": "HIGH"})
    );
    assert_eq!(
        there.data("notificationCounts")["total"],
        0,
        "another org's inbox"
    );
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A `graphql-transport-ws` connection of `token` subscribed to `notificationAdded` as "n".
async fn subscribe(app: &TestApp, token: &str) -> Ws {
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
        json!({"type": "subscribe", "id": "n", "payload": {"query": format!("subscription {{ notificationAdded {{ {FIELDS} }} }}")}}),
    ] {
        ws.send(Message::Text(message.to_string().into()))
            .await
            .unwrap();
    }
    ws
}

/// The next `notificationAdded` on `ws`, or `None` when none came within `wait`.
async fn next_added(ws: &mut Ws, wait: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let message = tokio::time::timeout_at(deadline, ws.next()).await.ok()?;
        let Some(Ok(Message::Text(text))) = message else {
            panic!("the socket ended: {message:?}");
        };
        let message: Value = serde_json::from_str(&text).unwrap();
        match message["type"].as_str() {
            Some("next") => {
                assert_eq!(message["id"], "n");
                return Some(message["payload"]["data"]["notificationAdded"].clone());
            }
            Some("error") => panic!("{message}"),
            _ => {}
        }
    }
}

/// A made-up notification of `user_id` in `org_id`, published on `app`'s bus.
async fn probe(app: &TestApp, org_id: uuid::Uuid, user_id: uuid::Uuid) {
    let added = rampart::notifications::events::Added {
        org_id,
        user_id,
        notification: rampart::notifications::Notification {
            id: uuid::Uuid::now_v7(),
            kind: rampart::notifications::NotificationKind::ScanFailed,
            title: "probe".into(),
            body: String::new(),
            severity: None,
            target_id: None,
            scan_id: None,
            read: false,
            read_at: None,
            created_at: chrono::Utc::now(),
        },
    };
    rampart::notifications::events::publish(&*app.state.bus, &[added]).await;
}

/// Publishes probes through `via` until `ws` receives one: its subscription is live.
async fn wait_subscribed(via: &TestApp, ws: &mut Ws, org_id: uuid::Uuid, user_id: uuid::Uuid) {
    for _ in 0..300 {
        probe(via, org_id, user_id).await;
        if let Some(n) = next_added(ws, Duration::from_millis(100)).await {
            assert_eq!(n["title"], "probe");
            return;
        }
    }
    panic!("the subscription received none of 300 probes");
}

/// The next real (not probe) notification on `ws`.
async fn next_real(ws: &mut Ws) -> Value {
    loop {
        let n = next_added(ws, Duration::from_secs(60))
            .await
            .expect("a notification in time");
        if n["title"] != "probe" {
            return n;
        }
    }
}

async fn ids(app: &TestApp, token: &str) -> (uuid::Uuid, uuid::Uuid) {
    let res = app
        .gql(
            Auth::Bearer(token),
            "{ organization { id } me { user { id } } }",
            json!({}),
        )
        .await;
    (
        res.data("organization")["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
        res.data("me")["user"]["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
    )
}

/// Reads SSE `notification` events from `res` until `n` have arrived.
async fn read_events(res: reqwest::Response, n: usize) -> Vec<(String, Value)> {
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let mut body = res.bytes_stream();
    let mut text = String::new();
    let mut events = Vec::new();
    while events.len() < n {
        let chunk = tokio::time::timeout(Duration::from_secs(60), body.next())
            .await
            .expect("an event in time")
            .expect("the stream goes on")
            .unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(|v| v.trim().to_string())
            };
            if field("event:").as_deref() == Some("notification") {
                let data: Value = serde_json::from_str(&field("data:").unwrap()).unwrap();
                if data["title"] != "probe" {
                    events.push((field("id:").unwrap(), data));
                }
            }
        }
    }
    events
}

#[tokio::test]
async fn notification_added_arrives_over_the_websocket_and_server_sent_events() {
    let app = TestApp::spawn().await;
    let owner = app.login_admin().await;
    app.add_member(&owner, "dev@acme.test", "MEMBER").await;
    app.add_member(&owner, "ops@acme.test", "MEMBER").await;
    let (dev, _) = app.login("dev@acme.test", MEMBER_PASSWORD).await;
    let (ops, _) = app.login("ops@acme.test", MEMBER_PASSWORD).await;
    let web = target(&app, &owner, "web").await;
    follow(&app, &dev, &web).await;
    let (org, dev_id) = ids(&app, &dev).await;
    let (_, ops_id) = ids(&app, &ops).await;

    let mut ws = subscribe(&app, &dev).await;
    wait_subscribed(&app, &mut ws, org, dev_id).await;
    let mut other = subscribe(&app, &ops).await;
    wait_subscribed(&app, &mut other, org, ops_id).await;
    let sse = app
        .http
        .get(app.url("/api/v1/notifications/events"))
        .bearer_auth(&dev)
        .send()
        .await
        .unwrap();

    let scan = upload(&app, &owner, "web", report("web", &[("C1", "critical")])).await;
    let added = next_real(&mut ws).await;
    assert_eq!(added["kind"], "FINDING_NEW");
    assert_eq!(added["scanId"], scan["id"]);
    assert_eq!(added["read"], false);
    let stored = notifications(&app, &dev).await;
    assert_eq!(
        added, stored[0],
        "the subscription gives the stored notification"
    );
    let events = read_events(sse, 1).await;
    assert_eq!(events[0].0, added["id"].as_str().unwrap());
    assert_eq!(events[0].1["kind"], "finding_new");
    assert_eq!(events[0].1["scan_id"], scan["id"]);
    assert_eq!(events[0].1["title"], added["title"]);
    // Someone who does not follow the target is told nothing.
    assert_eq!(
        next_added(&mut other, Duration::from_millis(500)).await,
        None
    );

    // A reconnecting stream replays what was made after the last event it saw.
    let failed = upload(&app, &owner, "web", b"not json".to_vec()).await;
    assert_eq!(failed["status"], "FAILED");
    assert_eq!(next_real(&mut ws).await["kind"], "SCAN_FAILED");
    let resumed = app
        .http
        .get(app.url("/api/v1/notifications/events"))
        .bearer_auth(&dev)
        .header("last-event-id", &events[0].0)
        .send()
        .await
        .unwrap();
    let replayed = read_events(resumed, 1).await;
    assert_eq!(replayed[0].1["kind"], "scan_failed");
    assert_eq!(replayed[0].1["scan_id"], failed["id"]);

    // Notifications are a person's: no stream for an API key, none without a credential.
    let key = app.create_key(&owner, "READ").await;
    let refused = app
        .http
        .get(app.url("/api/v1/notifications/events"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().await.unwrap();
    assert_envelope(&body, 403, "SESSION_REQUIRED");
    let anonymous = app
        .http
        .get(app.url("/api/v1/notifications/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
#[cfg_attr(
    not(all(rampart_test_redis, rampart_test_postgres)),
    ignore = "needs RAMPART_TEST_DATABASE_URL and RAMPART_TEST_REDIS_URL (the scale-out run)"
)]
async fn notification_added_crosses_processes_through_redis() {
    let env = TestEnv::from_env();
    assert!(
        env.redis_url.is_some() && env.postgres_url.is_some(),
        "two processes need a shared database and Redis: set when this test was built"
    );
    let tc = TestConfig::for_env(&env).await;
    let mut api_only = tc.config.clone();
    api_only.role = rampart::config::Role::Api;
    let first = TestApp::spawn_with(api_only).await;
    let second = TestApp::spawn_with(tc.config.clone()).await;
    let token = first.login_admin().await;
    let db = target(&first, &token, "db").await;
    follow(&first, &token, &db).await;
    let (org, me) = ids(&first, &token).await;

    // Subscribed on the API-only process; the worker of the other one makes the notification.
    let mut ws = subscribe(&first, &token).await;
    wait_subscribed(&second, &mut ws, org, me).await;
    let scan = upload(&second, &token, "db", report("db", &[("H1", "high")])).await;
    let added = next_real(&mut ws).await;
    assert_eq!(added["scanId"], scan["id"]);
    assert_eq!(added["severity"], "HIGH");
    drop(tc);
}

#[tokio::test]
#[cfg_attr(
    not(rampart_has_aiosmtpd),
    ignore = "needs aiosmtpd in tests/standard-clients/.venv (pip install -r requirements.txt)"
)]
async fn notifications_are_mailed_through_the_relay_to_those_who_want_mail() {
    let mut smtp = SmtpSink::start().await;
    let mut tc = TestConfig::new().await;
    tc.config.smtp_url = Some(smtp.url.clone());
    let mut app = TestApp::spawn_with(tc.config.clone()).await;
    app.test_config = Some(tc);
    let owner = app.login_admin().await;
    app.add_member(&owner, "dev@acme.test", "MEMBER").await;
    app.add_member(&owner, "quiet@acme.test", "MEMBER").await;
    let (dev, _) = app.login("dev@acme.test", MEMBER_PASSWORD).await;
    let (quiet, _) = app.login("quiet@acme.test", MEMBER_PASSWORD).await;
    let shop = target(&app, &owner, "shop").await;
    follow(&app, &dev, &shop).await;
    follow(&app, &quiet, &shop).await;
    set_preferences(&app, &quiet, json!({"email": false})).await;

    upload(
        &app,
        &owner,
        "shop",
        report("shop", &[("C1", "critical"), ("H1", "high")]),
    )
    .await;
    let mail = smtp.next_mail().await;
    assert_eq!(mail["to"], json!(["dev@acme.test"]), "{mail}");
    let subject = mail["subject"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(
        subject,
        "[Rampart] 2 new findings on shop (1 critical, 1 high)"
    );
    let body = mail["body"].as_str().unwrap();
    assert!(body.contains("[critical] Check C1"), "{body}");
    let dev_n = &notifications(&app, &dev).await[0];
    assert!(body.contains(&format!(
        "/api/v1/notifications/{}",
        dev_n["id"].as_str().unwrap()
    )));

    // The one who wants no mail has the notification and no mail job.
    let quiet_n = &notifications(&app, &quiet).await[0];
    let quiet_id: uuid::Uuid = quiet_n["id"].as_str().unwrap().parse().unwrap();
    assert!(notification::Entity::find_by_id(quiet_id)
        .one(&app.state.db)
        .await
        .unwrap()
        .is_some());
    let jobs = job::Entity::find()
        .filter(job::Column::Kind.eq("notification_email"))
        .all(&app.state.db)
        .await
        .unwrap();
    assert_eq!(jobs.len(), 1, "one mail, for the one who wants it");
    assert_eq!(jobs[0].payload["notification"], dev_n["id"]);

    // A failed scan is mailed too.
    upload(&app, &owner, "shop", b"{".to_vec()).await;
    let mail = smtp.next_mail().await;
    assert_eq!(mail["to"], json!(["dev@acme.test"]));
    assert!(mail["subject"]
        .as_str()
        .unwrap()
        .contains("A scan of shop failed"));
}

#[tokio::test]
#[cfg_attr(
    not(rampart_has_aiosmtpd),
    ignore = "needs aiosmtpd in tests/standard-clients/.venv (pip install -r requirements.txt)"
)]
async fn a_relay_that_fails_is_tried_again_without_holding_up_the_scan() {
    let mut smtp = SmtpSink::refusing_first(2).await;
    let mut tc = TestConfig::new().await;
    tc.config.smtp_url = Some(smtp.url.clone());
    tc.config.job_retry_base_secs = 1;
    tc.config.job_retry_max_delay_secs = 1;
    let mut app = TestApp::spawn_with(tc.config.clone()).await;
    app.test_config = Some(tc);
    let owner = app.login_admin().await;
    let shop = target(&app, &owner, "shop").await;
    follow(&app, &owner, &shop).await;

    // The scan completes and the notification exists while the relay still refuses.
    let scan = upload(&app, &owner, "shop", report("shop", &[("C1", "critical")])).await;
    assert_eq!(scan["status"], "COMPLETE");
    assert_eq!(counts(&app, &owner).await, (1, 1));
    let mail = smtp.next_mail().await;
    assert_eq!(mail["to"], json!([crate::support::ADMIN_EMAIL]));
    let done = async {
        loop {
            let jobs = job::Entity::find()
                .filter(job::Column::Kind.eq("notification_email"))
                .all(&app.state.db)
                .await
                .unwrap();
            if jobs.iter().all(|j| j.status == "done") {
                return jobs;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let jobs = tokio::time::timeout(Duration::from_secs(30), done)
        .await
        .expect("the mail job ends");
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].attempts, 3, "two refusals, then the mail");
    assert!(jobs[0]
        .last_error
        .as_deref()
        .unwrap_or("")
        .contains("mail not sent"));
}
