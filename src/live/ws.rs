//! GraphQL over WebSocket (`graphql-transport-ws` and the legacy `graphql-ws`), authenticated
//! in `connection_init`, with the protocol's close codes, server pings and a per-connection cap.

use std::collections::HashSet;
use std::time::Duration;

use async_graphql::http::{WebSocketProtocols, WsMessage, ALL_WEBSOCKET_PROTOCOLS};
use async_graphql::Data;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::Response;
use axum::Extension;
use futures::{SinkExt, StreamExt};

use super::graphql::SubscriptionBudget;
use crate::app::AppState;
use crate::auth::resolve::{authenticate, Credential};
use crate::context::RequestMeta;
use crate::graphql::AppSchema;

/// Rejections of `connection_init` start with this, so they can be closed with 4403.
const FORBIDDEN: &str = "Forbidden: ";
/// How often the server pings an idle connection.
const PING_EVERY: Duration = Duration::from_secs(15);
/// Read buffer per connection. Clients only send small protocol messages; the 128 KiB default
/// cost that much memory per subscriber and is zeroed on every read attempt, i.e. after every
/// event sent (most of the fan-out's CPU with 10,000 subscribers). Larger frames still fit:
/// the buffer grows on demand.
const READ_BUFFER_BYTES: usize = 4 * 1024;

/// `GET /graphql/ws`: upgrades and serves subscriptions.
pub async fn upgrade(
    State(state): State<AppState>,
    State(schema): State<AppSchema>,
    Extension(meta): Extension<RequestMeta>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    // The first sub-protocol offered that we speak; `graphql-transport-ws` when none is named.
    let protocol = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| p.trim().parse::<WebSocketProtocols>().ok())
        .unwrap_or(WebSocketProtocols::GraphQLWS);
    upgrade
        .read_buffer_size(READ_BUFFER_BYTES)
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| serve(socket, schema, state, meta, protocol))
}

/// The credential in a `connection_init` payload: `{"Authorization": "Bearer …"}` or
/// `{"apiKey": "…"}` (a few common spellings accepted).
fn credential_of(payload: &serde_json::Value) -> Option<Credential> {
    let field = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| payload.get(*n).and_then(|v| v.as_str()))
    };
    if let Some(auth) = field(&["Authorization", "authorization"]) {
        let token = auth
            .strip_prefix("Bearer ")
            .or_else(|| auth.strip_prefix("bearer "))
            .unwrap_or(auth);
        return Some(Credential::from_bearer(token));
    }
    if let Some(key) = field(&["apiKey", "api_key", "x-api-key"]) {
        return Some(Credential::ApiKey(key.to_string()));
    }
    field(&["token"]).map(Credential::from_bearer)
}

/// The subscription id of an outgoing `complete` message.
fn completed_id(text: &str) -> Option<String> {
    let message = serde_json::from_str::<serde_json::Value>(text).ok()?;
    if message.get("type")?.as_str()? != "complete" {
        return None;
    }
    Some(message.get("id")?.as_str()?.to_string())
}

/// The close code a rejection deserves under the new protocol.
fn transport_close_code(code: u16, reason: &str) -> u16 {
    match code {
        1002 if reason.starts_with(FORBIDDEN) => 4403,
        1002 => 4400,
        1011 => 4401,
        other => other,
    }
}

async fn serve(
    socket: WebSocket,
    schema: AppSchema,
    state: AppState,
    meta: RequestMeta,
    protocol: WebSocketProtocols,
) {
    let transport_ws = matches!(protocol, WebSocketProtocols::GraphQLWS);
    let (mut sink, mut incoming) = socket.split();
    let (to_graphql, from_client) = futures::channel::mpsc::unbounded::<Vec<u8>>();
    let mut connection = Data::default();
    connection.insert(SubscriptionBudget::default());
    let init_state = state.clone();
    let init_meta = meta.clone();
    let graphql = async_graphql::http::WebSocket::new(schema, from_client, protocol)
        .connection_data(connection)
        .on_connection_init(move |payload| async move {
            let credential = credential_of(&payload).ok_or_else(|| {
                async_graphql::Error::new(format!(
                    "{FORBIDDEN}connection_init carries no credential"
                ))
            })?;
            let ctx = authenticate(&init_state, &credential, init_meta.clone())
                .await
                .map_err(|e| {
                    async_graphql::Error::new(format!("{FORBIDDEN}{}", e.public_message()))
                })?;
            let mut data = Data::default();
            data.insert(ctx);
            data.insert(init_meta);
            Ok(data)
        });
    futures::pin_mut!(graphql);
    let mut active: HashSet<String> = HashSet::new();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let close = |code: u16, reason: String| {
        Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }))
    };
    loop {
        tokio::select! {
            from_peer = incoming.next() => {
                let bytes = match from_peer {
                    Some(Ok(Message::Text(text))) => text.as_bytes().to_vec(),
                    Some(Ok(Message::Binary(bytes))) => bytes.to_vec(),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                };
                // Duplicate subscription ids are a protocol error the executor would not catch.
                if let Ok(message) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                    let id = message.get("id").and_then(|v| v.as_str()).map(str::to_string);
                    match (message.get("type").and_then(|v| v.as_str()), id) {
                        (Some("subscribe" | "start"), Some(id)) => {
                            if !active.insert(id.clone()) && transport_ws {
                                let _ = sink.send(close(4409, format!("Subscriber for {id} already exists"))).await;
                                break;
                            }
                        }
                        (Some("complete" | "stop"), Some(id)) => {
                            active.remove(&id);
                        }
                        _ => {}
                    }
                }
                if to_graphql.unbounded_send(bytes).is_err() {
                    break;
                }
            }
            from_graphql = graphql.next() => {
                match from_graphql {
                    Some(WsMessage::Text(text)) => {
                        // Parsed only when it may be a `complete`: with thousands of subscribers a
                        // full parse of every outgoing event is a visible share of the fan-out.
                        if let Some(id) = text.contains(r#""complete""#).then(|| completed_id(&text)).flatten() {
                            active.remove(&id);
                        }
                        if sink.send(Message::Text(text.into())).await.is_err() {
                            break;
                        }
                    }
                    Some(WsMessage::Close(code, reason)) => {
                        let code = if transport_ws { transport_close_code(code, &reason) } else { code };
                        let _ = sink.send(close(code, reason)).await;
                        break;
                    }
                    None => break,
                }
            }
            _ = ping.tick() => {
                let keepalive = if transport_ws { r#"{"type":"ping"}"# } else { r#"{"type":"ka"}"# };
                if sink.send(Message::Text(keepalive.into())).await.is_err() {
                    break;
                }
            }
        }
    }
    // Dropping the executor stream here ends every subscription of the connection.
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_payload_spellings() {
        assert!(
            matches!(credential_of(&serde_json::json!({"Authorization": "Bearer abc"})), Some(Credential::Access(t)) if t == "abc")
        );
        assert!(matches!(
            credential_of(&serde_json::json!({"apiKey": "rmp_x"})),
            Some(Credential::ApiKey(_))
        ));
        assert!(credential_of(&serde_json::json!({})).is_none());
    }

    #[test]
    fn close_codes_follow_the_protocol() {
        assert_eq!(transport_close_code(1002, "Forbidden: bad token"), 4403);
        assert_eq!(transport_close_code(1002, "invalid message"), 4400);
        assert_eq!(
            transport_close_code(1011, "The handshake is not completed."),
            4401
        );
        assert_eq!(
            transport_close_code(4429, "Too many initialisation requests."),
            4429
        );
    }
}
