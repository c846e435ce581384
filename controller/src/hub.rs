//! The in-process event hub: one producer side, many subscribers (WebSocket clients and
//! `WatchEvents` streams). Publishing never blocks; a subscriber that falls more than the hub's
//! capacity behind loses the oldest messages and is told how many (counted in [`Hub::dropped`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use languard_proto::v1 as pb;
use serde::Serialize;
use tokio::sync::broadcast;

/// One message of the live feed, pre-rendered for both transports.
#[derive(Debug)]
pub struct HubMessage {
    /// The server concerned; 0 for node-level messages.
    pub server_id: i64,
    /// The node concerned.
    pub node_id: i64,
    /// The WebSocket rendering: `{"type","server_id","ts","data"}`.
    pub json: String,
    /// The `WatchEvents` rendering.
    pub proto: pb::LiveEvent,
}

/// What a live message carries, before rendering.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum HubPayload {
    /// A server changed status.
    Status(StatusData),
    /// An event was recorded in the history.
    Event(EventData),
}

/// Data of a `status` message.
#[derive(Debug, Clone, Serialize)]
pub struct StatusData {
    /// New status, lower case ("running").
    pub status: String,
    /// Previous status.
    pub previous: String,
    /// Pid while running.
    pub pid: i32,
    /// Why.
    pub reason: String,
}

/// Data of an `event` message.
#[derive(Debug, Clone, Serialize)]
pub struct EventData {
    /// History id.
    pub id: i64,
    /// Event type.
    pub event_type: String,
    /// Text.
    pub message: String,
    /// Attributes.
    pub attributes: std::collections::BTreeMap<String, String>,
    /// Who.
    pub actor: String,
}

#[derive(Serialize)]
struct Envelope<'a> {
    #[serde(flatten)]
    payload: &'a HubPayload,
    server_id: i64,
    node_id: i64,
    ts: String,
}

/// Cheap-to-clone handle of the hub.
#[derive(Clone)]
pub struct Hub {
    tx: broadcast::Sender<Arc<HubMessage>>,
    dropped: Arc<AtomicU64>,
}

impl Hub {
    /// A hub whose subscribers may fall at most `capacity` messages behind.
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(16));
        Self {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Publishes a message to every current subscriber. Never blocks.
    pub fn publish(&self, server_id: i64, node_id: i64, ts: DateTime<Utc>, payload: HubPayload) {
        let json = serde_json::to_string(&Envelope {
            payload: &payload,
            server_id,
            node_id,
            ts: ts.to_rfc3339(),
        })
        .unwrap_or_else(|e| format!("{{\"type\":\"error\",\"data\":{{\"message\":\"{e}\"}}}}"));
        let body = match payload {
            HubPayload::Status(s) => pb::live_event::Payload::Status(pb::StatusUpdate {
                status: crate::api::convert::status_from_str(&s.status) as i32,
                previous: crate::api::convert::status_from_str(&s.previous) as i32,
                pid: s.pid,
                reason: s.reason,
            }),
            HubPayload::Event(e) => pb::live_event::Payload::Event(pb::ServerEvent {
                id: e.id,
                server_id,
                node_id,
                r#type: e.event_type,
                message: e.message,
                attributes: e.attributes.into_iter().collect(),
                actor: e.actor,
                time: Some(crate::api::convert::timestamp(ts)),
            }),
        };
        let proto = pb::LiveEvent {
            server_id,
            node_id,
            time: Some(crate::api::convert::timestamp(ts)),
            payload: Some(body),
        };
        // An error only means there is no subscriber right now.
        let _ = self.tx.send(Arc::new(HubMessage {
            server_id,
            node_id,
            json,
            proto,
        }));
    }

    /// A new subscriber, starting at the next published message.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<HubMessage>> {
        self.tx.subscribe()
    }

    /// Records that a subscriber missed `n` messages.
    pub fn count_dropped(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
    }

    /// Messages dropped for slow subscribers since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_envelope_has_the_documented_shape() {
        let hub = Hub::new(16);
        let mut rx = hub.subscribe();
        hub.publish(
            7,
            2,
            Utc::now(),
            HubPayload::Status(StatusData {
                status: "running".into(),
                previous: "starting".into(),
                pid: 42,
                reason: "r".into(),
            }),
        );
        let msg = rx.try_recv().expect("message");
        let v: serde_json::Value = serde_json::from_str(&msg.json).expect("json");
        assert_eq!(v["type"], "status");
        assert_eq!(v["server_id"], 7);
        assert_eq!(v["data"]["pid"], 42);
        assert!(v["ts"].is_string());
        assert!(
            matches!(msg.proto.payload, Some(pb::live_event::Payload::Status(ref s)) if s.pid == 42)
        );
    }

    #[test]
    fn slow_subscriber_lags_without_blocking_the_publisher() {
        let hub = Hub::new(16);
        let mut rx = hub.subscribe();
        for i in 0..100 {
            hub.publish(
                1,
                1,
                Utc::now(),
                HubPayload::Status(StatusData {
                    status: "running".into(),
                    previous: "stopped".into(),
                    pid: i,
                    reason: String::new(),
                }),
            );
        }
        match rx.try_recv() {
            Err(broadcast::error::TryRecvError::Lagged(n)) => assert_eq!(n, 84),
            other => panic!("expected lag, got {other:?}"),
        }
    }
}
