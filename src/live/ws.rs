//! GraphQL over WebSocket (`graphql-transport-ws` and the legacy `graphql-ws`), authenticated
//! in `connection_init`, with the protocol's close codes, server pings and a per-connection cap.

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_graphql::http::{WebSocketProtocols, WsMessage, ALL_WEBSOCKET_PROTOCOLS};
use async_graphql::Data;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::Response;
use axum::Extension;
use futures::stream::BoxStream;
use futures::{SinkExt, StreamExt};
use tokio_stream::StreamMap;

use super::graphql::{
    is_snapshot_subscription, SubscriptionBudget, MAX_SUBSCRIPTIONS_PER_CONNECTION,
};
use super::shared::{Delivery, ShareKey};
use super::ws_rights::{rate_limited_message, recheck, Authorised, CLOSE_FORBIDDEN, RECHECK_EVERY};
use crate::app::AppState;
use crate::auth::resolve::{authenticate_until, Credential};
use crate::context::{Ctx, RequestMeta};
use crate::error::ErrorCode;
use crate::graphql::AppSchema;

/// Rejections of `connection_init` start with this, so they can be closed with 4403.
const FORBIDDEN: &str = "Forbidden: ";
/// ...or with this when a backend is down, so they close with 1013 (try again later), not with
/// a code that tells clients to give up.
const UNAVAILABLE: &str = "Unavailable: ";
/// Close code when the server shuts down (RFC 6455 1012, Service Restart): clients reconnect,
/// reaching another process behind the load balancer or this one when it is back.
const CLOSE_SERVICE_RESTART: u16 = 1012;
/// How often the server pings an idle connection.
const PING_EVERY: Duration = Duration::from_secs(15);
/// Read buffer per connection. Clients only send small protocol messages; the 128 KiB default
/// cost that much memory per subscriber and is zeroed on every read attempt, i.e. after every
/// event sent (most of the fan-out's CPU with 10,000 subscribers). Larger frames still fit:
/// the buffer grows on demand.
const READ_BUFFER_BYTES: usize = 4 * 1024;

/// `GET /graphql/ws` (and `GET /graphql` with `Upgrade: websocket`): upgrades and serves
/// subscriptions.
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
    // Clients send small protocol messages: the JSON body limit bounds them as it bounds
    // `POST /graphql` (tungstenite's default is 64 MiB a message).
    let max_message = state.config.max_body_bytes;
    upgrade
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(max_message)
        .max_frame_size(max_message)
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

/// Serves a `subscribe` of a snapshot subscription from the execution shared by every
/// subscriber with the same org, document and variables. `None` leaves it to async-graphql:
/// not authenticated yet, not a snapshot subscription, or the connection's cap reached (whose
/// error async-graphql reports).
fn join_shared(
    state: &AppState,
    schema: &AppSchema,
    meta: &RequestMeta,
    budget: &SubscriptionBudget,
    caller: Option<&Ctx>,
    message: &serde_json::Value,
) -> Option<BoxStream<'static, Delivery>> {
    let caller = caller?;
    let payload = message.get("payload")?;
    let query = payload.get("query")?.as_str()?;
    let operation_name = match payload.get("operationName") {
        None | Some(serde_json::Value::Null) => None,
        Some(name) => Some(name.as_str()?.to_string()),
    };
    let variables = match payload.get("variables") {
        None | Some(serde_json::Value::Null) => serde_json::Value::Object(Default::default()),
        Some(variables) => variables.clone(),
    };
    if !is_snapshot_subscription(query, operation_name.as_deref()) {
        return None;
    }
    let slot = budget.take()?;
    let key = ShareKey {
        org_id: caller.org_id,
        query: query.to_string(),
        operation_name: operation_name.clone(),
        variables: variables.to_string(),
    };
    let start = || {
        let mut request = async_graphql::Request::new(query)
            .variables(async_graphql::Variables::from_json(variables))
            .data(caller.clone())
            .data(meta.clone());
        if let Some(name) = operation_name {
            request = request.operation_name(name);
        }
        schema
            .execute_stream(request)
            .map(|response| serde_json::to_string(&response).unwrap_or_default())
            .boxed()
    };
    let follow = state.shared_subscriptions.join(key, start);
    Some(
        follow
            .map(move |delivery| {
                let _held = &slot;
                delivery
            })
            .boxed(),
    )
}

/// `id` as a JSON string.
fn quoted(id: &str) -> String {
    serde_json::Value::from(id).to_string()
}

/// What async-graphql would send for one answer (`next`, or `data` in the legacy protocol).
fn next_message(transport_ws: bool, quoted_id: &str, payload: &str) -> String {
    let kind = if transport_ws { "next" } else { "data" };
    let mut text = String::with_capacity(40 + quoted_id.len() + payload.len());
    text.push_str(r#"{"type":""#);
    text.push_str(kind);
    text.push_str(r#"","id":"#);
    text.push_str(quoted_id);
    text.push_str(r#","payload":"#);
    text.push_str(payload);
    text.push('}');
    text
}

fn complete_message(quoted_id: &str) -> String {
    format!(r#"{{"type":"complete","id":{quoted_id}}}"#)
}

/// The close code a rejection deserves under the new protocol.
fn transport_close_code(code: u16, reason: &str) -> u16 {
    match code {
        1002 if reason.starts_with(FORBIDDEN) => 4403,
        1002 if reason.starts_with(UNAVAILABLE) => 1013,
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
    let budget = SubscriptionBudget::default();
    let mut connection = Data::default();
    connection.insert(budget.clone());
    let init_state = state.clone();
    let init_meta = meta.clone();
    let caller: Arc<OnceLock<Authorised>> = Arc::default();
    let init_caller = caller.clone();
    // The caller's revocation events, subscribed as soon as the caller is known.
    let revocations: Arc<Mutex<Option<BoxStream<'static, String>>>> = Arc::default();
    let init_revocations = revocations.clone();
    let graphql = async_graphql::http::WebSocket::new(schema.clone(), from_client, protocol)
        .connection_data(connection)
        .on_connection_init(move |payload| async move {
            let credential = credential_of(&payload).ok_or_else(|| {
                async_graphql::Error::new(format!(
                    "{FORBIDDEN}connection_init carries no credential"
                ))
            })?;
            let authorised =
                match authenticate_until(&init_state, &credential, init_meta.clone()).await {
                    Ok(authorised) => authorised,
                    Err(e) if e.code() == crate::error::ErrorCode::ServiceUnavailable => {
                        // A backend outage: the client may come back, and is told so.
                        return Err(async_graphql::Error::new(format!(
                            "{UNAVAILABLE}{}",
                            e.public_message()
                        )));
                    }
                    Err(e) => {
                        // A failed credential spends the client address's budget, as over HTTP.
                        let bucket = crate::auth::middleware::bucket(None, init_meta.ip);
                        let limit = init_state.config.rate_limit_per_minute;
                        init_state.limiter.hit(&bucket, limit, 60).await;
                        return Err(async_graphql::Error::new(format!(
                            "{FORBIDDEN}{}",
                            e.public_message()
                        )));
                    }
                };
            let ctx = authorised.ctx.clone();
            let topic = crate::auth::revocation::topic_of(&ctx);
            *init_revocations.lock().expect("revocations lock") =
                Some(init_state.bus.subscribe(&topic));
            let _ = init_caller.set(Authorised {
                credential,
                ctx: authorised.ctx,
                expires_at: authorised.expires_at,
            });
            let mut data = Data::default();
            data.insert(ctx);
            data.insert(init_meta);
            Ok(data)
        });
    futures::pin_mut!(graphql);
    let mut active: HashSet<String> = HashSet::new();
    // Snapshot subscriptions served from a shared execution, by JSON-quoted id.
    let mut shared: StreamMap<String, BoxStream<'static, Delivery>> = StreamMap::new();
    // Between `connection_init` and its acknowledgement: subscriptions that came early.
    let mut initialising = false;
    let mut early: Vec<(String, serde_json::Value, Vec<u8>)> = Vec::new();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    // Spread over the period, so connections opened together do not all check at once.
    let first_recheck = RECHECK_EVERY.mul_f64(1.0 + rand::random::<f64>());
    let mut recheck_every =
        tokio::time::interval_at(tokio::time::Instant::now() + first_recheck, RECHECK_EVERY);
    // Once authorised: the caller's revocation events, and the credential's expiry.
    let mut revoked: Option<BoxStream<'static, String>> = None;
    let mut expiry: Option<Pin<Box<tokio::time::Sleep>>> = None;
    let rate_limit = state.config.rate_limit_per_minute;
    let _subscribed = state.metrics.subscribed("websocket");
    let stopping = state.shutdown.clone().cancelled_owned();
    tokio::pin!(stopping);
    let close = |code: u16, reason: String| {
        Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }))
    };
    loop {
        tokio::select! {
            // Fixed order: what is ready first is sent without polling the rest (most wake-ups
            // are for one event to send; polling every branch each time was visible in the
            // fan-out's CPU). A flooding client cannot starve the others, which are polled
            // before it each round.
            biased;
            () = &mut stopping => {
                // The server is going away; clients reconnect (to another process) on 1012.
                let _ = sink.send(close(CLOSE_SERVICE_RESTART, "the server is restarting".into())).await;
                break;
            }
            () = async { expiry.as_mut().expect("guarded").await }, if expiry.is_some() => {
                let _ = sink.send(close(CLOSE_FORBIDDEN, format!("{FORBIDDEN}credential expired"))).await;
                break;
            }
            Some(_) = async { revoked.as_mut().expect("guarded").next().await }, if revoked.is_some() => {
                // The event is a prompt; the database says whether rights were really lost.
                if let Some(auth) = caller.get() {
                    if let Err(err) = recheck(&state, &meta, auth).await {
                        let _ = sink.send(close(CLOSE_FORBIDDEN, format!("{FORBIDDEN}{}", err.public_message()))).await;
                        break;
                    }
                }
            }
            _ = recheck_every.tick() => {
                if let Some(auth) = caller.get() {
                    match recheck(&state, &meta, auth).await {
                        Err(err) if err.code() != ErrorCode::Internal => {
                            let _ = sink.send(close(CLOSE_FORBIDDEN, format!("{FORBIDDEN}{}", err.public_message()))).await;
                            break;
                        }
                        _ => {}
                    }
                }
            }
            Some((quoted_id, delivery)) = shared.next(), if !shared.is_empty() => {
                let text = match delivery {
                    Delivery::Next(payload) => next_message(transport_ws, &quoted_id, &payload),
                    Delivery::Complete => {
                        if let Ok(id) = serde_json::from_str::<String>(&quoted_id) {
                            active.remove(&id);
                        }
                        complete_message(&quoted_id)
                    }
                };
                if sink.send(Message::Text(text.into())).await.is_err() {
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
                        let acknowledged = text.starts_with(r#"{"type":"connection_ack""#);
                        if sink.send(Message::Text(text.into())).await.is_err() {
                            break;
                        }
                        if acknowledged {
                            initialising = false;
                            revoked = revocations.lock().expect("revocations lock").take();
                            if let Some(at) = caller.get().and_then(|a| a.expires_at) {
                                let left = (at - chrono::Utc::now()).to_std().unwrap_or_default();
                                expiry = Some(Box::pin(tokio::time::sleep(left)));
                            }
                            for (id, message, bytes) in early.drain(..) {
                                match join_shared(&state, &schema, &meta, &budget, caller.get().map(|a| &a.ctx), &message) {
                                    Some(follow) => {
                                        shared.insert(quoted(&id), follow);
                                    }
                                    None => {
                                        let _ = to_graphql.unbounded_send(bytes);
                                    }
                                }
                            }
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
                        (Some("connection_init"), _) => initialising = true,
                        (Some("subscribe" | "start"), Some(id)) => {
                            if !active.insert(id.clone()) && transport_ws {
                                let _ = sink.send(close(4409, format!("Subscriber for {id} already exists"))).await;
                                break;
                            }
                            // Sent before the acknowledgement: whether it may share an execution
                            // is known once the caller is.
                            if initialising && caller.get().is_none() && early.len() < MAX_SUBSCRIPTIONS_PER_CONNECTION {
                                early.push((id, message, bytes));
                                continue;
                            }
                            // Every operation: the credential still grants the connection's
                            // rights, and the caller's budget (shared with HTTP) allows it.
                            if let Some(auth) = caller.get() {
                                if let Err(err) = recheck(&state, &meta, auth).await {
                                    let _ = sink.send(close(CLOSE_FORBIDDEN, format!("{FORBIDDEN}{}", err.public_message()))).await;
                                    break;
                                }
                                let bucket = crate::auth::middleware::bucket(Some(&auth.ctx), meta.ip);
                                let decision = state.limiter.hit(&bucket, rate_limit, 60).await;
                                if !decision.allowed {
                                    active.remove(&id);
                                    let refusal = rate_limited_message(transport_ws, &quoted(&id), decision.reset_secs.max(1));
                                    if sink.send(Message::Text(refusal.into())).await.is_err() {
                                        break;
                                    }
                                    continue;
                                }
                            }
                            if let Some(follow) = join_shared(&state, &schema, &meta, &budget, caller.get().map(|a| &a.ctx), &message) {
                                shared.insert(quoted(&id), follow);
                                continue;
                            }
                        }
                        (Some("complete" | "stop"), Some(id)) => {
                            active.remove(&id);
                            early.retain(|(early_id, _, _)| *early_id != id);
                            let quoted_id = quoted(&id);
                            if shared.remove(&quoted_id).is_some() {
                                if sink.send(Message::Text(complete_message(&quoted_id).into())).await.is_err() {
                                    break;
                                }
                                continue;
                            }
                        }
                        _ => {}
                    }
                }
                if to_graphql.unbounded_send(bytes).is_err() {
                    break;
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
    fn shared_answers_are_spelled_as_async_graphql_spells_them() {
        let payload = r#"{"data":{"scanProgress":{"phase":"parsing"}}}"#;
        let id = quoted("a\"b");
        let next: serde_json::Value =
            serde_json::from_str(&next_message(true, &id, payload)).unwrap();
        assert_eq!(
            next,
            serde_json::json!({"type": "next", "id": "a\"b",
                "payload": {"data": {"scanProgress": {"phase": "parsing"}}}})
        );
        let legacy: serde_json::Value =
            serde_json::from_str(&next_message(false, &id, payload)).unwrap();
        assert_eq!(legacy["type"], "data");
        let complete: serde_json::Value = serde_json::from_str(&complete_message(&id)).unwrap();
        assert_eq!(
            complete,
            serde_json::json!({"type": "complete", "id": "a\"b"})
        );
    }

    #[test]
    fn close_codes_follow_the_protocol() {
        assert_eq!(transport_close_code(1002, "Forbidden: bad token"), 4403);
        assert_eq!(transport_close_code(1002, "invalid message"), 4400);
        assert_eq!(
            transport_close_code(1002, "Unavailable: the database is unavailable"),
            1013
        );
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
