//! My sessions, and deactivating an account (issue 21, accounts): listing and ending one's own
//! sessions; a deactivated account's sessions and API keys stop at once, over HTTP and on open
//! WebSockets; `PATCH /users/{id}` changes the display name and the active state.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::rest::Client;
use crate::support::{
    assert_envelope, Auth, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD, MEMBER_PASSWORD,
};

/// Signs in with this `User-Agent`; returns the access token.
async fn login_as_device(app: &TestApp, email: &str, password: &str, agent: &str) -> String {
    let res = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .header("user-agent", agent)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    body["data"]["token"].as_str().unwrap().to_string()
}

async fn works(app: &TestApp, auth: Auth<'_>) -> bool {
    let res = app.gql(auth, "{ organization { id } }", json!({})).await;
    match res.code() {
        None => true,
        Some("UNAUTHENTICATED") => false,
        Some(other) => panic!("unexpected answer {other}: {}", res.body),
    }
}

#[tokio::test]
async fn i_can_list_my_sessions_end_one_and_end_all_others() {
    let app = TestApp::spawn().await;
    let rest = Client::new(&app).await;
    let laptop = login_as_device(&app, ADMIN_EMAIL, ADMIN_PASSWORD, "laptop/1.0").await;
    let phone = login_as_device(&app, ADMIN_EMAIL, ADMIN_PASSWORD, "phone/2.0").await;
    let tablet = login_as_device(&app, ADMIN_EMAIL, ADMIN_PASSWORD, "tablet/3.0").await;
    let owner = app.login_admin().await;
    let member_id = app.add_member(&owner, "dev@acme.test", "MEMBER").await;
    let member = app.login("dev@acme.test", MEMBER_PASSWORD).await.0;
    assert!(!member_id.is_empty());

    let listed = rest
        .get(Auth::Bearer(&laptop), "/api/v1/auth/sessions")
        .await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let sessions = listed.body["data"].as_array().unwrap();
    assert_eq!(
        sessions.len(),
        4,
        "the owner's four sign-ins, none of the member's"
    );
    let by_agent = |agent: &str| {
        sessions
            .iter()
            .find(|s| s["user_agent"] == agent)
            .unwrap_or_else(|| panic!("{agent} listed: {sessions:?}"))
            .clone()
    };
    let this = by_agent("laptop/1.0");
    assert_eq!(this["current"], true);
    assert_eq!(this["ip"], "127.0.0.1");
    assert!(this["created_at"].is_string() && this["last_used_at"].is_string());
    assert_eq!(by_agent("phone/2.0")["current"], false);

    // End one: the phone's token stops; someone else's session is not mine to end.
    let phone_id = by_agent("phone/2.0")["id"].as_str().unwrap().to_string();
    let res = rest
        .call(
            Auth::Bearer(&laptop),
            Method::DELETE,
            &format!("/api/v1/auth/sessions/{phone_id}"),
            None,
        )
        .await;
    assert_eq!(res.status, 204, "{}", res.body);
    assert!(!works(&app, Auth::Bearer(&phone)).await);
    assert!(works(&app, Auth::Bearer(&tablet)).await);
    let res = rest
        .call(
            Auth::Bearer(&member),
            Method::DELETE,
            &format!("/api/v1/auth/sessions/{}", this["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_envelope(&res.body, 404, "NOT_FOUND");
    assert!(works(&app, Auth::Bearer(&laptop)).await);

    // End all others: only this one is left.
    let res = rest
        .post(
            Auth::Bearer(&laptop),
            "/api/v1/auth/sessions/revoke-others",
            json!({}),
        )
        .await;
    assert_eq!(res.status, 204, "{}", res.body);
    assert!(works(&app, Auth::Bearer(&laptop)).await);
    assert!(!works(&app, Auth::Bearer(&tablet)).await);
    assert!(!works(&app, Auth::Bearer(&owner)).await);
    assert!(
        works(&app, Auth::Bearer(&member)).await,
        "other people's sessions stay"
    );
    let left = rest
        .get(Auth::Bearer(&laptop), "/api/v1/auth/sessions")
        .await;
    assert_eq!(
        left.body["data"].as_array().unwrap().len(),
        1,
        "{}",
        left.body
    );
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A socket acknowledged for `payload`'s credential, with a live subscription.
async fn subscribed(app: &TestApp, payload: Value) -> Ws {
    let mut request = format!("ws://{}/graphql/ws", app.addr)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let init = json!({"type": "connection_init", "payload": payload});
    ws.send(Message::Text(init.to_string().into()))
        .await
        .unwrap();
    assert_eq!(next(&mut ws).await.expect("ack")["type"], "connection_ack");
    let subscribe = json!({"type": "subscribe", "id": "1", "payload": {"query": "subscription { scanEvents { scanId } }"}});
    ws.send(Message::Text(subscribe.to_string().into()))
        .await
        .unwrap();
    ws
}

/// The next protocol message; `Err(close code)` once the server closed the socket.
async fn next(ws: &mut Ws) -> Result<Value, u16> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("a message in time")
        {
            Some(Ok(Message::Text(text))) => {
                let value: Value = serde_json::from_str(&text).unwrap();
                if value["type"] != "ping" {
                    return Ok(value);
                }
            }
            Some(Ok(Message::Close(frame))) => return Err(frame.map_or(1005, |f| f.code.into())),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return Err(1006),
        }
    }
}

#[tokio::test]
async fn a_deactivated_account_stops_at_once_and_comes_back_when_reactivated() {
    let app = TestApp::spawn().await;
    let rest = Client::new(&app).await;
    let owner = app.login_admin().await;
    let admin_id = app.add_member(&owner, "ops@acme.test", "ADMIN").await;
    let session = app.login("ops@acme.test", MEMBER_PASSWORD).await.0;
    let key = app.create_key(&session, "WRITE").await;
    let mut session_socket =
        subscribed(&app, json!({"Authorization": format!("Bearer {session}")})).await;
    let mut key_socket = subscribed(&app, json!({"apiKey": key})).await;

    // The display name and the active state, in one PATCH.
    let path = format!("/api/v1/users/{admin_id}");
    let res = rest
        .call(
            Auth::Bearer(&owner),
            Method::PATCH,
            &path,
            Some(json!({"display_name": "Ops on leave", "active": false})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.body["data"]["display_name"], "Ops on leave");
    assert_eq!(res.body["data"]["active"], false);

    assert_eq!(
        next(&mut session_socket).await,
        Err(4403),
        "the session's socket closes"
    );
    assert_eq!(
        next(&mut key_socket).await,
        Err(4403),
        "the key's socket closes"
    );
    assert!(!works(&app, Auth::Bearer(&session)).await);
    assert!(!works(&app, Auth::ApiKey(&key)).await);
    let login = json!({"email": "ops@acme.test", "password": MEMBER_PASSWORD});
    let res = rest
        .post(Auth::None, "/api/v1/auth/login", login.clone())
        .await;
    assert_envelope(&res.body, 401, "UNAUTHENTICATED");

    // Reactivated: the keys it created work again, and it can sign in (old sessions stay ended).
    let res = rest
        .call(
            Auth::Bearer(&owner),
            Method::PATCH,
            &path,
            Some(json!({"active": true})),
        )
        .await;
    assert_eq!(res.body["data"]["active"], true, "{}", res.body);
    assert!(works(&app, Auth::ApiKey(&key)).await);
    assert!(!works(&app, Auth::Bearer(&session)).await);
    let res = rest.post(Auth::None, "/api/v1/auth/login", login).await;
    assert_eq!(res.status, 200, "{}", res.body);
}

#[tokio::test]
async fn the_last_active_owner_cannot_be_deactivated() {
    let app = TestApp::spawn().await;
    let rest = Client::new(&app).await;
    let owner = app.login_admin().await;
    let owner_id = app
        .gql(Auth::Bearer(&owner), "{ me { user { id } } }", json!({}))
        .await
        .data("me")["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Refused as a whole: the display name given with it is not changed either.
    let deactivate = json!({"active": false, "display_name": "Gone"});
    let res = rest
        .call(
            Auth::Bearer(&owner),
            Method::PATCH,
            &format!("/api/v1/users/{owner_id}"),
            Some(deactivate.clone()),
        )
        .await;
    assert_envelope(&res.body, 409, "CONFLICT");
    assert!(works(&app, Auth::Bearer(&owner)).await);
    let me = app
        .gql(
            Auth::Bearer(&owner),
            "{ me { user { displayName active } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        me.data("me")["user"],
        json!({"displayName": "Administrator", "active": true})
    );

    // With a second owner, one may go; then the other is the last one.
    let second_id = app.add_member(&owner, "second@acme.test", "OWNER").await;
    let second = app.login("second@acme.test", MEMBER_PASSWORD).await.0;
    let res = rest
        .call(
            Auth::Bearer(&second),
            Method::PATCH,
            &format!("/api/v1/users/{owner_id}"),
            Some(deactivate.clone()),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let res = rest
        .call(
            Auth::Bearer(&second),
            Method::PATCH,
            &format!("/api/v1/users/{second_id}"),
            Some(deactivate),
        )
        .await;
    assert_envelope(&res.body, 409, "CONFLICT");
    // A deactivated owner does not count: the active one can neither step down nor leave.
    let path = format!("/api/v1/users/{second_id}");
    let res = rest
        .call(
            Auth::Bearer(&second),
            Method::PATCH,
            &path,
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_envelope(&res.body, 409, "CONFLICT");
    let res = rest
        .call(Auth::Bearer(&second), Method::DELETE, &path, None)
        .await;
    assert_envelope(&res.body, 409, "CONFLICT");

    // Admins cannot touch owners at all; members cannot deactivate anyone.
    let admin_id = app.add_member(&second, "admin@acme.test", "ADMIN").await;
    let admin = app.login("admin@acme.test", MEMBER_PASSWORD).await.0;
    let res = rest
        .call(
            Auth::Bearer(&admin),
            Method::PATCH,
            &format!("/api/v1/users/{second_id}"),
            Some(json!({"active": false})),
        )
        .await;
    assert_envelope(&res.body, 403, "FORBIDDEN");
    assert!(!admin_id.is_empty());
}
