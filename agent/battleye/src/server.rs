//! A BattlEye RCon *server* on loopback UDP: the RCon side of the project's fake Arma 3 server
//! and of this crate's tests.
//!
//! It implements what real clients depend on: password check, per-client state, command answers
//! through a [`CommandHandler`], multi-part splitting of long answers, server messages with
//! resends until acknowledged (the client is dropped if it never acknowledges), dropping clients
//! that send no command for [`ServerConfig::client_timeout`], and the
//! `RCon admin #N (ip:port) logged in` announcement. Commands from clients that are not logged in
//! are ignored (no answer), like BattlEye does.
//!
//! Test hooks ([`ServerHandle::set_outgoing_drop`], [`ServerHandle::set_incoming_drop`],
//! [`ServerHandle::set_reverse_multipart`]) simulate packet loss and reordering.
//!
//! It refuses to bind to anything but a loopback address: it is a test double, not a product.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use thiserror::Error;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::packet::{ClientPacket, MAX_PACKET_SIZE, ServerPacket};

/// Configuration of a [`Server`].
#[derive(Clone)]
pub struct ServerConfig {
    /// Address to bind; must be a loopback address (port 0 picks a free port).
    pub bind: SocketAddr,
    /// The RCon password.
    pub password: String,
    /// Answers longer than this many bytes are split into parts of at most this size.
    pub multipart_threshold: usize,
    /// Delay between resends of an unacknowledged server message.
    pub message_resend_interval: Duration,
    /// Sends of a server message (first send included) before the client is dropped for not
    /// acknowledging (BattlEye: 5 within 10 s).
    pub message_attempts: u32,
    /// A logged-in client that sends no command packet for this long is dropped (BattlEye: 45 s).
    pub client_timeout: Duration,
    /// Send `RCon admin #N (ip:port) logged in` to every admin after each login.
    pub announce_logins: bool,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("bind", &self.bind)
            .field("password", &"<redacted>")
            .field("multipart_threshold", &self.multipart_threshold)
            .field("message_resend_interval", &self.message_resend_interval)
            .field("message_attempts", &self.message_attempts)
            .field("client_timeout", &self.client_timeout)
            .field("announce_logins", &self.announce_logins)
            .finish()
    }
}

impl ServerConfig {
    /// BattlEye-like defaults on `127.0.0.1:0`.
    pub fn new(password: impl Into<String>) -> Self {
        Self {
            bind: (std::net::Ipv4Addr::LOCALHOST, 0).into(),
            password: password.into(),
            multipart_threshold: 1024,
            message_resend_interval: Duration::from_secs(2),
            message_attempts: 5,
            client_timeout: Duration::from_secs(45),
            announce_logins: true,
        }
    }
}

/// Errors of [`Server::bind`].
#[derive(Debug, Error)]
pub enum ServerError {
    /// The bind address is not a loopback address.
    #[error("refusing to bind the test RCon server to non-loopback address {0}")]
    NonLoopback(SocketAddr),
    /// Socket error.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Who sent a command.
#[derive(Debug, Clone)]
pub struct CommandContext {
    /// The admin number announced at login.
    pub admin_id: u32,
    /// The admin's address.
    pub peer: SocketAddr,
    /// Handle to the server (e.g. to broadcast `RCon admin #N: (Global) text` for `say -1`).
    pub server: ServerHandle,
}

/// Answers commands. Called on the server task: keep it quick and non-blocking.
/// Empty commands (keep-alives) are answered by the server itself.
pub trait CommandHandler: Send + Sync + 'static {
    /// Returns the answer text for `command`.
    fn handle(&self, ctx: &CommandContext, command: &str) -> String;
}

impl<F> CommandHandler for F
where
    F: Fn(&str) -> String + Send + Sync + 'static,
{
    fn handle(&self, _ctx: &CommandContext, command: &str) -> String {
        self(command)
    }
}

/// Which packets a test hook drops.
pub enum DropPolicy<P> {
    /// Drop nothing.
    None,
    /// Drop the packets with these 0-based ordinals (counted per direction since the policy was set).
    Ordinals(Vec<u64>),
    /// Drop every n-th packet (n ≥ 1; the n-th, 2n-th, ...).
    EveryNth(u64),
    /// Drop each packet with this probability, from a deterministic generator seeded with `seed`.
    Fraction {
        /// Probability in `0.0..=1.0`.
        ratio: f64,
        /// Generator seed.
        seed: u64,
    },
    /// Drop packets for which the predicate returns `true`.
    Matching(Arc<dyn Fn(&P) -> bool + Send + Sync>),
}

impl<P> std::fmt::Debug for DropPolicy<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Ordinals(o) => f.debug_tuple("Ordinals").field(o).finish(),
            Self::EveryNth(n) => f.debug_tuple("EveryNth").field(n).finish(),
            Self::Fraction { ratio, seed } => f
                .debug_struct("Fraction")
                .field("ratio", ratio)
                .field("seed", seed)
                .finish(),
            Self::Matching(_) => f.write_str("Matching(..)"),
        }
    }
}

struct Dropper<P> {
    policy: DropPolicy<P>,
    count: u64,
    rng: u64,
}

impl<P> Dropper<P> {
    fn new(policy: DropPolicy<P>) -> Self {
        let rng = match &policy {
            DropPolicy::Fraction { seed, .. } => *seed,
            _ => 0,
        };
        Self {
            policy,
            count: 0,
            rng,
        }
    }

    fn should_drop(&mut self, packet: &P) -> bool {
        let ordinal = self.count;
        self.count += 1;
        match &self.policy {
            DropPolicy::None => false,
            DropPolicy::Ordinals(o) => o.contains(&ordinal),
            DropPolicy::EveryNth(n) => *n > 0 && (ordinal + 1).is_multiple_of(*n),
            DropPolicy::Fraction { ratio, .. } => {
                // splitmix64
                self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = self.rng;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^= z >> 31;
                ((z >> 11) as f64 / (1u64 << 53) as f64) < *ratio
            }
            DropPolicy::Matching(f) => f(packet),
        }
    }
}

/// Counters for tests and diagnostics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Successful logins (first login of an address; repeated logins count again).
    pub logins_ok: u64,
    /// Refused logins.
    pub logins_failed: u64,
    /// Non-empty commands handled.
    pub commands: u64,
    /// Empty commands (keep-alives) answered.
    pub keepalives: u64,
    /// Commands from clients that are not logged in (ignored).
    pub unauthenticated: u64,
    /// Message acknowledgements received.
    pub acks: u64,
    /// Server message packets sent, resends included.
    pub messages_sent: u64,
    /// Server message resends.
    pub message_resends: u64,
    /// Datagrams that did not decode.
    pub malformed: u64,
    /// Outgoing packets dropped by the test hook.
    pub dropped_outgoing: u64,
    /// Incoming packets dropped by the test hook.
    pub dropped_incoming: u64,
    /// Clients dropped for silence or unacknowledged messages.
    pub clients_dropped: u64,
}

/// A logged-in admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminInfo {
    /// Admin number.
    pub id: u32,
    /// Admin address.
    pub addr: SocketAddr,
}

struct Unacked {
    text: String,
    sends: u32,
    last_sent: Instant,
}

struct ClientState {
    id: u32,
    last_command: Instant,
    next_seq: u8,
    unacked: HashMap<u8, Unacked>,
}

struct State {
    clients: HashMap<SocketAddr, ClientState>,
    next_admin_id: u32,
    stats: ServerStats,
    outgoing: Dropper<ServerPacket>,
    incoming: Dropper<ClientPacket>,
    reverse_multipart: bool,
}

struct Inner {
    config: ServerConfig,
    state: Mutex<State>,
    handler: Box<dyn CommandHandler>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Cheap-to-clone handle to a running [`Server`].
#[derive(Clone)]
pub struct ServerHandle {
    inner: Arc<Inner>,
    broadcast_tx: mpsc::UnboundedSender<String>,
    local_addr: SocketAddr,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl ServerHandle {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Sends a server message to every logged-in admin (resent until acknowledged).
    pub fn broadcast(&self, text: impl Into<String>) {
        // Fails only when the server task is gone, in which case nobody is listening anyway.
        let _ = self.broadcast_tx.send(text.into());
    }

    /// The logged-in admins.
    pub fn admins(&self) -> Vec<AdminInfo> {
        let state = lock(&self.inner.state);
        let mut admins: Vec<_> = state
            .clients
            .iter()
            .map(|(addr, c)| AdminInfo {
                id: c.id,
                addr: *addr,
            })
            .collect();
        admins.sort_by_key(|a| a.id);
        admins
    }

    /// Current counters.
    pub fn stats(&self) -> ServerStats {
        lock(&self.inner.state).stats.clone()
    }

    /// Test hook: drop outgoing packets (answers, parts, messages, login results).
    pub fn set_outgoing_drop(&self, policy: DropPolicy<ServerPacket>) {
        lock(&self.inner.state).outgoing = Dropper::new(policy);
    }

    /// Test hook: drop incoming packets (before they are processed).
    pub fn set_incoming_drop(&self, policy: DropPolicy<ClientPacket>) {
        lock(&self.inner.state).incoming = Dropper::new(policy);
    }

    /// Test hook: send the parts of multi-part answers last part first.
    pub fn set_reverse_multipart(&self, reverse: bool) {
        lock(&self.inner.state).reverse_multipart = reverse;
    }
}

/// A running RCon server. Stops on [`Server::shutdown`] or drop.
pub struct Server {
    handle: ServerHandle,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.handle.local_addr)
            .finish_non_exhaustive()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl std::ops::Deref for Server {
    type Target = ServerHandle;
    fn deref(&self) -> &ServerHandle {
        &self.handle
    }
}

impl Server {
    /// Binds the socket and starts the server task. Refuses non-loopback addresses.
    pub async fn bind(
        config: ServerConfig,
        handler: impl CommandHandler,
    ) -> Result<Server, ServerError> {
        if !config.bind.ip().is_loopback() {
            return Err(ServerError::NonLoopback(config.bind));
        }
        let socket = UdpSocket::bind(config.bind).await?;
        let local_addr = socket.local_addr()?;
        let (broadcast_tx, broadcast_rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            config,
            state: Mutex::new(State {
                clients: HashMap::new(),
                next_admin_id: 0,
                stats: ServerStats::default(),
                outgoing: Dropper::new(DropPolicy::None),
                incoming: Dropper::new(DropPolicy::None),
                reverse_multipart: false,
            }),
            handler: Box::new(handler),
        });
        let handle = ServerHandle {
            inner,
            broadcast_tx,
            local_addr,
        };
        let cancel = CancellationToken::new();
        let span = info_span!("battleye_server", addr = %local_addr);
        let task = tokio::spawn(
            run(handle.clone(), socket, broadcast_rx, cancel.clone()).instrument(span),
        );
        info!(addr = %local_addr, "test BattlEye RCon server listening");
        Ok(Server {
            handle,
            cancel,
            task: Some(task),
        })
    }

    /// A clonable handle (broadcast, admins, stats, test hooks).
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// Stops the server and waits until its socket is closed.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take()
            && let Err(e) = task.await
        {
            warn!(error = %e, "RCon server task failed");
        }
    }
}

/// Splits an answer into the packets to send.
fn answer_packets(seq: u8, text: String, threshold: usize) -> Vec<ServerPacket> {
    let threshold = threshold.clamp(1, MAX_PACKET_SIZE - 16);
    let bytes = text.as_bytes();
    if bytes.len() <= threshold {
        return vec![ServerPacket::CommandResponse { seq, text }];
    }
    // At most 255 parts: grow the part size if needed.
    let size = threshold.max(bytes.len().div_ceil(usize::from(u8::MAX)));
    let chunks: Vec<&[u8]> = bytes.chunks(size).collect();
    let total = u8::try_from(chunks.len()).unwrap_or(u8::MAX);
    chunks
        .into_iter()
        .zip(0..total)
        .map(|(chunk, index)| ServerPacket::CommandPart {
            seq,
            total,
            index,
            payload: chunk.to_vec(),
        })
        .collect()
}

impl ServerHandle {
    /// Applies the outgoing drop hook and encodes what is left.
    fn outgoing(&self, state: &mut State, packets: Vec<ServerPacket>) -> Vec<Vec<u8>> {
        packets
            .into_iter()
            .filter_map(|p| {
                if state.outgoing.should_drop(&p) {
                    state.stats.dropped_outgoing += 1;
                    debug!(packet = ?p, "test hook: dropping outgoing packet");
                    None
                } else {
                    Some(p.encode())
                }
            })
            .collect()
    }

    /// Queues `text` for every logged-in client; returns the datagrams to send.
    fn queue_message(&self, state: &mut State, text: &str) -> Vec<(SocketAddr, Vec<u8>)> {
        let now = Instant::now();
        let mut packets = Vec::new();
        for (addr, client) in &mut state.clients {
            let seq = client.next_seq;
            client.next_seq = client.next_seq.wrapping_add(1);
            client.unacked.insert(
                seq,
                Unacked {
                    text: text.to_owned(),
                    sends: 1,
                    last_sent: now,
                },
            );
            packets.push((
                *addr,
                ServerPacket::Message {
                    seq,
                    text: text.to_owned(),
                },
            ));
        }
        state.stats.messages_sent += packets.len() as u64;
        packets
            .into_iter()
            .flat_map(|(addr, p)| {
                self.outgoing(state, vec![p])
                    .into_iter()
                    .map(move |d| (addr, d))
            })
            .collect()
    }

    /// Processes one datagram; returns the datagrams to send.
    fn on_datagram(&self, peer: SocketAddr, data: &[u8]) -> Vec<(SocketAddr, Vec<u8>)> {
        let cfg = &self.inner.config;
        let packet = match ClientPacket::decode(data) {
            Ok(p) => p,
            Err(e) => {
                debug!(%peer, error = %e, "malformed datagram");
                lock(&self.inner.state).stats.malformed += 1;
                return Vec::new();
            }
        };
        let mut state = lock(&self.inner.state);
        if state.incoming.should_drop(&packet) {
            state.stats.dropped_incoming += 1;
            debug!(%peer, packet = ?packet, "test hook: dropping incoming packet");
            return Vec::new();
        }
        match packet {
            ClientPacket::Login { password } => {
                if password != cfg.password {
                    state.stats.logins_failed += 1;
                    info!(%peer, "RCon login refused");
                    let out =
                        self.outgoing(&mut state, vec![ServerPacket::LoginResult { ok: false }]);
                    return out.into_iter().map(|d| (peer, d)).collect();
                }
                state.stats.logins_ok += 1;
                let is_new = !state.clients.contains_key(&peer);
                if is_new {
                    let id = state.next_admin_id;
                    state.next_admin_id += 1;
                    state.clients.insert(
                        peer,
                        ClientState {
                            id,
                            last_command: Instant::now(),
                            next_seq: 0,
                            unacked: HashMap::new(),
                        },
                    );
                }
                let mut out: Vec<_> = self
                    .outgoing(&mut state, vec![ServerPacket::LoginResult { ok: true }])
                    .into_iter()
                    .map(|d| (peer, d))
                    .collect();
                if is_new && cfg.announce_logins {
                    let id = state.clients.get(&peer).map_or(0, |c| c.id);
                    info!(%peer, id, "RCon admin logged in");
                    let text = format!("RCon admin #{id} ({peer}) logged in");
                    out.extend(self.queue_message(&mut state, &text));
                }
                out
            }
            ClientPacket::Command { seq, command } => {
                let Some(client) = state.clients.get_mut(&peer) else {
                    state.stats.unauthenticated += 1;
                    debug!(%peer, "command from a client that is not logged in: ignored");
                    return Vec::new();
                };
                client.last_command = Instant::now();
                let admin_id = client.id;
                if command.is_empty() {
                    state.stats.keepalives += 1;
                    let out = self.outgoing(
                        &mut state,
                        vec![ServerPacket::CommandResponse {
                            seq,
                            text: String::new(),
                        }],
                    );
                    return out.into_iter().map(|d| (peer, d)).collect();
                }
                state.stats.commands += 1;
                drop(state);
                let ctx = CommandContext {
                    admin_id,
                    peer,
                    server: self.clone(),
                };
                let answer = self.inner.handler.handle(&ctx, &command);
                let mut state = lock(&self.inner.state);
                let mut packets = answer_packets(seq, answer, cfg.multipart_threshold);
                if state.reverse_multipart {
                    packets.reverse();
                }
                let out = self.outgoing(&mut state, packets);
                out.into_iter().map(|d| (peer, d)).collect()
            }
            ClientPacket::MessageAck { seq } => {
                state.stats.acks += 1;
                if let Some(client) = state.clients.get_mut(&peer) {
                    client.unacked.remove(&seq);
                }
                Vec::new()
            }
        }
    }

    /// Resends unacknowledged messages and drops dead clients; returns the datagrams to send.
    fn on_tick(&self) -> Vec<(SocketAddr, Vec<u8>)> {
        let cfg = &self.inner.config;
        let now = Instant::now();
        let mut state = lock(&self.inner.state);
        let mut dead = Vec::new();
        let mut resend = Vec::new();
        for (addr, client) in &mut state.clients {
            if now.duration_since(client.last_command) > cfg.client_timeout {
                info!(peer = %addr, id = client.id, "dropping RCon client: no command in time");
                dead.push(*addr);
                continue;
            }
            for (seq, msg) in &mut client.unacked {
                if now.duration_since(msg.last_sent) < cfg.message_resend_interval {
                    continue;
                }
                if msg.sends >= cfg.message_attempts.max(1) {
                    info!(peer = %addr, id = client.id, seq, "dropping RCon client: message not acknowledged");
                    dead.push(*addr);
                    break;
                }
                msg.sends += 1;
                msg.last_sent = now;
                resend.push((
                    *addr,
                    ServerPacket::Message {
                        seq: *seq,
                        text: msg.text.clone(),
                    },
                ));
            }
        }
        for addr in &dead {
            state.clients.remove(addr);
        }
        state.stats.clients_dropped += dead.len() as u64;
        resend.retain(|(addr, _)| !dead.contains(addr));
        state.stats.messages_sent += resend.len() as u64;
        state.stats.message_resends += resend.len() as u64;
        resend
            .into_iter()
            .flat_map(|(addr, p)| {
                self.outgoing(&mut state, vec![p])
                    .into_iter()
                    .map(move |d| (addr, d))
            })
            .collect()
    }
}

async fn send_all(socket: &UdpSocket, datagrams: Vec<(SocketAddr, Vec<u8>)>) {
    for (addr, data) in datagrams {
        if let Err(e) = socket.send_to(&data, addr).await {
            debug!(%addr, error = %e, "send failed");
        }
    }
}

async fn run(
    handle: ServerHandle,
    socket: UdpSocket,
    mut broadcast_rx: mpsc::UnboundedReceiver<String>,
    cancel: CancellationToken,
) {
    let cfg = &handle.inner.config;
    let tick = (cfg.message_resend_interval / 4)
        .min(cfg.client_timeout / 4)
        .max(Duration::from_millis(5));
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut buf = vec![0u8; MAX_PACKET_SIZE + 1];
    loop {
        let out = tokio::select! {
            () = cancel.cancelled() => break,
            received = socket.recv_from(&mut buf) => match received {
                Ok((n, peer)) => handle.on_datagram(peer, buf.get(..n).unwrap_or_default()),
                Err(e) => {
                    debug!(error = %e, "recv failed");
                    Vec::new()
                }
            },
            Some(text) = broadcast_rx.recv() => {
                let mut state = lock(&handle.inner.state);
                handle.queue_message(&mut state, &text)
            }
            _ = ticker.tick() => handle.on_tick(),
        };
        send_all(&socket, out).await;
    }
    debug!("RCon server stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_respects_threshold_and_part_limit() {
        let packets = answer_packets(7, "x".repeat(10), 4);
        assert_eq!(packets.len(), 3);
        let packets = answer_packets(7, "y".repeat(1000), 1);
        assert_eq!(packets.len(), 250);
        assert!(matches!(
            packets.last(),
            Some(ServerPacket::CommandPart {
                total: 250,
                index: 249,
                ..
            })
        ));
        let packets = answer_packets(1, "short".into(), 100);
        assert_eq!(
            packets,
            vec![ServerPacket::CommandResponse {
                seq: 1,
                text: "short".into()
            }]
        );
    }

    #[test]
    fn every_nth_and_ordinals() {
        let mut d = Dropper::<u8>::new(DropPolicy::EveryNth(3));
        let dropped: Vec<bool> = (0..6).map(|_| d.should_drop(&0)).collect();
        assert_eq!(dropped, [false, false, true, false, false, true]);
        let mut d = Dropper::<u8>::new(DropPolicy::Ordinals(vec![0, 2]));
        let dropped: Vec<bool> = (0..4).map(|_| d.should_drop(&0)).collect();
        assert_eq!(dropped, [true, false, true, false]);
        let mut d = Dropper::<u8>::new(DropPolicy::Fraction {
            ratio: 0.5,
            seed: 1,
        });
        let n = (0..1000).filter(|_| d.should_drop(&0)).count();
        assert!((350..650).contains(&n), "{n}");
    }
}
