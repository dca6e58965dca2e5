//! Live progress: GraphQL subscriptions over both WebSocket protocols, SSE, across processes.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use rampart::ingest::synthetic::{sarif, SyntheticResult};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{Auth, TestApp, TestConfig, TestEnv};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(app: &TestApp, protocol: &str) -> Ws {
    let mut request = format!("ws://{}/graphql/ws", app.addr)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", protocol.parse().unwrap());
    let (ws, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket");
    assert_eq!(response.headers()["sec-websocket-protocol"], protocol);
    ws
}

async fn send(ws: &mut Ws, message: Value) {
    ws.send(Message::Text(message.to_string().into()))
        .await
        .unwrap();
}

/// The next protocol message, skipping keep-alives; `Err(code)` when the server closed.
async fn recv(ws: &mut Ws) -> Result<Value, u16> {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("a message in time");
        match message {
            Some(Ok(Message::Text(text))) => {
                let value: Value = serde_json::from_str(&text).unwrap();
                if matches!(value["type"].as_str(), Some("ping" | "ka")) {
                    continue;
                }
                return Ok(value);
            }
            Some(Ok(Message::Close(frame))) => return Err(frame.map_or(1005, |f| f.code.into())),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Err(1006),
        }
    }
}

/// The next message for subscription `id`, skipping other subscriptions' messages.
async fn recv_for(ws: &mut Ws, id: &str) -> Value {
    loop {
        let message = recv(ws).await.expect("open");
        if message["id"] == id {
            return message;
        }
    }
}

async fn init(ws: &mut Ws, payload: Value) -> Result<Value, u16> {
    send(ws, json!({"type": "connection_init", "payload": payload})).await;
    recv(ws).await
}

const PROGRESS: &str = "subscription($id: UUID!) { scanProgress(scanId: $id) { scanId status phase percent processed findingsNew findingsFixed at } }";

/// Waits until subscription `id` (a `scanEvents` of the caller's org `org_id`) receives events:
/// publishes probe events of made-up scans until one arrives. Probes of other scans may still
/// arrive later; callers look at their own scan's events only.
async fn wait_following_org_events(app: &TestApp, ws: &mut Ws, id: &str, org_id: &str) {
    let org_id: uuid::Uuid = org_id.parse().unwrap();
    for _ in 0..300 {
        let probe = rampart::live::ScanProgress::new(
            uuid::Uuid::new_v4(),
            uuid::Uuid::new_v4(),
            rampart::scans::ScanStatus::Queued,
            "queued",
        );
        rampart::live::publish(&*app.state.bus, org_id, &probe).await;
        if tokio::time::timeout(Duration::from_millis(100), recv_for(ws, id))
            .await
            .is_ok()
        {
            return;
        }
    }
    panic!("subscription {id} received none of 300 probe events");
}

/// The org the caller's token acts for.
async fn org_of(app: &TestApp, token: &str) -> String {
    let res = app
        .gql(Auth::Bearer(token), "{ organization { id } }", json!({}))
        .await;
    res.data("organization")["id"].as_str().unwrap().to_string()
}

fn big_report(n: u64) -> Vec<u8> {
    sarif("semgrep", (0..n).map(SyntheticResult::numbered))
}

#[tokio::test]
async fn transport_ws_follows_a_scan_to_complete() {
    let app = TestApp::spawn().await;
    let token = app.login_admin().await;
    let mut ws = connect(&app, "graphql-transport-ws").await;
    assert_eq!(
        init(&mut ws, json!({"Authorization": format!("Bearer {token}")}))
            .await
            .unwrap()["type"],
        "connection_ack"
    );
    send(&mut ws, json!({"id": "events", "type": "subscribe", "payload": {"query": "subscription { scanEvents { scanId status } }"}})).await;
    wait_following_org_events(&app, &mut ws, "events", &org_of(&app, &token).await).await;

    const N: u64 = 20_000;
    let accepted = app
        .ingest(Auth::Bearer(&token), "target=live", big_report(N))
        .await;
    let id = accepted.body["data"]["id"].as_str().unwrap().to_string();
    send(&mut ws, json!({"id": "p", "type": "subscribe", "payload": {"query": PROGRESS, "variables": {"id": id}}})).await;

    let mut progress = Vec::new();
    let mut statuses = Vec::new();
    loop {
        let message = recv(&mut ws).await.expect("open");
        match (message["type"].as_str(), message["id"].as_str()) {
            (Some("next"), Some("p")) => {
                progress.push(message["payload"]["data"]["scanProgress"].clone())
            }
            (Some("next"), Some("events"))
                if message["payload"]["data"]["scanEvents"]["scanId"] == id.as_str() =>
            {
                statuses.push(
                    message["payload"]["data"]["scanEvents"]["status"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                )
            }
            (Some("next"), Some("events")) => {} // a late probe
            (Some("complete"), Some("p")) => break,
            other => panic!("unexpected {other:?}: {message}"),
        }
    }
    let last = progress.last().unwrap();
    assert_eq!(last["status"], "COMPLETE");
    assert_eq!(last["percent"], 100.0);
    assert_eq!(last["findingsNew"], N);
    for pair in progress.windows(2) {
        assert!(
            pair[1]["percent"].as_f64() >= pair[0]["percent"].as_f64(),
            "{pair:?}"
        );
        assert!(
            pair[1]["processed"].as_u64() >= pair[0]["processed"].as_u64(),
            "{pair:?}"
        );
        assert!(pair[1]["at"].as_str() >= pair[0]["at"].as_str(), "{pair:?}");
    }
    // The org-wide stream saw the status changes.
    for _ in 0..20 {
        if statuses.last().map(String::as_str) == Some("COMPLETE") {
            break;
        }
        let message = recv(&mut ws).await.expect("open");
        if message["id"] == "events"
            && message["payload"]["data"]["scanEvents"]["scanId"] == id.as_str()
        {
            statuses.push(
                message["payload"]["data"]["scanEvents"]["status"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
    }
    assert_eq!(
        statuses.first().map(String::as_str),
        Some("QUEUED"),
        "{statuses:?}"
    );
    assert_eq!(
        statuses.last().map(String::as_str),
        Some("COMPLETE"),
        "{statuses:?}"
    );

    // A late subscriber to the finished scan gets its final state at once, then completion.
    send(&mut ws, json!({"id": "late", "type": "subscribe", "payload": {"query": PROGRESS, "variables": {"id": id}}})).await;
    let mut late = Vec::new();
    loop {
        let message = recv(&mut ws).await.expect("open");
        if message["id"] != "late" {
            continue;
        }
        if message["type"] == "complete" {
            break;
        }
        late.push(message["payload"]["data"]["scanProgress"]["status"].clone());
    }
    assert_eq!(late, vec![json!("COMPLETE")]);
}

/// The subscription's answers on one connection until `complete`.
async fn answers_until_complete(ws: &mut Ws, id: &str) -> Vec<Value> {
    let mut answers = Vec::new();
    loop {
        let message = recv(ws).await.expect("open");
        assert_eq!(message["id"], id, "{message}");
        match message["type"].as_str() {
            Some("next" | "data") => answers.push(message["payload"].clone()),
            Some("complete") => return answers,
            _ => panic!("unexpected {message}"),
        }
    }
}

#[tokio::test]
async fn followers_of_a_scan_share_one_execution_per_document() {
    // An API-only process: the scan stays queued until it is cancelled below.
    let tc = TestConfig::new().await;
    let mut api_only = tc.config.clone();
    api_only.role = rampart::config::Role::Api;
    let app = TestApp::spawn_with(api_only).await;
    let token = app.login_admin().await;
    let accepted = app
        .ingest(Auth::Bearer(&token), "target=shared", big_report(10))
        .await;
    let id = accepted.body["data"]["id"].as_str().unwrap().to_string();

    let auth = json!({"Authorization": format!("Bearer {token}")});
    let mut first = connect(&app, "graphql-transport-ws").await;
    let mut second = connect(&app, "graphql-ws").await;
    let mut other_document = connect(&app, "graphql-transport-ws").await;
    for ws in [&mut first, &mut other_document] {
        init(ws, auth.clone()).await.unwrap();
    }
    let subscribe = |kind: &str, query: &str| json!({"id": "s", "type": kind, "payload": {"query": query, "variables": {"id": id}}});
    send(&mut first, subscribe("subscribe", PROGRESS)).await;
    // This one subscribes without waiting for the acknowledgement.
    send(
        &mut second,
        json!({"type": "connection_init", "payload": auth.clone()}),
    )
    .await;
    send(&mut second, subscribe("start", PROGRESS)).await;
    assert_eq!(recv(&mut second).await.unwrap()["type"], "connection_ack");
    let phase_only = "subscription($id: UUID!) { scanProgress(scanId: $id) { phase } }";
    send(&mut other_document, subscribe("subscribe", phase_only)).await;
    for ws in [&mut first, &mut second] {
        let message = recv(ws).await.unwrap();
        assert_eq!(
            message["payload"]["data"]["scanProgress"]["status"], "QUEUED",
            "{message}"
        );
    }
    assert_eq!(
        recv(&mut other_document).await.unwrap()["payload"],
        json!({"data": {"scanProgress": {"phase": "queued"}}})
    );
    assert_eq!(
        app.state.shared_subscriptions.running(),
        2,
        "one execution per distinct document, not per subscriber"
    );

    // A late joiner of the same document starts from the current state and adds no execution.
    let mut late = connect(&app, "graphql-transport-ws").await;
    init(&mut late, auth.clone()).await.unwrap();
    send(&mut late, subscribe("subscribe", PROGRESS)).await;
    assert_eq!(
        recv(&mut late).await.unwrap()["payload"]["data"]["scanProgress"]["status"],
        "QUEUED"
    );
    assert_eq!(app.state.shared_subscriptions.running(), 2);
    // Leaving does not end the others' subscription.
    send(&mut late, json!({"id": "s", "type": "complete"})).await;
    assert_eq!(recv(&mut late).await.unwrap()["type"], "complete");

    // A caller of another org with the same document gets an execution of its own: refused.
    // (A session of its own: switching moves the session to the other org.)
    let switching = app.login_admin().await;
    let (_, in_b) = app.switch_to_new_org(&switching, "Org B").await;
    let mut foreign = connect(&app, "graphql-transport-ws").await;
    init(
        &mut foreign,
        json!({"Authorization": format!("Bearer {in_b}")}),
    )
    .await
    .unwrap();
    send(&mut foreign, subscribe("subscribe", PROGRESS)).await;
    let refused = answers_until_complete(&mut foreign, "s").await;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["errors"][0]["extensions"]["code"], "NOT_FOUND");
    assert!(refused[0]["data"].is_null());

    let cancelled = app
        .gql(
            Auth::Bearer(&token),
            "mutation($id: UUID!) { cancelScan(id: $id) { status } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(cancelled.data("cancelScan")["status"], "CANCELLED");
    let first_answers = answers_until_complete(&mut first, "s").await;
    let second_answers = answers_until_complete(&mut second, "s").await;
    assert_eq!(first_answers, second_answers);
    assert_eq!(
        first_answers.last().unwrap()["data"]["scanProgress"]["status"],
        "CANCELLED"
    );
    let phases = answers_until_complete(&mut other_document, "s").await;
    assert_eq!(
        phases.last().unwrap(),
        &json!({"data": {"scanProgress": {"phase": "cancelled"}}})
    );
    for _ in 0..100 {
        if app.state.shared_subscriptions.running() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.state.shared_subscriptions.running(), 0);

    drop(tc);
}

#[tokio::test]
async fn client_messages_larger_than_the_read_buffer_still_work() {
    let app = TestApp::spawn().await;
    let token = app.login_admin().await;
    let scan = app
        .ingest_and_wait(Auth::Bearer(&token), "target=big-message", big_report(3))
        .await;
    let mut ws = connect(&app, "graphql-transport-ws").await;
    let ack = init(&mut ws, json!({"Authorization": format!("Bearer {token}")})).await;
    assert_eq!(ack.unwrap()["type"], "connection_ack");
    // A 64 KiB comment: far beyond the 4 KiB read buffer per connection.
    let query = format!("# {}\n{PROGRESS}", "x".repeat(64 * 1024));
    send(&mut ws, json!({"id": "big", "type": "subscribe", "payload": {"query": query, "variables": {"id": scan["id"]}}})).await;
    let next = recv(&mut ws).await.expect("open");
    assert_eq!(next["type"], "next", "{next}");
    assert_eq!(
        next["payload"]["data"]["scanProgress"]["status"],
        "COMPLETE"
    );
    assert_eq!(recv(&mut ws).await.expect("open")["type"], "complete");
}

#[tokio::test]
async fn legacy_graphql_ws_protocol_works_too() {
    let app = TestApp::spawn().await;
    let key = app.create_key(&app.login_admin().await, "WRITE").await;
    let mut ws = connect(&app, "graphql-ws").await;
    assert_eq!(
        init(&mut ws, json!({"apiKey": key})).await.unwrap()["type"],
        "connection_ack"
    );
    let accepted = app
        .ingest(Auth::ApiKey(&key), "target=legacy", big_report(2_000))
        .await;
    let id = accepted.body["data"]["id"].as_str().unwrap().to_string();
    send(&mut ws, json!({"id": "1", "type": "start", "payload": {"query": PROGRESS, "variables": {"id": id}}})).await;
    let mut last = Value::Null;
    loop {
        let message = recv(&mut ws).await.expect("open");
        match message["type"].as_str() {
            Some("data") => last = message["payload"]["data"]["scanProgress"].clone(),
            Some("complete") => break,
            other => panic!("unexpected {other:?}: {message}"),
        }
    }
    assert_eq!(last["status"], "COMPLETE");
    assert_eq!(last["findingsNew"], 2_000);
}

#[tokio::test]
async fn websocket_refusals_use_the_protocol_codes() {
    let app = TestApp::spawn().await;
    let token = app.login_admin().await;

    let mut ws = connect(&app, "graphql-transport-ws").await;
    assert_eq!(init(&mut ws, json!({})).await, Err(4403), "no credential");
    let mut ws = connect(&app, "graphql-transport-ws").await;
    assert_eq!(
        init(&mut ws, json!({"Authorization": "Bearer not-a-token"})).await,
        Err(4403),
        "bad token"
    );

    let mut ws = connect(&app, "graphql-transport-ws").await;
    send(&mut ws, json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription { scanEvents { status } }"}})).await;
    assert_eq!(
        recv(&mut ws).await,
        Err(4401),
        "subscribe before connection_init"
    );

    let mut ws = connect(&app, "graphql-transport-ws").await;
    init(&mut ws, json!({"Authorization": format!("Bearer {token}")}))
        .await
        .unwrap();
    ws.send(Message::Text("{not json".into())).await.unwrap();
    assert_eq!(recv(&mut ws).await, Err(4400), "malformed message");

    let mut ws = connect(&app, "graphql-transport-ws").await;
    init(&mut ws, json!({"Authorization": format!("Bearer {token}")}))
        .await
        .unwrap();
    let sub = json!({"id": "dup", "type": "subscribe", "payload": {"query": "subscription { scanEvents { status } }"}});
    send(&mut ws, sub.clone()).await;
    send(&mut ws, sub).await;
    assert_eq!(recv(&mut ws).await, Err(4409), "duplicate id");

    // Another org's scan (or none at all) is refused with an error, not an empty stream.
    let mut ws = connect(&app, "graphql-transport-ws").await;
    init(&mut ws, json!({"Authorization": format!("Bearer {token}")}))
        .await
        .unwrap();
    send(&mut ws, json!({"id": "x", "type": "subscribe", "payload": {"query": PROGRESS, "variables": {"id": uuid::Uuid::now_v7()}}})).await;
    let refused = recv(&mut ws).await.unwrap();
    let errors = match refused["type"].as_str() {
        Some("error") => refused["payload"].clone(),
        _ => refused["payload"]["errors"].clone(),
    };
    assert_eq!(errors[0]["extensions"]["code"], "NOT_FOUND", "{refused}");
    assert!(refused["payload"]["data"].is_null());

    // A flood of subscriptions on one connection hits the cap (which one is refused depends on
    // the order the server starts them); the connection survives.
    let cap = rampart::live::graphql::MAX_SUBSCRIPTIONS_PER_CONNECTION;
    for n in 0..=cap {
        send(&mut ws, json!({"id": format!("s{n}"), "type": "subscribe", "payload": {"query": "subscription { scanEvents { status } }"}})).await;
    }
    let capped = loop {
        let message = recv(&mut ws).await.unwrap();
        if message["type"] != "complete" {
            break message;
        }
    };
    let errors = match capped["type"].as_str() {
        Some("error") => capped["payload"].clone(),
        _ => capped["payload"]["errors"].clone(),
    };
    assert_eq!(errors[0]["extensions"]["code"], "RATE_LIMITED", "{capped}");
    // The cap counts shared `scanProgress` subscriptions too.
    send(&mut ws, json!({"id": "over", "type": "subscribe", "payload": {"query": PROGRESS, "variables": {"id": uuid::Uuid::now_v7()}}})).await;
    let over = recv_for(&mut ws, "over").await;
    assert_eq!(
        over["payload"]["errors"][0]["extensions"]["code"], "RATE_LIMITED",
        "{over}"
    );
    send(&mut ws, json!({"id": "s0", "type": "complete"})).await;
    send(&mut ws, json!({"id": "after", "type": "subscribe", "payload": {"query": PROGRESS, "variables": {"id": uuid::Uuid::now_v7()}}})).await;
    let freed = recv_for(&mut ws, "after").await;
    assert_eq!(
        freed["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "a freed slot is usable: {freed}"
    );
    // Others are unaffected.
    let other = app
        .gql(Auth::Bearer(&token), "{ me { kind } }", json!({}))
        .await;
    assert_eq!(other.data("me")["kind"], "USER");
}

/// Reads SSE events (`event`, `id`, `data`) until the stream ends.
async fn read_sse(res: reqwest::Response) -> Vec<(String, String, Value)> {
    let text = tokio::time::timeout(Duration::from_secs(60), res.text())
        .await
        .expect("stream ends")
        .unwrap();
    text.split("\n\n")
        .filter_map(|block| {
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(|v| v.trim().to_string())
            };
            Some((
                field("event:")?,
                field("id:")?,
                serde_json::from_str(&field("data:")?).ok()?,
            ))
        })
        .collect()
}

#[tokio::test]
async fn server_sent_events_with_resume_and_event_tokens() {
    let app = TestApp::spawn().await;
    let token = app.login_admin().await;
    let accepted = app
        .ingest(Auth::Bearer(&token), "target=sse", big_report(10_000))
        .await;
    let id = accepted.body["data"]["id"].as_str().unwrap().to_string();
    let url = app.url(&format!("/api/v1/scans/{id}/events"));
    let res = app.http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let events = read_sse(res).await;
    let (last_name, _, last) = events.last().unwrap();
    assert_eq!(last_name, "done");
    assert_eq!(last["status"], "complete");
    assert_eq!(last["findings_new"], 10_000);
    assert!(events
        .iter()
        .all(|(name, _, _)| ["progress", "status", "done"].contains(&name.as_str())));
    let ids: Vec<i64> = events
        .iter()
        .map(|(_, id, _)| id.parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[1] > w[0]), "{ids:?}");

    // Resuming after an earlier event replays only what came after it: the final state.
    let earlier = &events[0].1;
    let resumed = read_sse(
        app.http
            .get(&url)
            .bearer_auth(&token)
            .header("last-event-id", earlier)
            .send()
            .await
            .unwrap(),
    )
    .await;
    if events.len() > 1 {
        assert_eq!(resumed.len(), 1, "{resumed:?}");
        assert_eq!(resumed[0].0, "done");
    }
    let caught_up = read_sse(
        app.http
            .get(&url)
            .bearer_auth(&token)
            .header("last-event-id", &events.last().unwrap().1)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(caught_up.is_empty());

    // Browsers: a short-lived token in the query.
    let minted: Value = app
        .http
        .post(app.url(&format!("/api/v1/scans/{id}/event-token")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let event_token = minted["data"]["token"].as_str().unwrap();
    let by_token = read_sse(
        app.http
            .get(format!("{url}?event_token={event_token}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(by_token.last().unwrap().0, "done");
    let anonymous = app.http.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    // An event token is not an access token, and an expired one is refused.
    let as_bearer = app
        .gql(Auth::Bearer(event_token), "{ me { kind } }", json!({}))
        .await;
    assert_eq!(as_bearer.status, 401);
    let expired = app
        .state
        .jwt
        .issue_events(uuid::Uuid::nil(), uuid::Uuid::parse_str(&id).unwrap(), -10)
        .unwrap();
    let refused = app
        .http
        .get(format!("{url}?event_token={expired}"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
}

#[tokio::test]
#[cfg_attr(
    not(all(rampart_test_redis, rampart_test_postgres)),
    ignore = "needs RAMPART_TEST_DATABASE_URL and RAMPART_TEST_REDIS_URL (the scale-out run)"
)]
async fn events_cross_processes_through_redis() {
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

    let mut ws = connect(&first, "graphql-transport-ws").await;
    init(&mut ws, json!({"Authorization": format!("Bearer {token}")}))
        .await
        .unwrap();
    send(&mut ws, json!({"id": "e", "type": "subscribe", "payload": {"query": "subscription { scanEvents { scanId status } }"}})).await;
    // Probes published by the other process prove the subscription follows Redis.
    wait_following_org_events(&second, &mut ws, "e", &org_of(&first, &token).await).await;

    let accepted = second
        .ingest(Auth::Bearer(&token), "target=cross", big_report(500))
        .await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let id = accepted.body["data"]["id"].as_str().unwrap();
    let mut seen = Vec::new();
    while seen.last().map(String::as_str) != Some("COMPLETE") {
        let message = recv(&mut ws).await.expect("open");
        if message["payload"]["data"]["scanEvents"]["scanId"] != id {
            continue; // a late probe
        }
        seen.push(
            message["payload"]["data"]["scanEvents"]["status"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(seen.first().map(String::as_str), Some("QUEUED"));
    drop(tc);
}
