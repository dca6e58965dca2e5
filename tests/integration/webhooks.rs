//! Webhooks end to end: a receiver on loopback (allow-listed in the test's configuration)
//! checks every delivery's signature with a verifier written here from the Standard Webhooks
//! specification; retries against a receiver that fails first; 410 Gone; secrets shown once;
//! the SSRF guard at creation and at delivery; another org's webhooks and deliveries unseen.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rampart::ingest::synthetic::{sarif, SyntheticResult};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::sync::mpsc;

use crate::support::{assert_envelope, Auth, TestApp, TestConfig};

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: String,
    signatures: String,
    body: Bytes,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// An HTTP endpoint on loopback answering with the scripted statuses, then 200; a scripted 0
/// never answers (the request stays open until the sender goes away).
struct Receiver {
    port: u16,
    got: mpsc::UnboundedReceiver<Received>,
}

impl Receiver {
    async fn start(script: &[u16]) -> Self {
        let script = Arc::new(Mutex::new(
            script.iter().copied().collect::<VecDeque<u16>>(),
        ));
        let (tx, got) = mpsc::unbounded_channel();
        let handler = move |headers: HeaderMap, body: Bytes| {
            let script = script.clone();
            let tx = tx.clone();
            async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string()
                };
                let _ = tx.send(Received {
                    id: header("webhook-id"),
                    timestamp: header("webhook-timestamp"),
                    signatures: header("webhook-signature"),
                    body,
                });
                let status = script.lock().unwrap().pop_front().unwrap_or(200);
                if status == 0 {
                    std::future::pending::<()>().await;
                }
                (StatusCode::from_u16(status).unwrap(), "receiver says hello")
            }
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = axum::Router::new().route("/hook", axum::routing::post(handler));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { port, got }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    async fn next(&mut self) -> Received {
        tokio::time::timeout(std::time::Duration::from_secs(60), self.got.recv())
            .await
            .expect("a delivery within a minute")
            .expect("receiver running")
    }
}

/// The Standard Webhooks verification, from the specification: the signed content is
/// `{id}.{timestamp}.{body}`, the key the base64 after `whsec_`, each space-separated entry
/// `v1,<base64 HMAC-SHA256>`; the timestamp within five minutes of now.
fn verifies(secret: &str, got: &Received) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("whsec_ prefix"))
        .expect("base64 secret");
    let ts: i64 = got.timestamp.parse().expect("numeric timestamp");
    if (chrono::Utc::now().timestamp() - ts).abs() > 300 {
        return false;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.", got.id, got.timestamp).as_bytes());
    mac.update(&got.body);
    let expected = STANDARD.encode(mac.finalize().into_bytes());
    got.signatures
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .any(|s| s == expected)
}

/// A test app that may deliver to the receiver's port on loopback, retrying at once.
async fn app_for(receiver: &Receiver) -> TestApp {
    let tc = TestConfig::new().await;
    let mut config = tc.config.clone();
    config.webhook_allow_cidrs = vec!["127.0.0.0/8".parse().unwrap()];
    config.webhook_ports = vec![receiver.port];
    config.webhook_retry_schedule_secs = vec![0, 0, 0];
    let mut app = TestApp::spawn_with(config).await;
    app.test_config = Some(tc);
    app
}

const FIELDS: &str = "id url events enabled disabledReason minSeverity targetId";

async fn create(app: &TestApp, token: &str, input: Value) -> (Value, String) {
    let res = app
        .gql(
            Auth::Bearer(token),
            &format!("mutation($i: CreateWebhookInput!) {{ createWebhook(input: $i) {{ secret webhook {{ {FIELDS} }} }} }}"),
            json!({"i": input}),
        )
        .await;
    let created = res.data("createWebhook");
    (
        created["webhook"].clone(),
        created["secret"].as_str().unwrap().to_string(),
    )
}

const DELIVERY: &str = "id webhookId event status attempts statusCode latencyMs responseExcerpt error lastAttemptAt deliveredAt payload attemptLog { attemptedAt statusCode latencyMs responseExcerpt error }";

async fn delivery(app: &TestApp, token: &str, id: &str) -> Value {
    app.gql(
        Auth::Bearer(token),
        &format!("query($id: UUID!) {{ webhookDelivery(id: $id) {{ {DELIVERY} }} }}"),
        json!({"id": id}),
    )
    .await
    .data("webhookDelivery")
    .clone()
}

/// Polls a delivery until it is no longer pending.
async fn settled(app: &TestApp, token: &str, id: &str) -> Value {
    for _ in 0..600 {
        let d = delivery(app, token, id).await;
        if d["status"] != "PENDING" {
            return d;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("delivery {id} still pending after a minute");
}

async fn ping(app: &TestApp, token: &str, webhook: &str) -> Value {
    app.gql(
        Auth::Bearer(token),
        &format!("mutation($id: UUID!) {{ pingWebhook(id: $id) {{ {DELIVERY} }} }}"),
        json!({"id": webhook}),
    )
    .await
    .data("pingWebhook")
    .clone()
}

#[tokio::test]
async fn a_failing_endpoint_is_retried_until_it_answers_and_every_attempt_is_signed() {
    let mut receiver = Receiver::start(&[500, 503]).await;
    let app = app_for(&receiver).await;
    let token = app.login_admin().await;
    let (hook, secret) = create(
        &app,
        &token,
        json!({"url": receiver.url(), "events": ["SCAN_COMPLETED"], "description": "ci"}),
    )
    .await;
    assert!(secret.starts_with("whsec_"));
    assert_eq!(STANDARD.decode(&secret[6..]).unwrap().len(), 32);

    let queued = ping(&app, &token, hook["id"].as_str().unwrap()).await;
    let attempts = [
        receiver.next().await,
        receiver.next().await,
        receiver.next().await,
    ];
    for got in &attempts {
        assert!(verifies(&secret, got), "signature checks out: {got:?}");
        assert_eq!(
            got.id,
            queued["id"].as_str().unwrap(),
            "one webhook-id for every attempt"
        );
        assert_eq!(got.json()["type"], "ping");
    }
    let done = settled(&app, &token, queued["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "DELIVERED", "{done}");
    assert_eq!(done["attempts"], 3);
    assert_eq!(done["statusCode"], 200);
    assert_eq!(done["responseExcerpt"], "receiver says hello");
    assert!(done["latencyMs"].as_i64().is_some());
    assert!(done["deliveredAt"].is_string() && done["lastAttemptAt"].is_string());
    assert_eq!(done["error"], Value::Null);
    let log = done["attemptLog"].as_array().unwrap();
    let statuses: Vec<&Value> = log.iter().map(|a| &a["statusCode"]).collect();
    assert_eq!(statuses, [&json!(500), &json!(503), &json!(200)]);
    assert_eq!(log[0]["error"], "the endpoint answered HTTP 500");
    assert!(log
        .iter()
        .all(|a| a["attemptedAt"].is_string() && a["latencyMs"].is_number()));
    assert!(log
        .iter()
        .all(|a| a["responseExcerpt"] == "receiver says hello"));

    // Redelivered on request: the same body and webhook-id, signed again.
    let again = app
        .gql(
            Auth::Bearer(&token),
            "mutation($id: UUID!) { redeliverWebhookDelivery(id: $id) { status } }",
            json!({"id": queued["id"]}),
        )
        .await;
    assert_eq!(again.data("redeliverWebhookDelivery")["status"], "PENDING");
    let redelivered = receiver.next().await;
    assert_eq!(redelivered.id, attempts[0].id);
    assert_eq!(redelivered.body, attempts[0].body);
    assert!(verifies(&secret, &redelivered));
    let done = settled(&app, &token, queued["id"].as_str().unwrap()).await;
    assert_eq!(done["attempts"], 4);
    assert_eq!(done["attemptLog"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn scans_send_completed_and_new_findings_above_the_filter_and_failures() {
    let mut receiver = Receiver::start(&[]).await;
    let app = app_for(&receiver).await;
    let token = app.login_admin().await;
    let (_, secret) = create(
        &app,
        &token,
        json!({"url": receiver.url(), "events": ["SCAN_COMPLETED", "SCAN_FAILED", "FINDING_NEW"], "minSeverity": "HIGH"}),
    )
    .await;

    let scan = app
        .ingest_and_wait(
            Auth::Bearer(&token),
            "target=shop&target_kind=repository",
            sarif("semgrep", (0..9).map(SyntheticResult::numbered)),
        )
        .await;
    assert_eq!(scan["status"], "COMPLETE");
    let mut by_type = std::collections::HashMap::new();
    for _ in 0..2 {
        let got = receiver.next().await;
        assert!(verifies(&secret, &got));
        let body = got.json();
        by_type.insert(body["type"].as_str().unwrap().to_string(), body);
    }
    let completed = &by_type["scan.completed"];
    assert_eq!(completed["data"]["scan"]["id"], scan["id"]);
    assert_eq!(completed["data"]["scan"]["status"], "complete");
    assert_eq!(completed["data"]["scan"]["target"]["name"], "shop");
    assert_eq!(
        completed["data"]["scan"]["counts"]["total"],
        scan["counts"]["total"]
    );

    let new = &by_type["finding.new"]["data"];
    let expected =
        scan["counts"]["critical"].as_i64().unwrap() + scan["counts"]["high"].as_i64().unwrap();
    assert!(expected > 0, "the report has high findings: {scan}");
    assert_eq!(new["total"], expected);
    assert_eq!(new["min_severity"], "high");
    let listed = new["findings"].as_array().unwrap();
    assert_eq!(listed.len() as i64, expected);
    assert!(listed
        .iter()
        .all(|f| f["severity"] == "high" || f["severity"] == "critical"));
    assert_eq!(new["truncated"], false);
    // The link pages all of them, and only them.
    let link = new["links"]["findings"].as_str().unwrap();
    let res = app
        .http
        .get(app.url(&format!("{link}&page_size=1")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let paged: Value = res.json().await.unwrap();
    assert_eq!(paged["meta"]["total"], expected, "{link}: {paged}");
    assert!(paged["links"]["next"].is_string() || expected == 1);
    assert!(listed.iter().any(|f| f["id"] == paged["data"][0]["id"]));

    // The same report again: nothing new, so only scan.completed.
    let again = app
        .ingest_and_wait(
            Auth::Bearer(&token),
            "target=shop&target_kind=repository",
            sarif("semgrep", (0..9).map(SyntheticResult::numbered)),
        )
        .await;
    let got = receiver.next().await;
    assert_eq!(got.json()["type"], "scan.completed");
    // What such a link would list for it: nothing, though the scan saw every finding.
    let total = |query: String| {
        let app = &app;
        let token = &token;
        async move {
            let res = app
                .http
                .get(app.url(&format!("/api/v1/findings?{query}")))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            res.json::<Value>().await.unwrap()["meta"]["total"].clone()
        }
    };
    assert_eq!(
        total(format!("new_in_scan={}", again["id"].as_str().unwrap())).await,
        0
    );
    assert_eq!(
        total(format!("scan_id={}", again["id"].as_str().unwrap())).await,
        9
    );

    // A broken report: scan.failed, with the reason.
    let failed = app
        .ingest_and_wait(
            Auth::Bearer(&token),
            "target=shop&target_kind=repository",
            b"{ this is not a report".to_vec(),
        )
        .await;
    assert_eq!(failed["status"], "FAILED");
    let got = receiver.next().await;
    assert!(verifies(&secret, &got));
    let body = got.json();
    assert_eq!(body["type"], "scan.failed");
    assert_eq!(body["data"]["scan"]["id"], failed["id"]);
    assert!(body["data"]["scan"]["error"].is_string());
}

#[tokio::test]
async fn triage_decisions_are_sent_to_webhooks_that_want_them() {
    let mut receiver = Receiver::start(&[]).await;
    let app = app_for(&receiver).await;
    let token = app.login_admin().await;
    let (_, secret) = create(
        &app,
        &token,
        json!({"url": receiver.url(), "events": ["FINDING_TRIAGED"]}),
    )
    .await;
    let scan = app
        .ingest_and_wait(
            Auth::Bearer(&token),
            "target=api&target_kind=repository",
            sarif("semgrep", (0..2).map(SyntheticResult::numbered)),
        )
        .await;
    let findings = app
        .gql(
            Auth::Bearer(&token),
            "query($s: UUID!) { scanFindings(scanId: $s) { edges { node { id } } } }",
            json!({"s": scan["id"]}),
        )
        .await;
    let finding = findings.data("scanFindings")["edges"][0]["node"]["id"].clone();
    app.gql(
        Auth::Bearer(&token),
        "mutation($id: UUID!) { setFindingState(id: $id, input: {state: FALSE_POSITIVE, note: \"test fixture\"}) { id } }",
        json!({"id": finding}),
    )
    .await
    .data("setFindingState");
    let got = receiver.next().await;
    assert!(verifies(&secret, &got));
    let body = got.json();
    assert_eq!(body["type"], "finding.triaged");
    assert_eq!(body["data"]["finding"]["id"], finding);
    assert_eq!(body["data"]["triage"]["state"], "false_positive");
    assert_eq!(body["data"]["triage"]["previous_state"], "untriaged");
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_new_one_during_the_overlap() {
    let mut receiver = Receiver::start(&[]).await;
    let app = app_for(&receiver).await;
    let token = app.login_admin().await;
    let (hook, old) = create(
        &app,
        &token,
        json!({"url": receiver.url(), "events": ["SCAN_COMPLETED"]}),
    )
    .await;
    let rotated = app
        .gql(
            Auth::Bearer(&token),
            "mutation($id: UUID!) { rotateWebhookSecret(id: $id) { secret webhook { previousSecretExpiresAt } } }",
            json!({"id": hook["id"]}),
        )
        .await;
    let rotated = rotated.data("rotateWebhookSecret");
    let new = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert!(rotated["webhook"]["previousSecretExpiresAt"].is_string());
    ping(&app, &token, hook["id"].as_str().unwrap()).await;
    let got = receiver.next().await;
    assert_eq!(got.signatures.split(' ').count(), 2, "{}", got.signatures);
    assert!(verifies(&new, &got));
    assert!(verifies(&old, &got));
    assert!(!verifies(&rampart::webhooks::signing::new_secret(), &got));
}

#[tokio::test]
async fn gone_disables_the_endpoint() {
    let mut receiver = Receiver::start(&[410]).await;
    let app = app_for(&receiver).await;
    let token = app.login_admin().await;
    let (hook, _) = create(
        &app,
        &token,
        json!({"url": receiver.url(), "events": ["SCAN_COMPLETED"]}),
    )
    .await;
    let queued = ping(&app, &token, hook["id"].as_str().unwrap()).await;
    receiver.next().await;
    let done = settled(&app, &token, queued["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "FAILED");
    assert_eq!(done["statusCode"], 410);
    assert_eq!(done["attempts"], 1, "no retry after 410");
    let now = app
        .gql(
            Auth::Bearer(&token),
            &format!("query($id: UUID!) {{ webhook(id: $id) {{ {FIELDS} }} }}"),
            json!({"id": hook["id"]}),
        )
        .await;
    let now = now.data("webhook");
    assert_eq!(now["enabled"], false);
    assert!(now["disabledReason"].as_str().unwrap().contains("410"));
    // The org's owner is told, in the app.
    let told = app
        .gql(
            Auth::Bearer(&token),
            "{ notifications { edges { node { kind title body } } } }",
            json!({}),
        )
        .await;
    let told = told.data("notifications")["edges"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0]["node"]["kind"], "WEBHOOK_DISABLED");
    assert_eq!(
        told[0]["node"]["title"],
        format!("Webhook to {} was disabled", receiver.url())
    );
    assert!(told[0]["node"]["body"]
        .as_str()
        .unwrap()
        .contains("410 Gone"));
}

#[tokio::test]
async fn the_guard_checks_again_at_delivery_and_records_the_refusal() {
    let receiver = Receiver::start(&[]).await;
    let app = app_for(&receiver).await;
    let token = app.login_admin().await;
    let (hook, _) = create(
        &app,
        &token,
        json!({"url": receiver.url(), "events": ["SCAN_COMPLETED"]}),
    )
    .await;
    // What a DNS change after creation amounts to: the saved URL now leads to a metadata
    // address (written behind the API's back, which would refuse it).
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    entity::webhook::Entity::update_many()
        .col_expr(
            entity::webhook::Column::Url,
            sea_orm::sea_query::Expr::value(format!(
                "http://169.254.169.254:{}/latest/meta-data",
                receiver.port
            )),
        )
        .filter(
            entity::webhook::Column::Id
                .eq(uuid::Uuid::parse_str(hook["id"].as_str().unwrap()).unwrap()),
        )
        .exec(&app.state.db)
        .await
        .unwrap();
    let queued = ping(&app, &token, hook["id"].as_str().unwrap()).await;
    let done = settled(&app, &token, queued["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "FAILED", "{done}");
    assert_eq!(done["attempts"], 4, "every attempt recorded");
    assert_eq!(done["statusCode"], Value::Null);
    let error = done["error"].as_str().unwrap();
    assert!(
        error.contains("refused") && error.contains("metadata"),
        "{error}"
    );
    let log = done["attemptLog"].as_array().unwrap();
    assert_eq!(log.len(), 4);
    assert!(log
        .iter()
        .all(|a| a["statusCode"].is_null() && a["error"] == error));
}

#[tokio::test]
async fn urls_to_non_public_addresses_are_refused_at_creation() {
    let app = TestApp::spawn().await;
    let token = app.login_admin().await;
    for url in [
        "http://127.0.0.1/hook",
        "http://localhost/hook",
        "http://10.0.0.5/hook",
        "http://192.168.1.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://100.64.0.1/hook",
        "http://[::1]/hook",
        "http://[fd00:ec2::254]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[fe80::1]/hook",
        "ftp://8.8.8.8/hook",
        "https://8.8.8.8:8443/hook",
    ] {
        let res = app
            .http
            .post(app.url("/api/v1/webhooks"))
            .bearer_auth(&token)
            .json(&json!({"url": url, "events": ["scan_completed"]}))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap();
        // VALIDATION_FAILED is 422 throughout the API, this field included.
        assert_envelope(&body, 422, "VALIDATION_FAILED");
        assert_eq!(status, 422, "{url}: {body}");
        assert_eq!(body["details"][0]["field"], "url", "{url}: {body}");
    }
}

#[tokio::test]
async fn secrets_show_once_and_only_signed_in_admins_manage_webhooks() {
    let receiver = Receiver::start(&[]).await;
    let app = app_for(&receiver).await;
    let token = app.login_admin().await;
    let res = app
        .http
        .post(app.url("/api/v1/webhooks"))
        .bearer_auth(&token)
        .json(&json!({"url": receiver.url(), "events": ["scan_completed", "finding_new"], "min_severity": "high", "description": "chat"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    let secret = created["data"]["secret"].as_str().unwrap().to_string();
    let id = created["data"]["webhook"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        created["data"]["webhook"]["events"],
        json!(["scan_completed", "finding_new"])
    );
    assert_eq!(created["data"]["webhook"]["min_severity"], "high");

    for path in [
        "/api/v1/webhooks".to_string(),
        format!("/api/v1/webhooks/{id}"),
        format!("/api/v1/webhooks/{id}/deliveries"),
    ] {
        let res = app
            .http
            .get(app.url(&path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let text = res.text().await.unwrap();
        assert!(
            !text.contains(&secret) && !text.contains("whsec_"),
            "{path}: {text}"
        );
    }
    let patched = app
        .http
        .patch(app.url(&format!("/api/v1/webhooks/{id}")))
        .bearer_auth(&token)
        .json(&json!({"enabled": false, "min_severity": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    let patched: Value = patched.json().await.unwrap();
    assert_eq!(patched["data"]["enabled"], false);
    assert_eq!(patched["data"]["min_severity"], Value::Null);
    assert_eq!(patched["data"]["description"], "chat");

    let key = app.create_key(&token, "WRITE").await;
    let res = app
        .http
        .post(app.url("/api/v1/webhooks"))
        .header("x-api-key", &key)
        .json(&json!({"url": receiver.url(), "events": ["scan_completed"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_envelope(&res.json().await.unwrap(), 403, "SESSION_REQUIRED");
    let res = app
        .http
        .get(app.url("/api/v1/webhooks"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    app.add_member(&token, "dev@acme.test", "MEMBER").await;
    let (member, _) = app.login("dev@acme.test", "member-password").await;
    let res = app
        .gql(
            Auth::Bearer(&member),
            "mutation($id: UUID!) { rotateWebhookSecret(id: $id) { secret } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(res.code(), Some("FORBIDDEN"));

    let res = app
        .http
        .delete(app.url(&format!("/api/v1/webhooks/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let (status, _) = {
        let res = app
            .http
            .get(app.url(&format!("/api/v1/webhooks/{id}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), ())
    };
    assert_eq!(status, 404);
}

#[tokio::test]
async fn another_orgs_webhooks_and_deliveries_are_not_found_and_bodies_stay_in_their_org() {
    let mut receiver = Receiver::start(&[]).await;
    let app = app_for(&receiver).await;
    let token_a = app.login_admin().await;
    let (hook_a, secret_a) = create(
        &app,
        &token_a,
        json!({"url": receiver.url(), "events": ["SCAN_COMPLETED", "FINDING_NEW"]}),
    )
    .await;
    let (_, token_b) = app
        .switch_to_new_org(&app.login_admin().await, "Other")
        .await;
    let (hook_b, secret_b) = create(
        &app,
        &token_b,
        json!({"url": receiver.url(), "events": ["SCAN_COMPLETED", "FINDING_NEW"]}),
    )
    .await;

    let scan_a = app
        .ingest_and_wait(
            Auth::Bearer(&token_a),
            "target=a-repo&target_kind=repository",
            sarif("semgrep", (0..3).map(SyntheticResult::numbered)),
        )
        .await;
    let scan_b = app
        .ingest_and_wait(
            Auth::Bearer(&token_b),
            "target=b-repo&target_kind=repository",
            sarif("semgrep", (3..6).map(SyntheticResult::numbered)),
        )
        .await;
    for _ in 0..4 {
        let got = receiver.next().await;
        let body = got.json();
        let text = String::from_utf8_lossy(&got.body).to_string();
        let scan_id = body["data"]["scan"]["id"].clone();
        if verifies(&secret_a, &got) {
            assert!(!verifies(&secret_b, &got));
            assert_eq!(scan_id, scan_a["id"]);
            assert!(!text.contains(scan_b["id"].as_str().unwrap()) && !text.contains("b-repo"));
        } else {
            assert!(verifies(&secret_b, &got));
            assert_eq!(scan_id, scan_b["id"]);
            assert!(!text.contains(scan_a["id"].as_str().unwrap()) && !text.contains("a-repo"));
        }
    }

    let deliveries = app
        .gql(
            Auth::Bearer(&token_a),
            "query($id: UUID!) { webhookDeliveries(webhookId: $id) { edges { node { id } } } }",
            json!({"id": hook_a["id"]}),
        )
        .await;
    let delivery_a = deliveries.data("webhookDeliveries")["edges"][0]["node"]["id"].clone();
    assert!(delivery_a.is_string());
    let list_b = app
        .gql(
            Auth::Bearer(&token_b),
            "{ webhooks { edges { node { id } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        list_b.data("webhooks")["edges"],
        json!([{"node": {"id": hook_b["id"]}}])
    );
    for (query, id) in [
        (
            "query($id: UUID!) { webhook(id: $id) { id } }",
            &hook_a["id"],
        ),
        (
            "query($id: UUID!) { webhookDeliveries(webhookId: $id) { totalCount } }",
            &hook_a["id"],
        ),
        (
            "query($id: UUID!) { webhookDelivery(id: $id) { id } }",
            &delivery_a,
        ),
        (
            "mutation($id: UUID!) { pingWebhook(id: $id) { id } }",
            &hook_a["id"],
        ),
        (
            "mutation($id: UUID!) { rotateWebhookSecret(id: $id) { secret } }",
            &hook_a["id"],
        ),
        (
            "mutation($id: UUID!) { deleteWebhook(id: $id) }",
            &hook_a["id"],
        ),
        (
            "mutation($id: UUID!) { redeliverWebhookDelivery(id: $id) { id } }",
            &delivery_a,
        ),
    ] {
        let res = app
            .gql(Auth::Bearer(&token_b), query, json!({"id": id}))
            .await;
        assert_eq!(res.code(), Some("NOT_FOUND"), "{query}: {}", res.body);
    }
    for path in [
        format!("/api/v1/webhooks/{}", hook_a["id"].as_str().unwrap()),
        format!(
            "/api/v1/webhook-deliveries/{}",
            delivery_a.as_str().unwrap()
        ),
    ] {
        let res = app
            .http
            .get(app.url(&path))
            .bearer_auth(&token_b)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn a_worker_killed_mid_delivery_leaves_it_to_the_next_process() {
    let mut receiver = Receiver::start(&[0]).await;
    let tc = TestConfig::new().await;
    let port = receiver.port.to_string();
    let env = [
        ("RAMPART_WEBHOOK_ALLOW_CIDRS", "127.0.0.0/8"),
        ("RAMPART_WEBHOOK_PORTS", port.as_str()),
    ];
    let (mut first, base) = crate::crash::serve_with(&tc, &env);
    let http = reqwest::Client::new();
    let gql = |base: String, token: Option<String>, query: &'static str, vars: Value| {
        let http = http.clone();
        async move {
            let mut req = http
                .post(format!("{base}/graphql"))
                .json(&json!({"query": query, "variables": vars}));
            if let Some(token) = token {
                req = req.bearer_auth(token);
            }
            req.send().await.unwrap().json::<Value>().await.unwrap()
        }
    };
    let login = gql(
        base.clone(),
        None,
        "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
        json!({"e": crate::support::ADMIN_EMAIL, "p": crate::support::ADMIN_PASSWORD}),
    )
    .await;
    let token = login["data"]["login"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let created = gql(
        base.clone(),
        Some(token.clone()),
        "mutation($u: String!) { createWebhook(input: {url: $u, events: [SCAN_COMPLETED]}) { secret webhook { id } } }",
        json!({"u": receiver.url()}),
    )
    .await;
    let secret = created["data"]["createWebhook"]["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let hook = created["data"]["createWebhook"]["webhook"]["id"].clone();
    let pinged = gql(
        base.clone(),
        Some(token.clone()),
        "mutation($id: UUID!) { pingWebhook(id: $id) { id } }",
        json!({"id": hook}),
    )
    .await;
    let delivery = pinged["data"]["pingWebhook"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // The first process is sending (the receiver holds the request open): kill it.
    let held = receiver.next().await;
    assert_eq!(held.id, delivery);
    first.kill().unwrap();
    first.wait().unwrap();

    let (mut second, base) = crate::crash::serve_with(&tc, &env);
    let again = receiver.next().await;
    assert_eq!(
        again.id, delivery,
        "the same webhook-id, so the receiver can drop the duplicate"
    );
    assert_eq!(again.body, held.body);
    assert!(verifies(&secret, &again));
    let mut last = Value::Null;
    for _ in 0..600 {
        last = gql(
            base.clone(),
            Some(token.clone()),
            "query($id: UUID!) { webhookDelivery(id: $id) { status attempts statusCode } }",
            json!({"id": delivery}),
        )
        .await;
        if last["data"]["webhookDelivery"]["status"] != "PENDING" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        last["data"]["webhookDelivery"]["status"], "DELIVERED",
        "{last}"
    );
    assert_eq!(last["data"]["webhookDelivery"]["statusCode"], 200);
    second.kill().unwrap();
    second.wait().unwrap();
}

#[tokio::test]
async fn an_endpoint_failing_for_days_is_disabled() {
    let mut receiver = Receiver::start(&[500]).await;
    let app = app_for(&receiver).await;
    let token = app.login_admin().await;
    let (hook, _) = create(
        &app,
        &token,
        json!({"url": receiver.url(), "events": ["SCAN_COMPLETED"]}),
    )
    .await;
    // Failing since before the configured number of days (5 by default).
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    entity::webhook::Entity::update_many()
        .col_expr(
            entity::webhook::Column::FailingSince,
            sea_orm::sea_query::Expr::value(Some(chrono::Utc::now() - chrono::Duration::days(6))),
        )
        .filter(
            entity::webhook::Column::Id
                .eq(uuid::Uuid::parse_str(hook["id"].as_str().unwrap()).unwrap()),
        )
        .exec(&app.state.db)
        .await
        .unwrap();
    let queued = ping(&app, &token, hook["id"].as_str().unwrap()).await;
    receiver.next().await;
    let done = settled(&app, &token, queued["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "FAILED");
    assert_eq!(done["attempts"], 1, "no retry once disabled");
    let now = app
        .gql(
            Auth::Bearer(&token),
            &format!("query($id: UUID!) {{ webhook(id: $id) {{ {FIELDS} failingSince }} }}"),
            json!({"id": hook["id"]}),
        )
        .await;
    let now = now.data("webhook");
    assert_eq!(now["enabled"], false);
    assert!(
        now["disabledReason"].as_str().unwrap().contains("5 days"),
        "{now}"
    );
    // Enabled again by an admin: its failures are forgotten.
    let enabled = app
        .gql(
            Auth::Bearer(&token),
            "mutation($id: UUID!) { updateWebhook(id: $id, input: {enabled: true}) { enabled disabledReason failingSince } }",
            json!({"id": hook["id"]}),
        )
        .await;
    assert_eq!(
        enabled.data("updateWebhook").clone(),
        json!({"enabled": true, "disabledReason": null, "failingSince": null})
    );
}
