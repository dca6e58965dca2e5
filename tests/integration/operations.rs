//! Operations: `GET /metrics` read back with a Prometheus parser, CORS for listed origins,
//! graceful shutdown (running jobs handed back, WebSockets closed with 1012), and the
//! configuration reference in `docs/operations.md`.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use prometheus_parse::{Sample, Scrape, Value};
use rampart::ingest::synthetic::{sarif, SyntheticResult};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{Auth, TestApp, TestConfig};

const METRICS_TOKEN: &str = "scrape-me-please";

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn parse(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("Prometheus text format")
}

/// The sample named `name` whose labels include all of `labels`.
fn sample<'a>(scrape: &'a Scrape, name: &str, labels: &[(&str, &str)]) -> Option<&'a Sample> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
}

fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    match sample(scrape, name, labels).map(|s| &s.value) {
        Some(Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v)) => *v,
        other => panic!(
            "{name} {labels:?}: {other:?} in {:?}",
            scrape
                .samples
                .iter()
                .filter(|s| s.metric == name)
                .map(|s| (&s.labels, &s.value))
                .collect::<Vec<_>>()
        ),
    }
}

async fn scrape(http: &reqwest::Client, url: &str, token: Option<&str>) -> (u16, String) {
    let mut req = http.get(url);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

async fn connect_ws(app: &TestApp, token: &str) -> Ws {
    let mut request = format!("ws://{}/graphql/ws", app.addr)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket");
    let init =
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}});
    ws.send(Message::Text(init.to_string().into()))
        .await
        .unwrap();
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) if text.contains("connection_ack") => return ws,
            Some(Ok(_)) => continue,
            other => panic!("no acknowledgement: {other:?}"),
        }
    }
}

#[tokio::test]
async fn metrics_count_traffic_by_route_template_and_read_the_queue() {
    // Process A answers requests and queues a report; no worker of its own.
    let mut tc = TestConfig::new().await;
    tc.config.workers = 0;
    tc.config.metrics_token = Some(METRICS_TOKEN.into());
    let api = TestApp::spawn_with(tc.config.clone()).await;
    let token = api.login_admin().await;

    let (status, _) = scrape(&api.http, &api.url("/metrics"), None).await;
    assert_eq!(status, 401, "the token is required on the main address");
    let (status, _) = scrape(&api.http, &api.url("/metrics"), Some("wrong")).await;
    assert_eq!(status, 401);

    let unknown: Vec<String> = (0..3).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    for id in &unknown {
        let res = api
            .http
            .get(api.url(&format!("/api/v1/scans/{id}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404);
    }
    for _ in 0..2 {
        let res = api
            .gql(
                Auth::Bearer(&token),
                "query Probe { me { kind } }",
                json!({}),
            )
            .await;
        assert_eq!(res.status, 200);
    }
    let _ws = connect_ws(&api, &token).await;
    const N: u64 = 25;
    let report = sarif("semgrep", (0..N).map(SyntheticResult::numbered));
    let accepted = api
        .ingest(Auth::Bearer(&token), "target=metrics", report.clone())
        .await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let scan_id = accepted.body["data"]["id"].as_str().unwrap().to_string();

    let (status, text) = scrape(&api.http, &api.url("/metrics"), Some(METRICS_TOKEN)).await;
    assert_eq!(status, 200, "{text}");
    let a = parse(&text);
    let scan_route = [
        ("route", "/api/v1/scans/:id"),
        ("method", "GET"),
        ("status", "404"),
    ];
    assert_eq!(
        value(&a, "rampart_http_requests_total", &scan_route),
        3.0,
        "{text}"
    );
    match &sample(&a, "rampart_http_request_duration_seconds", &scan_route)
        .expect("latency histogram")
        .value
    {
        Value::Histogram(buckets) => {
            let all = buckets
                .iter()
                .find(|b| b.less_than.is_infinite())
                .expect("+Inf bucket");
            assert_eq!(all.count, 3.0);
        }
        other => panic!("not a histogram: {other:?}"),
    }
    assert!(
        unknown.iter().all(|id| !text.contains(id.as_str())),
        "route labels are templates, never raw paths"
    );
    assert_eq!(
        value(
            &a,
            "rampart_graphql_operations_total",
            &[("operation", "Probe")]
        ),
        2.0
    );
    assert_eq!(
        value(
            &a,
            "rampart_jobs",
            &[("kind", "ingest"), ("status", "queued")]
        ),
        1.0
    );
    assert!(
        value(
            &a,
            "rampart_job_oldest_age_seconds",
            &[("kind", "ingest"), ("status", "queued")]
        ) >= 0.0
    );
    assert_eq!(
        value(
            &a,
            "rampart_live_subscribers",
            &[("transport", "websocket")]
        ),
        1.0
    );
    let max = value(&a, "rampart_db_pool_connections", &[("state", "max")]);
    let open = value(&a, "rampart_db_pool_connections", &[("state", "open")]);
    let in_use = value(&a, "rampart_db_pool_connections", &[("state", "in_use")]);
    assert!(max >= 1.0 && open <= max && in_use <= open, "{text}");

    // Process B, on the same backends, processes the queued report and serves its metrics on
    // a separate address, without a token; its main address has none.
    let mut config_b = tc.config.clone();
    config_b.workers = 2;
    config_b.metrics_token = None;
    config_b.metrics_bind = Some(([127, 0, 0, 1], 0).into());
    let worker = TestApp::spawn_with(config_b).await;
    let scan = worker.wait_scan(Auth::Bearer(&token), &scan_id).await;
    assert_eq!(scan["status"], "COMPLETE", "{scan}");
    let (status, _) = scrape(&worker.http, &worker.url("/metrics"), None).await;
    assert_eq!(status, 404, "no token configured: not on the main address");
    let metrics_url = format!("http://{}/metrics", worker.metrics_addr.unwrap());
    let (status, text) = scrape(&worker.http, &metrics_url, None).await;
    assert_eq!(status, 200, "{text}");
    let b = parse(&text);
    assert_eq!(value(&b, "rampart_ingest_findings_total", &[]), N as f64);
    assert_eq!(
        value(&b, "rampart_ingest_bytes_total", &[]),
        report.len() as f64
    );
    assert_eq!(
        value(&b, "rampart_ingest_scans_total", &[("outcome", "complete")]),
        1.0
    );
    assert_eq!(
        value(
            &b,
            "rampart_jobs",
            &[("kind", "ingest"), ("status", "queued")]
        ),
        0.0,
        "every process reads the one queue"
    );
    // Process A counted no ingest of its own.
    let (_, text) = scrape(&api.http, &api.url("/metrics"), Some(METRICS_TOKEN)).await;
    assert_eq!(
        value(&parse(&text), "rampart_ingest_findings_total", &[]),
        0.0
    );
    drop(_ws);
    worker.stop().await;
    api.stop().await;
}

const ALLOWED: &str = "https://app.example.test";
const OTHER: &str = "https://evil.example.test";

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.http
        .request(reqwest::Method::OPTIONS, app.url("/graphql"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,authorization",
        )
        .send()
        .await
        .unwrap()
}

/// The session cookie `login` sets.
async fn session_cookie(app: &TestApp) -> String {
    let res = app
        .gql(
            Auth::None,
            "mutation { login(email: \"owner@acme.test\", password: \"correct-horse-battery\") { token } }",
            json!({}),
        )
        .await;
    res.headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|c| c.starts_with("token="))
        .expect("session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

async fn cookie_post(app: &TestApp, cookie: &str, origin: &str) -> reqwest::Response {
    app.http
        .post(app.url("/graphql"))
        .header("cookie", cookie)
        .header("origin", origin)
        .json(&json!({"query": "{ me { kind } }"}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn cors_answers_listed_origins_only_and_trusts_them_for_cookie_writes() {
    let mut tc = TestConfig::new().await;
    tc.config.cors_allowed_origins = vec![ALLOWED.into()];
    let app = TestApp::spawn_with(tc.config.clone()).await;

    let res = preflight(&app, ALLOWED).await;
    assert!(res.status().is_success(), "{}", res.status());
    let h = res.headers();
    assert_eq!(h["access-control-allow-origin"], ALLOWED);
    assert_eq!(h["access-control-allow-credentials"], "true");
    let methods = h["access-control-allow-methods"].to_str().unwrap();
    assert!(methods.contains("POST"), "{methods}");
    let headers = h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        headers.contains("authorization") && headers.contains("content-type"),
        "{headers}"
    );
    assert!(h.contains_key("access-control-max-age"));

    let res = preflight(&app, OTHER).await;
    assert!(!res.headers().contains_key("access-control-allow-origin"));
    assert!(!res
        .headers()
        .contains_key("access-control-allow-credentials"));

    // The actual request: a cookie-authenticated write from the listed origin's page passes
    // the forgery check and may be read by that page; from another origin it is refused.
    let cookie = session_cookie(&app).await;
    let res = cookie_post(&app, &cookie, ALLOWED).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["access-control-allow-origin"], ALLOWED);
    assert_eq!(res.headers()["access-control-allow-credentials"], "true");
    assert!(res.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .contains("x-request-id"));
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["data"]["me"]["kind"], "USER", "{body}");

    let res = cookie_post(&app, &cookie, OTHER).await;
    assert_eq!(res.status(), 403);
    assert!(!res.headers().contains_key("access-control-allow-origin"));
    app.stop().await;
}

#[tokio::test]
async fn cors_is_off_by_default() {
    let app = TestApp::spawn().await;
    let res = preflight(&app, ALLOWED).await;
    assert!(!res.headers().contains_key("access-control-allow-origin"));
    let cookie = session_cookie(&app).await;
    let res = cookie_post(&app, &cookie, ALLOWED).await;
    assert_eq!(res.status(), 403, "no origin is trusted by default");
    assert!(!res.headers().contains_key("access-control-allow-origin"));
    app.stop().await;
}

#[tokio::test]
async fn shutdown_closes_websockets_with_service_restart() {
    let app = TestApp::spawn().await;
    let token = app.login_admin().await;
    let mut ws = connect_ws(&app, &token).await;
    app.stop().await;
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("a close frame, not silence")
        {
            Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            other => panic!("closed without a close frame: {other:?}"),
        }
    };
    assert_eq!(code, Some(1012), "Service Restart: clients reconnect");
}

#[tokio::test]
async fn shutdown_hands_a_running_scan_back_to_another_process() {
    // The first process holds its jobs for an hour: only a hand-back lets another process
    // resume the scan before the test gives up (wait_scan: 60 s).
    let mut tc = TestConfig::new().await;
    tc.config.job_lease_secs = 3600;
    tc.config.shutdown_grace_secs = 30;
    let first = TestApp::spawn_with(tc.config.clone()).await;
    let token = first.login_admin().await;
    const N: u64 = 40_000;
    let report = sarif("semgrep", (0..N).map(SyntheticResult::numbered));
    let accepted = first
        .ingest(Auth::Bearer(&token), "target=restarting", report)
        .await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let id = accepted.body["data"]["id"].as_str().unwrap().to_string();

    let progress = "query($id: UUID!) { scan(id: $id) { status progress { processed } } }";
    let mut mid_way = false;
    for _ in 0..3000 {
        let scan = first
            .gql(Auth::Bearer(&token), progress, json!({"id": id}))
            .await;
        let scan = scan.data("scan");
        if scan["progress"]["processed"].as_u64().unwrap_or(0) > 0 {
            mid_way = scan["status"] == "RUNNING";
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(mid_way, "the scan was seen running");
    let db = first.state.db.clone();
    first.stop().await;

    let scan_id: uuid::Uuid = id.parse().unwrap();
    let job = entity::job::Entity::find()
        .filter(entity::job::Column::ScanId.eq(scan_id))
        .one(&db)
        .await
        .unwrap()
        .expect("the scan's job");
    assert_eq!(job.status, "queued", "handed back, not left running");
    assert_eq!(job.lease_owner, None);
    assert_eq!(job.lease_expires_at, None);
    assert!(job.run_at <= chrono::Utc::now(), "due at once");

    let mut config = tc.config.clone();
    config.job_lease_secs = 30;
    let second = TestApp::spawn_with(config).await;
    let scan = second.wait_scan(Auth::Bearer(&token), &id).await;
    assert_eq!(scan["status"], "COMPLETE", "{scan}");
    assert_eq!(scan["counts"]["total"], N);
    assert_eq!(scan["findingsNew"], N);
    let findings = second
        .gql(
            Auth::Bearer(&token),
            "{ findings(pageSize: 1) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(findings.data("findings")["totalCount"], N, "no duplicates");
    second.stop().await;
}

#[test]
fn the_configuration_reference_in_the_docs_is_current() {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/operations.md"),
    )
    .expect("docs/operations.md");
    assert_eq!(
        rampart::config::reference::splice(&doc).expect("markers"),
        doc,
        "docs/operations.md is stale: run `rampart config-reference --write docs/operations.md`"
    );
}

/// The orgs, keys, audit and invitations services run in spans named after them, carrying the
/// org: their database work shows up under them in the logs (and in any tracing backend).
#[tokio::test]
async fn org_key_audit_and_invitation_services_run_in_spans() {
    let app = TestApp::spawn().await;
    let owner = app.login_admin().await;
    let org = app
        .gql(Auth::Bearer(&owner), "{ organization { id } }", json!({}))
        .await
        .data("organization")["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.invite(&owner, "spans@acme.test", "VIEWER").await;
    app.create_key(&owner, "READ").await;
    for field in ["auditEvents", "users", "invitations"] {
        let query = format!("{{ {field} {{ totalCount }} }}");
        app.gql(Auth::Bearer(&owner), &query, json!({}))
            .await
            .data(field);
    }
    let logs = crate::support::captured_logs();
    for span in [
        "invitations.invite",
        "invitations.list",
        "keys.create",
        "audit.list",
        "audit.record",
        "orgs.list_members",
    ] {
        assert!(
            logs.contains(&format!("{span}{{org={org}")),
            "no {span} span of org {org} in the logs"
        );
    }
}
