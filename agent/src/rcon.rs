//! BattlEye RCon for one server: the RCon task
//! (one client per server, shared by the players poller, admin actions and graceful stop) that
//! turns server messages and `players` polls into player and chat events.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use languard_battleye::client::{Client, ClientConfig, ConnectionState, DisconnectReason};
use languard_battleye::messages::{self, ChatTarget, Message};
use languard_proto::v1 as pb;
use tokio_util::sync::CancellationToken;

use crate::outbox::Outbox;

/// The shared client of one server, present while RCon is connected.
#[derive(Default, Clone)]
pub struct RconHandle {
    inner: Arc<Mutex<Option<Client>>>,
    last_error: Arc<Mutex<String>>,
}

impl RconHandle {
    fn set(&self, c: Option<Client>) {
        *self.inner.lock().unwrap_or_else(|p| p.into_inner()) = c;
    }

    fn set_error(&self, e: String) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = e;
    }

    /// The connected client, or why there is none.
    pub fn client(&self) -> Result<Client, String> {
        let c = self.inner.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match c {
            Some(c) if c.state() == ConnectionState::Connected => Ok(c),
            _ => {
                let e = self
                    .last_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone();
                Err(if e.is_empty() {
                    "RCon is not connected".into()
                } else {
                    format!("RCon is not connected: {e}")
                })
            }
        }
    }

    /// Sends a command with the shared client.
    pub async fn command(&self, text: &str) -> Result<String, String> {
        let c = self.client()?;
        c.command(text).await.map_err(|e| e.to_string())
    }
}

/// Settings of the RCon task.
#[derive(Debug, Clone)]
pub struct RconSettings {
    /// Where RCon listens.
    pub addr: SocketAddr,
    /// The password (never logged).
    pub password: String,
    /// How often to poll `players`.
    pub poll_interval: Duration,
}

/// One run of the RCon task: connect, then relay messages and polls until the connection is lost
/// for good or `cancel`. Returns an error to be restarted with backoff.
pub async fn run(
    server_id: i64,
    s: RconSettings,
    outbox: Arc<Outbox>,
    handle: RconHandle,
    cancel: CancellationToken,
) -> Result<(), String> {
    let cfg = ClientConfig {
        keepalive_interval: Duration::from_secs(30),
        ..ClientConfig::default()
    };
    let client = match Client::connect(s.addr, s.password.clone(), cfg).await {
        Ok(c) => c,
        Err(e) => {
            handle.set_error(e.to_string());
            return Err(format!("RCon connect to {}: {e}", s.addr));
        }
    };
    tracing::info!(addr = %s.addr, "RCon connected");
    handle.set_error(String::new());
    handle.set(Some(client.clone()));
    // However this run ends (an error, a panic, or the bundle dropping it when the server stops),
    // admin actions must stop seeing a connected client.
    let published = Published(&handle);
    let result = relay(server_id, &s, &client, &outbox, &cancel).await;
    drop(published);
    if let Err(e) = &result {
        handle.set_error(e.clone());
    }
    client.close().await;
    result
}

/// Clears the shared client when dropped.
struct Published<'a>(&'a RconHandle);

impl Drop for Published<'_> {
    fn drop(&mut self) {
        self.0.set(None);
    }
}

async fn relay(
    server_id: i64,
    s: &RconSettings,
    client: &Client,
    outbox: &Outbox,
    cancel: &CancellationToken,
) -> Result<(), String> {
    let mut msgs = client.subscribe_messages();
    let mut state = client.watch_state();
    let mut poll = tokio::time::interval(s.poll_interval);
    let mut last: Option<Vec<pb::Player>> = None;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            m = msgs.recv() => match m {
                Ok(m) => {
                    if let Some(body) = event_of(&messages::parse(&m.text)) {
                        outbox.push(server_id, body);
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => tracing::warn!(missed = n, "RCon messages lagged; the next poll reconciles"),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return Err("RCon client closed".into()),
            },
            _ = poll.tick() => match client.players().await {
                Ok(list) => {
                    let players: Vec<pb::Player> = list.players.iter().map(|p| pb::Player {
                        server_id,
                        slot: i32::try_from(p.slot).unwrap_or(-1),
                        name: p.name.clone(),
                        guid: p.guid.clone().unwrap_or_default(),
                        verified: p.verified,
                        address: format!("{}:{}", p.ip, p.port),
                        ping: p.ping,
                        in_lobby: p.in_lobby,
                        joined_time: None,
                    }).collect();
                    if last.as_ref() != Some(&players) {
                        outbox.push(server_id, pb::agent_event::Body::Players(pb::PlayerSnapshot { players: players.clone() }));
                        last = Some(players);
                    }
                }
                Err(e) => tracing::debug!(error = %e, "players poll failed"),
            },
            changed = state.changed() => {
                if changed.is_err() {
                    return Err("RCon client ended".into());
                }
                let st = state.borrow().clone();
                match st {
                    ConnectionState::Closed => return Err("RCon client closed".into()),
                    ConnectionState::Disconnected(DisconnectReason::WrongPassword) => return Err("RCon refused the password".into()),
                    ConnectionState::Connected => {
                        // Reconnected after a server restart: the next poll is sent in full.
                        last = None;
                    }
                    ConnectionState::Disconnected(r) => tracing::info!(reason = ?r, "RCon disconnected; reconnecting"),
                }
            }
        }
    }
}

/// The agent event for a server message, if it is one worth reporting.
pub fn event_of(m: &Message) -> Option<pb::agent_event::Body> {
    use pb::agent_event::Body;
    let player = |change: pb::PlayerChange, slot: u32, name: &str| pb::PlayerEvent {
        change: change as i32,
        slot: i32::try_from(slot).unwrap_or(-1),
        name: name.to_owned(),
        ..Default::default()
    };
    Some(match m {
        Message::PlayerConnected {
            slot,
            name,
            ip,
            port,
        } => Body::Player(pb::PlayerEvent {
            address: format!("{ip}:{port}"),
            ..player(pb::PlayerChange::Joined, *slot, name)
        }),
        Message::PlayerGuid {
            slot,
            name,
            guid,
            verified,
        } => Body::Player(pb::PlayerEvent {
            guid: guid.clone(),
            verified: *verified,
            ..player(pb::PlayerChange::Identified, *slot, name)
        }),
        Message::GuidVerified { slot, name, guid } => Body::Player(pb::PlayerEvent {
            guid: guid.clone(),
            verified: true,
            ..player(pb::PlayerChange::Identified, *slot, name)
        }),
        Message::PlayerDisconnected { slot, name } => Body::Player(pb::PlayerEvent {
            reason: "disconnected".into(),
            ..player(pb::PlayerChange::Left, *slot, name)
        }),
        Message::PlayerKicked {
            slot,
            name,
            guid,
            reason,
        } => Body::Player(pb::PlayerEvent {
            guid: guid.clone().unwrap_or_default(),
            reason: format!("kicked: {reason}"),
            ..player(pb::PlayerChange::Left, *slot, name)
        }),
        Message::Chat {
            channel,
            name,
            text,
        } => Body::Chat(pb::ChatMessage {
            channel: channel.clone(),
            name: name.clone(),
            text: text.clone(),
            admin: false,
        }),
        Message::AdminChat {
            admin_id,
            target,
            text,
        } => Body::Chat(pb::ChatMessage {
            channel: match target {
                ChatTarget::Channel(c) => c.clone(),
                ChatTarget::Player(p) => format!("To {p}"),
            },
            name: format!("RCon admin #{admin_id}"),
            text: text.clone(),
            admin: true,
        }),
        Message::RconAdminLogin { .. } | Message::Other(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_messages_become_player_and_chat_events() {
        use pb::agent_event::Body;
        let e = event_of(&messages::parse(
            "Player #3 Mr. X (127.0.0.1:2304) connected",
        ));
        assert!(
            matches!(e, Some(Body::Player(ref p)) if p.change == pb::PlayerChange::Joined as i32 && p.slot == 3 && p.address == "127.0.0.1:2304"),
            "{e:?}"
        );
        let e = event_of(&messages::parse(
            "Verified GUID (0123456789abcdef0123456789abcdef) of player #3 Mr. X",
        ));
        assert!(
            matches!(e, Some(Body::Player(ref p)) if p.change == pb::PlayerChange::Identified as i32 && p.verified),
            "{e:?}"
        );
        let e = event_of(&messages::parse("Player #3 Mr. X disconnected"));
        assert!(
            matches!(e, Some(Body::Player(ref p)) if p.change == pb::PlayerChange::Left as i32),
            "{e:?}"
        );
        let e = event_of(&messages::parse("(Global) Mr. X: hello all"));
        assert!(
            matches!(e, Some(Body::Chat(ref c)) if c.text == "hello all" && !c.admin),
            "{e:?}"
        );
        assert!(event_of(&messages::parse("RCon admin #0 (127.0.0.1:5555) logged in")).is_none());
    }
}
