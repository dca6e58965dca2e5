//! WebSocket connections lose their rights with their credential: logout, key revocation,
//! member removal, token expiry; every operation is checked again and spends the caller's
//! rate-limit budget like an HTTP request.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use rampart::ingest::synthetic::{sarif, SyntheticResult};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{Auth, TestApp, TestConfig, MEMBER_PASSWORD};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(app: &TestApp) -> Ws {
    let mut request = format!("ws://{}/graphql/ws", app.addr)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket")
        .0
}

async fn send(ws: &mut Ws, message: Value) {
    ws.send(Message::Text(message.to_string().into()))
        .await
        .unwrap();
}

/// The next protocol message, skipping keep-alives; `Err(code)` once the server closed. Fails
/// the test when nothing but keep-alives comes for 30 s.
async fn recv(ws: &mut Ws) -> Result<Value, u16> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let message = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("a message in time");
        match message {
            Some(Ok(Message::Text(text))) => {
                let value: Value = serde_json::from_str(&text).unwrap();
                if value["type"] == "ping" {
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

/// A connection acknowledged for `payload`'s credential.
async fn open(app: &TestApp, payload: Value) -> Ws {
    let mut ws = connect(app).await;
    send(
        &mut ws,
        json!({"type": "connection_init", "payload": payload}),
    )
    .await;
    assert_eq!(recv(&mut ws).await.expect("ack")["type"], "connection_ack");
    ws
}

fn bearer(token: &str) -> Value {
    json!({"Authorization": format!("Bearer {token}")})
}

const SCAN_EVENTS: &str = "subscription { scanEvents { scanId status } }";

/// The socket stays open with a live subscription, then closes with 4403 once `revoke` ran.
async fn closes_on(ws: &mut Ws, what: &str) {
    let closed = recv(ws).await;
    assert_eq!(closed, Err(4403), "{what}: the socket must close with 4403");
}

#[tokio::test]
async fn logout_revocation_and_removal_close_open_sockets() {
    let app = TestApp::spawn().await;
    let owner = app.login_admin().await;
    let member_id = app.add_member(&owner, "dev@acme.test", "MEMBER").await;

    // Logout: the session's sockets close.
    let (session, _) = app.login("dev@acme.test", MEMBER_PASSWORD).await;
    let mut ws = open(&app, bearer(&session)).await;
    send(
        &mut ws,
        json!({"type": "subscribe", "id": "1", "payload": {"query": SCAN_EVENTS}}),
    )
    .await;
    let out = app
        .gql(Auth::Bearer(&session), "mutation { logout }", json!({}))
        .await;
    assert_eq!(out.data("logout"), true);
    closes_on(&mut ws, "logout").await;

    // Key revocation: the key's sockets close.
    let key = app.create_key(&owner, "WRITE").await;
    let mut ws = open(&app, json!({"apiKey": key})).await;
    send(
        &mut ws,
        json!({"type": "subscribe", "id": "1", "payload": {"query": SCAN_EVENTS}}),
    )
    .await;
    let key_id = app
        .gql(Auth::ApiKey(&key), "{ currentApiKey { id } }", json!({}))
        .await
        .data("currentApiKey")["id"]
        .clone();
    let revoked = app
        .gql(
            Auth::Bearer(&owner),
            "mutation($id: UUID!) { revokeApiKey(id: $id) { active } }",
            json!({"id": key_id}),
        )
        .await;
    assert_eq!(revoked.data("revokeApiKey")["active"], false);
    closes_on(&mut ws, "key revocation").await;

    // Member removal: the member's sockets in that org close.
    let (session, _) = app.login("dev@acme.test", MEMBER_PASSWORD).await;
    let mut ws = open(&app, bearer(&session)).await;
    send(
        &mut ws,
        json!({"type": "subscribe", "id": "1", "payload": {"query": SCAN_EVENTS}}),
    )
    .await;
    let removed = app
        .gql(
            Auth::Bearer(&owner),
            "mutation($id: UUID!) { removeUser(id: $id) }",
            json!({"id": member_id}),
        )
        .await;
    assert_eq!(removed.data("removeUser"), true);
    closes_on(&mut ws, "member removal").await;
}

#[tokio::test]
async fn every_operation_on_a_socket_checks_the_credential_again() {
    let app = TestApp::spawn().await;
    let owner = app.login_admin().await;
    let member_id = app.add_member(&owner, "dev@acme.test", "MEMBER").await;
    app.ingest_and_wait(
        Auth::Bearer(&owner),
        "target=web&target_kind=repository",
        sarif("semgrep", (0..3).map(SyntheticResult::numbered)),
    )
    .await;
    let finding = app
        .gql(
            Auth::Bearer(&owner),
            "{ findings(first: 1) { edges { node { id } } } }",
            json!({}),
        )
        .await
        .data("findings")["edges"][0]["node"]["id"]
        .clone();
    let (session, _) = app.login("dev@acme.test", MEMBER_PASSWORD).await;
    let mut ws = open(&app, bearer(&session)).await;

    // The membership goes without any event reaching this process (as when an event is lost):
    // the next operation must still find out.
    entity::membership::Entity::delete_many()
        .filter(entity::membership::Column::UserId.eq(member_id.parse::<uuid::Uuid>().unwrap()))
        .exec(&app.state.db)
        .await
        .unwrap();
    send(
        &mut ws,
        json!({"type": "subscribe", "id": "t", "payload": {
            "query": "mutation($id: UUID!) { setFindingState(id: $id, input: {state: FALSE_POSITIVE}) { triage { state } } }",
            "variables": {"id": finding},
        }}),
    )
    .await;
    assert_eq!(recv(&mut ws).await, Err(4403), "the triage must be refused");
    let state = app
        .gql(
            Auth::Bearer(&owner),
            "query($id: UUID!) { finding(id: $id) { triage { state } } }",
            json!({"id": finding}),
        )
        .await;
    assert_eq!(state.data("finding")["triage"]["state"], "UNTRIAGED");
}

#[tokio::test]
async fn a_socket_closes_when_its_access_token_expires() {
    let mut tc = TestConfig::new().await;
    tc.config.access_token_ttl_secs = 3;
    let app = TestApp::spawn_with(tc.config.clone()).await;
    let (token, _) = app
        .login(crate::support::ADMIN_EMAIL, crate::support::ADMIN_PASSWORD)
        .await;
    let mut ws = connect(&app).await;
    send(
        &mut ws,
        json!({"type": "connection_init", "payload": bearer(&token)}),
    )
    .await;
    // On a slow machine the token may be past its expiry already at `connection_init`; either
    // way the socket must not outlive the token.
    match recv(&mut ws).await {
        Ok(ack) => {
            assert_eq!(ack["type"], "connection_ack");
            send(
                &mut ws,
                json!({"type": "subscribe", "id": "1", "payload": {"query": SCAN_EVENTS}}),
            )
            .await;
            assert_eq!(recv(&mut ws).await, Err(4403));
        }
        Err(code) => assert_eq!(code, 4403),
    }
    drop(tc);
}

#[tokio::test]
async fn socket_operations_spend_the_callers_http_budget() {
    let mut tc = TestConfig::new().await;
    tc.config.rate_limit_per_minute = 3;
    let app = TestApp::spawn_with(tc.config.clone()).await;
    let key = app.create_key(&app.login_admin().await, "READ").await;
    let mut ws = open(&app, json!({"apiKey": key})).await;
    // Spend the key's budget over HTTP, then ask over the socket. A fixed window may roll over
    // in between; then spend the fresh one and ask again.
    let mut refused = None;
    for round in 0..3 {
        loop {
            let res = app
                .gql(Auth::ApiKey(&key), "{ currentApiKey { id } }", json!({}))
                .await;
            if res.status == 429 || res.headers["ratelimit-remaining"] == "0" {
                break;
            }
        }
        let id = format!("r{round}");
        send(&mut ws, json!({"type": "subscribe", "id": id, "payload": {"query": "{ currentApiKey { id } }"}})).await;
        let answer = recv(&mut ws).await.expect("open");
        assert_eq!(answer["id"], id.as_str());
        if answer["type"] == "error" {
            refused = Some(answer);
            break;
        }
        // Allowed: the window rolled over. Drain the answer's `complete`.
        assert_eq!(recv(&mut ws).await.expect("open")["type"], "complete");
    }
    let refused = refused.expect("a socket operation beyond the budget is refused");
    assert_eq!(refused["payload"][0]["extensions"]["code"], "RATE_LIMITED");
    assert!(
        refused["payload"][0]["extensions"]["retryAfter"]
            .as_u64()
            .unwrap()
            >= 1
    );
    drop(tc);
}
