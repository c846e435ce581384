//! The WebSocket event stream and `WatchEvents`, fed by the same hub.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use futures::{SinkExt, StreamExt};
use languard_proto::v1 as pb;
use pb::server_service_client::ServerServiceClient;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(c: &Controller, query: &str) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws?{query}", c.addr))
        .await
        .expect("ws connect");
    ws
}

async fn next_json(ws: &mut Ws) -> Option<serde_json::Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .ok()??
        {
            Ok(Message::Text(t)) => return Some(serde_json::from_str(t.as_str()).unwrap()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

async fn close_code(ws: &mut Ws) -> Option<CloseCode> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .ok()??
        {
            Ok(Message::Close(Some(f))) => return Some(f.code),
            Ok(Message::Close(None)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

#[tokio::test]
async fn bad_missing_and_expired_tokens_close_with_4001() {
    let c = Controller::start().await;
    let mut ws = connect(&c, "token=not-a-jwt").await;
    assert_eq!(close_code(&mut ws).await, Some(CloseCode::Library(4001)));
    let mut ws = connect(&c, "server_id=1").await;
    assert_eq!(close_code(&mut ws).await, Some(CloseCode::Library(4001)));
    let now = chrono::Utc::now().timestamp();
    let claims = serde_json::json!({"sub": "1", "name": "admin", "iss": "languard-controller", "aud": "languard-api", "exp": now - 120, "iat": now - 1000});
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()).unwrap(),
    )
    .unwrap();
    let mut ws = connect(&c, &format!("token={expired}")).await;
    assert_eq!(close_code(&mut ws).await, Some(CloseCode::Library(4001)));
    // A good token gets the hello.
    let mut ws = connect(&c, &format!("token={}", c.admin_token().await)).await;
    let hello = next_json(&mut ws).await.unwrap();
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["data"]["role"], "admin");
}

async fn make_servers(c: &Controller, admin: &str, n: usize) -> Vec<i64> {
    let (node_id, _) = c.create_node("n").await;
    let dir = tempfile::tempdir().unwrap();
    let mut servers = ServerServiceClient::new(c.channel().await);
    let mut ids = Vec::new();
    for i in 0..n {
        let s = fake_server(
            node_id,
            &format!("s{i}"),
            dir.path(),
            2302 + 10 * i as i32,
            &[],
        );
        ids.push(
            servers
                .create_server(authed(
                    pb::CreateServerRequest {
                        server: Some(s),
                        rcon_password: String::new(),
                    },
                    admin,
                ))
                .await
                .unwrap()
                .into_inner()
                .id,
        );
    }
    ids
}

/// Produces one "spec" event for server `id`.
async fn touch(
    servers: &mut ServerServiceClient<tonic::transport::Channel>,
    admin: &str,
    id: i64,
    flag: bool,
) {
    let patch = pb::Server {
        auto_restart: flag,
        ..Default::default()
    };
    servers
        .update_server(authed(
            pb::UpdateServerRequest {
                id,
                server: Some(patch),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["auto_restart".into()],
                }),
                rcon_password: String::new(),
            },
            admin,
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn events_reach_only_the_subscribed_server_and_subscriptions_change() {
    let c = Controller::start().await;
    let admin = c.admin_token().await;
    let ids = make_servers(&c, &admin, 2).await;
    let (a, b) = (ids[0], ids[1]);
    let mut ws_a = connect(&c, &format!("token={admin}&server_id={a}")).await;
    assert_eq!(next_json(&mut ws_a).await.unwrap()["type"], "hello");
    let mut ws_all = connect(&c, &format!("token={admin}")).await;
    assert_eq!(next_json(&mut ws_all).await.unwrap()["type"], "hello");
    // WatchEvents for server b over gRPC.
    let mut events = pb::event_service_client::EventServiceClient::new(c.channel().await);
    let mut watch_b = events
        .watch_events(authed(pb::WatchEventsRequest { server_id: b }, &admin))
        .await
        .unwrap()
        .into_inner();

    let mut servers = ServerServiceClient::new(c.channel().await);
    touch(&mut servers, &admin, b, true).await;
    touch(&mut servers, &admin, a, true).await;
    let m = next_json(&mut ws_a).await.unwrap();
    assert_eq!(
        (m["type"].as_str(), m["server_id"].as_i64()),
        (Some("event"), Some(a)),
        "b's event was not delivered to a: {m}"
    );
    assert_eq!(m["data"]["event_type"], "spec");
    assert!(m["ts"].is_string() && m["node_id"].is_i64());
    let first = next_json(&mut ws_all).await.unwrap();
    let second = next_json(&mut ws_all).await.unwrap();
    assert_eq!(
        (first["server_id"].as_i64(), second["server_id"].as_i64()),
        (Some(b), Some(a))
    );
    let live = tokio::time::timeout(Duration::from_secs(10), watch_b.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(live.server_id, b);
    assert!(
        matches!(live.payload, Some(pb::live_event::Payload::Event(ref e)) if e.r#type == "spec")
    );

    // Subscribe to b, unsubscribe from a.
    ws_a.send(Message::Text(
        format!("{{\"subscribe\":[{b}],\"unsubscribe\":[{a}]}}").into(),
    ))
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    touch(&mut servers, &admin, a, false).await;
    touch(&mut servers, &admin, b, false).await;
    let m = next_json(&mut ws_a).await.unwrap();
    assert_eq!(m["server_id"].as_i64(), Some(b), "{m}");
    // A malformed client message gets an error, not a disconnect.
    ws_a.send(Message::Text("{\"subscrbe\": 1}".into()))
        .await
        .unwrap();
    let m = next_json(&mut ws_a).await.unwrap();
    assert_eq!(m["type"], "error");
}

#[tokio::test]
async fn a_stalled_client_does_not_delay_another_and_is_told_what_it_missed() {
    let c = Controller::start_with(&[
        ("LANGUARD_HUB_CAPACITY", "16"),
        ("LANGUARD_WS_SEND_TIMEOUT_SECONDS", "2"),
    ])
    .await;
    let admin = c.admin_token().await;
    let ids = make_servers(&c, &admin, 1).await;
    // The stalled client: a tiny receive buffer, and it never reads until the end.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(2048).unwrap();
    let stream = socket.connect(c.addr).await.unwrap();
    let (mut stalled, _) =
        tokio_tungstenite::client_async(format!("ws://{}/ws?token={admin}", c.addr), stream)
            .await
            .unwrap();
    let mut live = connect(&c, &format!("token={admin}")).await;
    assert_eq!(next_json(&mut live).await.unwrap()["type"], "hello");

    const N: usize = 400;
    let reader = tokio::spawn(async move {
        let mut got = 0;
        let mut missed = 0u64;
        while got + (missed as usize) < N {
            let Some(m) = next_json(&mut live).await else {
                break;
            };
            match m["type"].as_str() {
                Some("event") => got += 1,
                Some("lagged") => missed += m["data"]["missed"].as_u64().unwrap(),
                _ => {}
            }
        }
        (got, missed)
    });
    let mut servers = ServerServiceClient::new(c.channel().await);
    let t = std::time::Instant::now();
    for i in 0..N {
        touch(&mut servers, &admin, ids[0], i % 2 == 0).await;
    }
    let publish_time = t.elapsed();
    let (got, missed) = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .expect("live client finished")
        .unwrap();
    assert_eq!(
        (got, missed),
        (N, 0),
        "the reading client got every event (publishing took {publish_time:?})"
    );

    // The stalled client: every event is either delivered or counted as missed, or it was
    // disconnected as too slow (1008). Nothing vanishes silently.
    let mut got = 0usize;
    let mut missed = 0u64;
    let mut closed_slow = false;
    loop {
        match tokio::time::timeout(Duration::from_secs(5), stalled.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                let m: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                match m["type"].as_str() {
                    Some("event") => got += 1,
                    Some("lagged") => missed += m["data"]["missed"].as_u64().unwrap(),
                    _ => {}
                }
            }
            Ok(Some(Ok(Message::Close(Some(f))))) => {
                closed_slow = f.code == CloseCode::Policy;
                break;
            }
            Ok(Some(Ok(_))) => {}
            _ => break,
        }
        if got + missed as usize >= N {
            break;
        }
    }
    assert!(
        closed_slow || got + missed as usize == N,
        "stalled client: got {got}, told missed {missed}, closed as slow {closed_slow}"
    );
}
