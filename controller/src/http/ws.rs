//! The WebSocket event stream at `/ws?token=JWT&server_id=N`.
//!
//! The token is checked after the upgrade (browsers cannot read an HTTP error of a WebSocket
//! handshake): a missing, expired or forged token closes the socket with code 4001. Messages are
//! JSON `{"type","server_id","node_id","ts","data"}` with type `status`, `event`, `log`
//! (data `{id, level, kind, text, time}`) or `players` (data `{change, player, players}`). Clients may send `{"subscribe":[ids]}` and
//! `{"unsubscribe":[ids]}`. A client that falls behind is told how many messages it missed
//! (`{"type":"lagged","data":{"missed":n}}`); one that cannot take a message within the send timeout
//! is disconnected with code 1008.

use std::collections::HashSet;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use crate::api::Ctx;

/// Close code for a bad or missing token.
pub const CLOSE_UNAUTHORIZED: u16 = 4001;

/// Query parameters of `/ws`.
#[derive(Debug, Deserialize)]
pub struct WsQuery {
    /// Access token (JWT).
    pub token: Option<String>,
    /// Only this server's messages; absent for everything the user may see.
    pub server_id: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientMessage {
    #[serde(default)]
    subscribe: Vec<i64>,
    #[serde(default)]
    unsubscribe: Vec<i64>,
}

/// The upgrade handler.
pub async fn handler(
    ws: WebSocketUpgrade,
    Query(q): Query<WsQuery>,
    State(ctx): State<Ctx>,
) -> Response {
    ws.on_upgrade(move |socket| run(socket, q, ctx))
}

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from(reason),
    }))
}

/// Which servers a client wants: `None` means all.
struct Subscription(Option<HashSet<i64>>);

impl Subscription {
    fn wants(&self, server_id: i64) -> bool {
        match &self.0 {
            None => true,
            Some(set) => set.contains(&server_id),
        }
    }
}

async fn run(mut socket: WebSocket, q: WsQuery, ctx: Ctx) {
    let caller = match q.token.as_deref() {
        Some(t) if !t.is_empty() => ctx.auth.authenticate_token(t).await,
        _ => Err(crate::error::ApiError::Unauthenticated(
            "missing token".into(),
        )),
    };
    let caller = match caller {
        Ok(c) => c,
        Err(e) => {
            let _ = socket.send(close(CLOSE_UNAUTHORIZED, &e.to_string())).await;
            return;
        }
    };
    let mut sub = Subscription(q.server_id.map(|id| HashSet::from([id])));
    let mut rx = ctx.hub.subscribe();
    let send_timeout = Duration::from_secs(ctx.config.ws_send_timeout_seconds);
    let (mut sink, mut stream) = socket.split();
    let hello = serde_json::json!({
        "type": "hello",
        "server_id": q.server_id.unwrap_or(0),
        "data": { "user": caller.username, "role": caller.role.as_str() },
    });
    if sink
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    tracing::debug!(user = %caller.username, server_id = ?q.server_id, "websocket client connected");
    loop {
        let out: Option<String> = tokio::select! {
            _ = ctx.shutdown.cancelled() => {
                let _ = sink.send(close(1001, "controller shutting down")).await;
                break;
            }
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(t))) => match serde_json::from_str::<ClientMessage>(t.as_str()) {
                    Ok(m) => {
                        let set = sub.0.get_or_insert_with(HashSet::new);
                        set.extend(m.subscribe);
                        for id in m.unsubscribe {
                            set.remove(&id);
                        }
                        None
                    }
                    Err(e) => Some(serde_json::json!({"type": "error", "data": {"message": format!("bad message: {e}")}}).to_string()),
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => None,
            },
            msg = rx.recv() => match msg {
                Ok(m) if sub.wants(m.server_id) => Some(m.json.clone()),
                Ok(_) => None,
                Err(RecvError::Lagged(n)) => {
                    ctx.hub.count_dropped(n);
                    Some(serde_json::json!({"type": "lagged", "data": {"missed": n}}).to_string())
                }
                Err(RecvError::Closed) => break,
            },
        };
        if let Some(text) = out {
            match tokio::time::timeout(send_timeout, sink.send(Message::Text(text.into()))).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => break,
                Err(_) => {
                    tracing::info!(user = %caller.username, "websocket client too slow; disconnecting");
                    let _ = tokio::time::timeout(
                        Duration::from_secs(1),
                        sink.send(close(1008, "too slow")),
                    )
                    .await;
                    break;
                }
            }
        }
    }
}
