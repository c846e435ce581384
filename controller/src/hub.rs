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
    /// The server wrote a log entry.
    Log(LogData),
    /// The server's player list changed.
    Players(PlayersData),
    /// A resource sample of a server, or of a node (server_id 0).
    Metrics(MetricsData),
}

/// Data of a `metrics` message: the newest sample of a server, or of a node (server_id 0).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MetricsData {
    /// CPU in percent; server: of ONE core; node: of all cores together.
    pub cpu_percent: f64,
    /// Resident memory in bytes (node: memory in use).
    pub rss_bytes: u64,
    /// Virtual memory in bytes; 0 for a node.
    pub virtual_bytes: u64,
    /// Threads; 0 for a node.
    pub threads: u32,
    /// Seconds since the process started; 0 for a node.
    pub uptime_seconds: u64,
    /// Total memory of the host in bytes; only in node messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_total_bytes: Option<u64>,
}

/// Data of a `log` message.
#[derive(Debug, Clone, Serialize)]
pub struct LogData {
    /// Stored id (`LogEntry.id`).
    pub id: i64,
    /// "info", "warning" or "error".
    pub level: String,
    /// Structured kind.
    pub kind: String,
    /// The text.
    pub text: String,
    /// When it was written, RFC 3339.
    pub time: DateTime<Utc>,
}

/// One player in a `players` message.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PlayerData {
    /// BattlEye slot.
    pub slot: i32,
    /// Name.
    pub name: String,
    /// GUID; empty until known.
    pub guid: String,
    /// GUID verified.
    pub verified: bool,
    /// IP address and port.
    pub address: String,
    /// Ping in ms; -1 when unknown.
    pub ping: i32,
    /// In the lobby.
    pub in_lobby: bool,
    /// When this session began.
    pub joined_time: DateTime<Utc>,
}

/// Data of a `players` message.
#[derive(Debug, Clone, Serialize)]
pub struct PlayersData {
    /// "joined", "identified", "left" or "reconciled".
    pub change: String,
    /// The player concerned (absent for "reconciled").
    pub player: Option<PlayerData>,
    /// Everyone on the server after the change.
    pub players: Vec<PlayerData>,
}

impl PlayerData {
    /// The proto form of a player of `server_id`.
    pub fn to_proto(&self, server_id: i64) -> pb::Player {
        pb::Player {
            server_id,
            slot: self.slot,
            name: self.name.clone(),
            guid: self.guid.clone(),
            verified: self.verified,
            address: self.address.clone(),
            ping: self.ping,
            in_lobby: self.in_lobby,
            joined_time: Some(crate::api::convert::timestamp(self.joined_time)),
        }
    }
}

/// The proto value of a stored log level ("info", "warning", "error").
pub fn log_level_from_str(s: &str) -> pb::LogLevel {
    match s {
        "info" => pb::LogLevel::Info,
        "warning" => pb::LogLevel::Warning,
        "error" => pb::LogLevel::Error,
        _ => pb::LogLevel::Unspecified,
    }
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
        // Nobody listening: skip rendering (log lines arrive by the tens of thousands per second).
        if self.tx.receiver_count() == 0 {
            return;
        }
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
            HubPayload::Log(l) => pb::live_event::Payload::Log(pb::LogEntry {
                id: l.id,
                server_id,
                time: Some(crate::api::convert::timestamp(l.time)),
                level: log_level_from_str(&l.level) as i32,
                kind: l.kind,
                text: l.text,
            }),
            HubPayload::Players(p) => pb::live_event::Payload::Players(pb::PlayersUpdate {
                change: p.change,
                player: p.player.map(|x| x.to_proto(server_id)),
                players: p.players.iter().map(|x| x.to_proto(server_id)).collect(),
            }),
            HubPayload::Metrics(m) => pb::live_event::Payload::Metrics(pb::MetricsUpdate {
                cpu_percent: m.cpu_percent,
                rss_bytes: m.rss_bytes,
                virtual_bytes: m.virtual_bytes,
                threads: m.threads,
                uptime_seconds: m.uptime_seconds,
                memory_total_bytes: m.memory_total_bytes.unwrap_or(0),
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
    fn log_and_players_messages_render_for_both_transports() {
        let hub = Hub::new(16);
        let mut rx = hub.subscribe();
        let t = Utc::now();
        hub.publish(
            3,
            1,
            t,
            HubPayload::Log(LogData {
                id: 10,
                level: "warning".into(),
                kind: "other".into(),
                text: "Warning: x".into(),
                time: t,
            }),
        );
        let msg = rx.try_recv().expect("message");
        let v: serde_json::Value = serde_json::from_str(&msg.json).expect("json");
        assert_eq!(v["type"], "log");
        assert_eq!(v["data"]["id"], 10);
        assert_eq!(v["data"]["level"], "warning");
        assert_eq!(v["data"]["text"], "Warning: x");
        assert!(v["data"]["time"].is_string());
        assert!(
            matches!(msg.proto.payload, Some(pb::live_event::Payload::Log(ref l))
            if l.id == 10 && l.level == pb::LogLevel::Warning as i32 && l.server_id == 3)
        );
        let p = PlayerData {
            slot: 2,
            name: "Ann".into(),
            guid: String::new(),
            verified: false,
            address: "1.2.3.4:5".into(),
            ping: -1,
            in_lobby: true,
            joined_time: t,
        };
        hub.publish(
            3,
            1,
            t,
            HubPayload::Players(PlayersData {
                change: "joined".into(),
                player: Some(p.clone()),
                players: vec![p],
            }),
        );
        let msg = rx.try_recv().expect("message");
        let v: serde_json::Value = serde_json::from_str(&msg.json).expect("json");
        assert_eq!(v["type"], "players");
        assert_eq!(v["data"]["change"], "joined");
        assert_eq!(v["data"]["player"]["name"], "Ann");
        assert_eq!(v["data"]["players"][0]["slot"], 2);
        assert!(
            matches!(msg.proto.payload, Some(pb::live_event::Payload::Players(ref u))
            if u.change == "joined" && u.players.len() == 1)
        );
    }

    #[test]
    fn metrics_messages_render_for_both_transports() {
        let hub = Hub::new(16);
        let mut rx = hub.subscribe();
        let t = Utc::now();
        hub.publish(
            4,
            2,
            t,
            HubPayload::Metrics(MetricsData {
                cpu_percent: 150.5,
                rss_bytes: 1 << 30,
                virtual_bytes: 1 << 32,
                threads: 40,
                uptime_seconds: 60,
                memory_total_bytes: None,
            }),
        );
        let msg = rx.try_recv().expect("message");
        let v: serde_json::Value = serde_json::from_str(&msg.json).expect("json");
        assert_eq!(v["type"], "metrics");
        assert_eq!(v["server_id"], 4);
        assert_eq!(v["data"]["cpu_percent"], 150.5);
        assert_eq!(v["data"]["rss_bytes"], 1u64 << 30);
        assert_eq!(v["data"]["threads"], 40);
        assert!(v["data"].get("memory_total_bytes").is_none());
        assert!(
            matches!(msg.proto.payload, Some(pb::live_event::Payload::Metrics(ref m))
            if m.uptime_seconds == 60 && m.virtual_bytes == 1 << 32)
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
