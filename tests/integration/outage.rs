//! Backend outages: a request that needs a backend which is gone answers `503
//! SERVICE_UNAVAILABLE` with `Retry-After`, promptly, naming the backend but not its address or
//! the driver's words; a WebSocket closes with a code that tells clients to try again.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::support::proxy::{socket_of, through, Proxy};
use crate::support::ADMIN_EMAIL;
use crate::support::{assert_envelope, Auth, TestApp, TestConfig, TestEnv, ADMIN_PASSWORD};
use rampart::ingest::synthetic::{sarif, SyntheticResult};

/// Far below the old 10 s pool wait, far above the 1 s one: an answer must come in this.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

fn quick_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(ANSWER_WITHIN)
        .build()
        .expect("client")
}

/// The answer's status, `Retry-After` and JSON body; fails the test when no answer comes in
/// [`ANSWER_WITHIN`].
async fn answer(req: reqwest::RequestBuilder) -> (u16, Option<u64>, Value) {
    let res = req.send().await.expect("an answer within 5 s");
    let status = res.status().as_u16();
    let retry_after = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (status, retry_after, res.json().await.expect("JSON body"))
}

/// A 503 that names `backend` and tells nothing of where it runs or what the driver said.
fn assert_unavailable(
    (status, retry_after, body): &(u16, Option<u64>, Value),
    backend: &str,
    secrets: &[&str],
) {
    assert_eq!(*status, 503, "{body}");
    assert!(retry_after.is_some_and(|s| s >= 1), "Retry-After: {body}");
    let text = body.to_string();
    assert!(
        text.contains(&format!("the {backend} is unavailable")),
        "{text}"
    );
    for secret in secrets {
        assert!(!text.contains(secret), "{secret:?} leaked: {text}");
    }
}

/// The GraphQL error of a whole failed request.
fn assert_graphql_unavailable(answer: &(u16, Option<u64>, Value), backend: &str, secrets: &[&str]) {
    assert_unavailable(answer, backend, secrets);
    let error = &answer.2["errors"][0];
    assert_eq!(
        error["extensions"]["code"], "SERVICE_UNAVAILABLE",
        "{}",
        answer.2
    );
    assert_eq!(error["extensions"]["statusCode"], 503, "{error}");
}

/// What only the driver or the deployment would say: addresses, ports, names, SDK words.
fn database_secrets(db_url: &str, db_name: &str) -> Vec<String> {
    let addr = socket_of(db_url);
    vec![
        addr.ip().to_string(),
        format!(":{}", addr.port()),
        db_name.to_string(),
        "postgres".into(),
        "pool".into(),
        "sqlx".into(),
        "connection".into(),
    ]
}

/// `graphql-transport-ws` up to the server's answer to `connection_init`: the close code, or
/// `None` when it acknowledged.
async fn websocket_init(app: &TestApp, payload: Value) -> Option<u16> {
    let mut request = format!("ws://{}/graphql/ws", app.addr)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) =
        tokio::time::timeout(ANSWER_WITHIN, tokio_tungstenite::connect_async(request))
            .await
            .expect("upgrade in time")
            .expect("websocket");
    ws.send(Message::Text(
        json!({"type": "connection_init", "payload": payload})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    loop {
        let message = tokio::time::timeout(ANSWER_WITHIN, ws.next())
            .await
            .expect("an answer to connection_init in time");
        match message {
            Some(Ok(Message::Text(text))) => {
                let value: Value = serde_json::from_str(&text).unwrap();
                match value["type"].as_str() {
                    Some("connection_ack") => return None,
                    Some("ping") => continue,
                    _ => panic!("unexpected {value}"),
                }
            }
            Some(Ok(Message::Close(frame))) => return Some(frame.map_or(1005, |f| f.code.into())),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Some(1006),
        }
    }
}

/// Stops or restores new connections to a test database, and ends the open ones.
async fn set_connections(admin_url: &str, db_name: &str, allowed: bool) {
    let admin = Database::connect(admin_url)
        .await
        .expect("PostgreSQL admin");
    admin
        .execute_unprepared(&format!(
            "ALTER DATABASE \"{db_name}\" ALLOW_CONNECTIONS {allowed}"
        ))
        .await
        .expect("alter database");
    if !allowed {
        admin
            .execute_unprepared(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = '{db_name}' AND pid <> pg_backend_pid()"
            ))
            .await
            .expect("terminate connections");
    }
    admin.close().await.ok();
}

/// PostgreSQL stops taking connections to the app's database and ends the open ones: REST
/// (through the auth middleware and through a REST row), GraphQL and the WebSocket each answer
/// at once that the database is unavailable, and all is well again once it is back. Then the
/// server disappears altogether (connections refused): still a 503, within the pool's short
/// wait instead of a long one.
#[tokio::test]
#[cfg_attr(
    not(rampart_test_postgres),
    ignore = "needs RAMPART_TEST_DATABASE_URL (the scale-out run): the embedded SQLite file has no server that can go away"
)]
async fn database_outage_answers_503_with_retry_after() {
    let env = TestEnv::from_env();
    let admin_url = env
        .postgres_url
        .clone()
        .expect("this test needs PostgreSQL: set RAMPART_TEST_DATABASE_URL");
    let test_config = TestConfig::for_env(&env).await;
    let db_url = test_config.config.database_url.clone().expect("PostgreSQL");
    let db_name = db_url.rsplit('/').next().unwrap().to_string();
    let proxy = Proxy::start(socket_of(&db_url)).await;
    let mut config = test_config.config.clone();
    config.database_url = Some(through(&db_url, proxy.addr));
    let app = TestApp::spawn_with(config).await;
    let token = app.login_admin().await;
    let key = app.create_key(&token, "READ").await;
    let mut secrets = database_secrets(&db_url, &db_name);
    secrets.push(proxy.addr.to_string());
    secrets.push(format!(":{}", proxy.addr.port()));
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let http = quick_client();

    set_connections(&admin_url, &db_name, false).await;

    let scans = answer(http.get(app.url("/api/v1/scans")).header("x-api-key", &key)).await;
    assert_unavailable(&scans, "database", &secrets);
    assert_envelope(&scans.2, 503, "SERVICE_UNAVAILABLE");

    let login = answer(
        http.post(app.url("/api/v1/auth/login"))
            .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})),
    )
    .await;
    assert_unavailable(&login, "database", &secrets);
    assert_envelope(&login.2, 503, "SERVICE_UNAVAILABLE");

    let query = answer(
        http.post(app.url("/graphql"))
            .json(&json!({"query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
                "variables": {"e": ADMIN_EMAIL, "p": ADMIN_PASSWORD}})),
    )
    .await;
    assert_graphql_unavailable(&query, "database", &secrets);

    let closed = websocket_init(&app, json!({"apiKey": key})).await;
    assert_eq!(closed, Some(1013), "a retryable close code");

    let ready = answer(http.get(app.url("/ready"))).await;
    assert_unavailable(&ready, "database", &secrets);

    set_connections(&admin_url, &db_name, true).await;
    let (status, _, body) =
        answer(http.get(app.url("/api/v1/scans")).header("x-api-key", &key)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(websocket_init(&app, json!({"apiKey": key})).await, None);

    // The server is gone: connecting is refused until the pool's wait runs out.
    proxy.cut().await;
    let scans = answer(http.get(app.url("/api/v1/scans")).header("x-api-key", &key)).await;
    assert_unavailable(&scans, "database", &secrets);
    let query = answer(
        http.post(app.url("/graphql"))
            .json(&json!({"query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
                "variables": {"e": ADMIN_EMAIL, "p": ADMIN_PASSWORD}})),
    )
    .await;
    assert_graphql_unavailable(&query, "database", &secrets);
    drop(app);
    drop(test_config);
}

/// The object store fails for real (on S3: its connection is cut; on the embedded default:
/// the reports directory is replaced by a file): uploads and downloads of raw reports answer
/// 503 naming the object store, without its address or path.
#[tokio::test]
async fn object_store_outage_answers_503_with_retry_after() {
    let env = TestEnv::from_env();
    let test_config = TestConfig::for_env(&env).await;
    let mut config = test_config.config.clone();
    let s3_proxy = match &env.s3 {
        Some(s3) => {
            let proxy = Proxy::start(socket_of(&s3.endpoint)).await;
            config.s3_endpoint = Some(through(&s3.endpoint, proxy.addr));
            Some((proxy, s3.endpoint.clone()))
        }
        None => None,
    };
    let app = TestApp::spawn_with(config).await;
    let token = app.login_admin().await;
    let scan = app
        .ingest_and_wait(
            Auth::Bearer(&token),
            "target=outage&target_kind=repository",
            sarif("bandit", (0..3).map(SyntheticResult::numbered)),
        )
        .await;
    let raw_path = format!("/api/v1/scans/{}/raw", scan["id"].as_str().unwrap());
    let http = quick_client();
    assert_eq!(
        answer_status(http.get(app.url(&raw_path)).bearer_auth(&token)).await,
        200
    );

    let reports_root = app.state.config.data_dir.join("reports");
    let mut secrets: Vec<String> = vec![reports_root.display().to_string(), "s3 ".into()];
    match s3_proxy {
        Some((proxy, endpoint)) => {
            let addr = proxy.addr;
            proxy.cut().await;
            secrets.push(addr.to_string());
            secrets.push(socket_of(&endpoint).to_string());
            secrets.push(format!(":{}", addr.port()));
        }
        None => {
            std::fs::remove_dir_all(&reports_root).unwrap();
            std::fs::write(&reports_root, b"not a directory").unwrap();
        }
    }
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();

    let download = answer(http.get(app.url(&raw_path)).bearer_auth(&token)).await;
    assert_unavailable(&download, "object store", &secrets);
    assert_envelope(&download.2, 503, "SERVICE_UNAVAILABLE");

    let upload = answer(
        http.post(app.url("/api/v1/ingest?target=outage&target_kind=repository"))
            .bearer_auth(&token)
            .body(sarif("bandit", (0..2).map(SyntheticResult::numbered))),
    )
    .await;
    assert_unavailable(&upload, "object store", &secrets);
    assert_envelope(&upload.2, 503, "SERVICE_UNAVAILABLE");

    let ready = answer(http.get(app.url("/ready"))).await;
    assert_unavailable(&ready, "object store", &secrets);
    drop(test_config);
}

async fn answer_status(req: reqwest::RequestBuilder) -> u16 {
    req.send().await.expect("an answer").status().as_u16()
}
