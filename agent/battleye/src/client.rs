//! Async BattlEye RCon client over a tokio UDP socket.
//!
//! [`Client::connect`] logs in (retrying lost answers) and spawns one background task that owns
//! the receive loop: it answers command packets to the waiting [`Client::command`] callers,
//! reassembles multi-part answers, acknowledges and de-duplicates server messages, sends
//! keep-alives, detects a dead server and reconnects (re-login with exponential backoff).
//!
//! The [`Client`] handle is cheap to clone; the background task stops when [`Client::close`] is
//! called or the last handle is dropped.

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use thiserror::Error;
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::packet::{ClientPacket, HEADER_LEN, MAX_PACKET_SIZE, ServerPacket};
use crate::players::{AdminList, BanList, PlayerList, parse_admins, parse_bans, parse_players};

/// Tuning of a [`Client`]. The defaults suit a real server over the internet.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// How long to wait for a login answer before resending the login packet.
    pub login_timeout: Duration,
    /// Login packets sent before giving up with [`Error::NoAnswer`] (at least 1).
    pub login_attempts: u32,
    /// How long to wait for a command answer before resending the command (same sequence number).
    pub command_timeout: Duration,
    /// Command packets sent before giving up with [`Error::Timeout`] (at least 1).
    pub command_attempts: u32,
    /// Send an empty keep-alive command when nothing was sent for this long (the server drops
    /// clients silent for 45 s).
    pub keepalive_interval: Duration,
    /// The server is considered dead when nothing at all has been received for this long while
    /// commands or keep-alives were outstanding.
    pub dead_timeout: Duration,
    /// Reconnect (re-login on a new socket) automatically after the server is lost.
    pub reconnect: bool,
    /// First delay before a reconnect attempt; doubled after each failure.
    pub reconnect_min_backoff: Duration,
    /// Upper bound of the reconnect delay.
    pub reconnect_max_backoff: Duration,
    /// Capacity of the server message broadcast channel; a slower subscriber loses the oldest
    /// messages (`RecvError::Lagged`) instead of slowing the client down.
    pub message_capacity: usize,
    /// A server message with the same sequence number and text seen within this window is a
    /// resend and is not delivered again.
    pub dedup_window: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            login_timeout: Duration::from_secs(2),
            login_attempts: 3,
            command_timeout: Duration::from_secs(2),
            command_attempts: 3,
            keepalive_interval: Duration::from_secs(30),
            dead_timeout: Duration::from_secs(15),
            reconnect: true,
            reconnect_min_backoff: Duration::from_secs(1),
            reconnect_max_backoff: Duration::from_secs(60),
            message_capacity: 1024,
            dedup_window: Duration::from_secs(20),
        }
    }
}

/// Errors of [`Client`] operations.
#[derive(Debug, Error)]
pub enum Error {
    /// Socket error.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The server answered the login with "wrong password". Not retried.
    #[error("wrong RCon password")]
    WrongPassword,
    /// Nothing answered the login: RCon is disabled, the port is wrong or the server is down.
    #[error("no answer to login (RCon disabled, wrong port or server down)")]
    NoAnswer,
    /// The client is currently not logged in (reconnecting, or stopped after a failure).
    #[error("not connected: {0:?}")]
    NotConnected(ConnectionState),
    /// The connection was lost while the command was waiting for its answer.
    #[error("connection lost while waiting for the answer")]
    Disconnected,
    /// No answer after all attempts.
    #[error("no answer after {attempts} attempts")]
    Timeout {
        /// Packets sent.
        attempts: u32,
    },
    /// Only some parts of a multi-part answer arrived before the last timeout.
    #[error("incomplete multi-part answer ({received} of {total} parts)")]
    IncompleteAnswer {
        /// Parts received.
        received: usize,
        /// Parts announced.
        total: usize,
    },
    /// The command does not fit into one packet.
    #[error("command too long ({len} bytes, max {max})")]
    CommandTooLong {
        /// Command length in bytes.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// All 256 sequence numbers are waiting for answers.
    #[error("too many commands in flight")]
    TooManyInFlight,
    /// [`Client::close`] was called or the client is being dropped.
    #[error("client closed")]
    Closed,
}

/// Result alias for client operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Connection state, observable through [`Client::state`] and [`Client::watch_state`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionState {
    /// Logged in.
    Connected,
    /// Lost; the client is reconnecting unless the reason is [`DisconnectReason::WrongPassword`]
    /// or [`ClientConfig::reconnect`] is off.
    Disconnected(DisconnectReason),
    /// Closed by [`Client::close`] or drop. Terminal.
    Closed,
}

/// Why the connection was lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisconnectReason {
    /// Nothing was received for [`ClientConfig::dead_timeout`] although answers were expected.
    ServerTimeout,
    /// A re-login got no answer (server down or RCon disabled). Still retrying.
    NoAnswer,
    /// A re-login was refused: the password changed. Terminal: the client stops reconnecting.
    WrongPassword,
    /// Socket error (text of the error).
    Io(String),
}

/// A server message (packet type `0x02`), delivered once even if the server resent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerMessage {
    /// The server's sequence number (wraps at 256; not unique over time).
    pub seq: u8,
    /// Message text; parse it with [`crate::messages::parse`].
    pub text: String,
}

/// The RCon password; never printed.
#[derive(Clone)]
struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A command waiting for its answer.
struct Pending {
    /// Unique per command (sequence numbers are reused).
    id: u64,
    tx: Option<oneshot::Sender<Result<String>>>,
    /// Multi-part answer parts; empty until the first part arrives.
    parts: Vec<Option<Vec<u8>>>,
}

/// Per-connection mutable state.
struct Conn {
    socket: Option<Arc<UdpSocket>>,
    next_seq: u8,
    next_id: u64,
    pending: HashMap<u8, Pending>,
    /// Last time a command (or keep-alive) was sent.
    last_tx: Instant,
    /// Last keep-alive sent.
    last_keepalive: Instant,
    /// Set when a command is sent while nothing is outstanding, cleared by any received packet.
    awaiting_since: Option<Instant>,
}

impl Conn {
    fn alloc_seq(&mut self) -> Option<u8> {
        for _ in 0..=u8::MAX {
            let seq = self.next_seq;
            self.next_seq = self.next_seq.wrapping_add(1);
            if !self.pending.contains_key(&seq) {
                return Some(seq);
            }
        }
        None
    }

    fn note_sent(&mut self) {
        let now = Instant::now();
        self.last_tx = now;
        self.awaiting_since.get_or_insert(now);
    }

    fn fail_all(&mut self) {
        for (_, mut p) in self.pending.drain() {
            if let Some(tx) = p.tx.take() {
                let _ = tx.send(Err(Error::Disconnected));
            }
        }
    }
}

struct Shared {
    addr: SocketAddr,
    password: Password,
    config: ClientConfig,
    state_tx: watch::Sender<ConnectionState>,
    messages_tx: broadcast::Sender<ServerMessage>,
    /// Subscribed before login so the first [`Client::subscribe_messages`] sees every message.
    first_rx: Mutex<Option<broadcast::Receiver<ServerMessage>>>,
    conn: Mutex<Conn>,
    cancel: CancellationToken,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Cancels the background task when the last [`Client`] clone is dropped.
struct Owner {
    cancel: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Handle to a BattlEye RCon connection. Cheap to clone; all clones share one connection.
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    owner: Arc<Owner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("addr", &self.shared.addr)
            .field("state", &*self.shared.state_tx.borrow())
            .finish_non_exhaustive()
    }
}

/// How a session ended.
enum SessionEnd {
    Cancelled,
    Dead,
    Io(std::io::Error),
}

/// Login outcome: the logged-in socket and server messages that arrived during the login.
type LoginOk = (Arc<UdpSocket>, Vec<(u8, String)>);

impl Client {
    /// Logs in to the RCon server at `addr` and starts the background task.
    ///
    /// Fails with [`Error::WrongPassword`] (not retried) or [`Error::NoAnswer`] (after
    /// [`ClientConfig::login_attempts`]). Must be called inside a tokio runtime.
    pub async fn connect(
        addr: SocketAddr,
        password: impl Into<String>,
        config: ClientConfig,
    ) -> Result<Client> {
        let password = Password(password.into());
        let (messages_tx, first_rx) = broadcast::channel(config.message_capacity.max(1));
        let login = login(addr, &password, &config).await?;
        let (state_tx, _) = watch::channel(ConnectionState::Connected);
        let cancel = CancellationToken::new();
        let now = Instant::now();
        let shared = Arc::new(Shared {
            addr,
            password,
            config,
            state_tx,
            messages_tx,
            first_rx: Mutex::new(Some(first_rx)),
            conn: Mutex::new(Conn {
                // Set before the task starts so `command` works as soon as `connect` returns.
                socket: Some(Arc::clone(&login.0)),
                next_seq: 0,
                next_id: 0,
                pending: HashMap::new(),
                last_tx: now,
                last_keepalive: now,
                awaiting_since: None,
            }),
            cancel: cancel.clone(),
        });
        info!(server = %addr, "BattlEye RCon logged in");
        let span = info_span!("battleye_client", server = %addr);
        let task = tokio::spawn(supervise(Arc::clone(&shared), login).instrument(span));
        Ok(Client {
            shared,
            owner: Arc::new(Owner {
                cancel,
                task: Mutex::new(Some(task)),
            }),
        })
    }

    /// The server address.
    pub fn server_addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// The local address of the current socket (`None` while disconnected). The server shows it
    /// in `RCon admin #N (ip:port) logged in`.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        let socket = lock(&self.shared.conn).socket.clone();
        socket.and_then(|s| s.local_addr().ok())
    }

    /// The current connection state.
    pub fn state(&self) -> ConnectionState {
        self.shared.state_tx.borrow().clone()
    }

    /// A watch receiver of the connection state.
    pub fn watch_state(&self) -> watch::Receiver<ConnectionState> {
        self.shared.state_tx.subscribe()
    }

    /// Receives server messages (acknowledged and de-duplicated by the client).
    ///
    /// The first call returns a receiver created before the login, so it also sees the
    /// messages sent right after it (our own `RCon admin #N ... logged in`); later calls see
    /// messages from the time of the call on.
    pub fn subscribe_messages(&self) -> broadcast::Receiver<ServerMessage> {
        lock(&self.shared.first_rx)
            .take()
            .unwrap_or_else(|| self.shared.messages_tx.subscribe())
    }

    /// Sends a command and waits for its (possibly multi-part) answer.
    ///
    /// Resends the packet with the same sequence number after [`ClientConfig::command_timeout`],
    /// up to [`ClientConfig::command_attempts`] packets. Note that a resent command may be
    /// executed twice by the server if only the answer was lost.
    pub async fn command(&self, text: &str) -> Result<String> {
        self.shared.command(text).await
    }

    /// `players`, parsed.
    pub async fn players(&self) -> Result<PlayerList> {
        Ok(parse_players(&self.command("players").await?))
    }

    /// `bans`, parsed.
    pub async fn bans(&self) -> Result<BanList> {
        Ok(parse_bans(&self.command("bans").await?))
    }

    /// `admins`, parsed.
    pub async fn admins(&self) -> Result<AdminList> {
        Ok(parse_admins(&self.command("admins").await?))
    }

    /// Stops the background task (pending commands fail with [`Error::Disconnected`]) and waits
    /// for it. The state becomes [`ConnectionState::Closed`].
    pub async fn close(&self) {
        self.shared.cancel.cancel();
        let task = lock(&self.owner.task).take();
        if let Some(task) = task
            && let Err(e) = task.await
        {
            warn!(error = %e, "BattlEye client task failed");
        }
        self.shared.state_tx.send_replace(ConnectionState::Closed);
    }
}

/// Removes a pending command when its future finishes or is dropped.
struct PendingGuard<'a> {
    shared: &'a Shared,
    seq: u8,
    id: u64,
}

impl PendingGuard<'_> {
    /// Removes the entry; returns `(received, total)` if parts of a multi-part answer arrived.
    fn take_partial(&self) -> Option<(usize, usize)> {
        let mut conn = lock(&self.shared.conn);
        if conn.pending.get(&self.seq).is_some_and(|p| p.id == self.id) {
            let p = conn.pending.remove(&self.seq)?;
            if !p.parts.is_empty() {
                let got = p.parts.iter().filter(|x| x.is_some()).count();
                return Some((got, p.parts.len()));
            }
        }
        None
    }
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        let mut conn = lock(&self.shared.conn);
        if conn.pending.get(&self.seq).is_some_and(|p| p.id == self.id) {
            conn.pending.remove(&self.seq);
        }
    }
}

fn is_refused(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::ConnectionRefused
}

impl Shared {
    async fn command(&self, text: &str) -> Result<String> {
        let max = MAX_PACKET_SIZE - HEADER_LEN - 2;
        if text.len() > max {
            return Err(Error::CommandTooLong {
                len: text.len(),
                max,
            });
        }
        if self.cancel.is_cancelled() {
            return Err(Error::Closed);
        }
        let (socket, seq, id, mut rx) = {
            let mut conn = lock(&self.conn);
            let Some(socket) = conn.socket.clone() else {
                return Err(Error::NotConnected(self.state_tx.borrow().clone()));
            };
            let seq = conn.alloc_seq().ok_or(Error::TooManyInFlight)?;
            let id = conn.next_id;
            conn.next_id += 1;
            let (tx, rx) = oneshot::channel();
            conn.pending.insert(
                seq,
                Pending {
                    id,
                    tx: Some(tx),
                    parts: Vec::new(),
                },
            );
            (socket, seq, id, rx)
        };
        let guard = PendingGuard {
            shared: self,
            seq,
            id,
        };
        let packet = ClientPacket::Command {
            seq,
            command: text.to_owned(),
        }
        .encode();
        let attempts = self.config.command_attempts.max(1);
        for attempt in 1..=attempts {
            match socket.send(&packet).await {
                Ok(_) => {}
                Err(e) if is_refused(&e) => debug!(seq, "send refused (server port closed)"),
                Err(e) => return Err(Error::Io(e)),
            }
            lock(&self.conn).note_sent();
            match tokio::time::timeout(self.config.command_timeout, &mut rx).await {
                Ok(Ok(result)) => return result,
                Ok(Err(_)) => return Err(Error::Disconnected),
                Err(_) => debug!(seq, attempt, "command answer timed out"),
            }
        }
        match guard.take_partial() {
            Some((received, total)) => Err(Error::IncompleteAnswer { received, total }),
            None => Err(Error::Timeout { attempts }),
        }
    }

    fn set_state(&self, state: ConnectionState) {
        self.state_tx.send_replace(state);
    }

    fn start_session(&self, socket: Arc<UdpSocket>) {
        let mut conn = lock(&self.conn);
        let now = Instant::now();
        conn.socket = Some(socket);
        conn.last_tx = now;
        conn.last_keepalive = now;
        conn.awaiting_since = None;
    }

    fn end_session(&self) {
        let mut conn = lock(&self.conn);
        conn.socket = None;
        conn.awaiting_since = None;
        conn.fail_all();
    }

    /// Handles one datagram from the server.
    async fn on_datagram(&self, socket: &UdpSocket, data: &[u8], dedup: &mut Dedup) {
        let packet = match ServerPacket::decode(data) {
            Ok(p) => p,
            Err(e) => {
                debug!(error = %e, len = data.len(), "ignoring malformed datagram");
                return;
            }
        };
        if let Some((seq, text)) = self.on_packet(packet) {
            send_ack(socket, seq).await;
            self.deliver(dedup, seq, text);
        }
    }

    /// Applies a decoded packet; returns a server message to acknowledge and deliver.
    fn on_packet(&self, packet: ServerPacket) -> Option<(u8, String)> {
        let mut conn = lock(&self.conn);
        conn.awaiting_since = None;
        match packet {
            ServerPacket::LoginResult { .. } => {}
            ServerPacket::CommandResponse { seq, text } => {
                if let Some(mut p) = conn.pending.remove(&seq)
                    && let Some(tx) = p.tx.take()
                {
                    let _ = tx.send(Ok(text));
                }
            }
            ServerPacket::CommandPart {
                seq,
                total,
                index,
                payload,
            } => {
                let p = conn.pending.get_mut(&seq)?;
                let total = usize::from(total);
                if p.parts.len() != total {
                    // First part, or the answer changed size (command re-executed on resend).
                    p.parts = vec![None; total];
                }
                if let Some(slot) = p.parts.get_mut(usize::from(index)) {
                    *slot = Some(payload);
                }
                if p.parts.iter().all(Option::is_some)
                    && let Some(mut p) = conn.pending.remove(&seq)
                {
                    let bytes: Vec<u8> = p.parts.drain(..).flatten().flatten().collect();
                    if let Some(tx) = p.tx.take() {
                        let _ = tx.send(Ok(String::from_utf8_lossy(&bytes).into_owned()));
                    }
                }
            }
            ServerPacket::Message { seq, text } => return Some((seq, text)),
        }
        None
    }

    fn deliver(&self, dedup: &mut Dedup, seq: u8, text: String) {
        if dedup.is_new(seq, &text) {
            // No subscriber is not an error: messages are simply not kept.
            let _ = self.messages_tx.send(ServerMessage { seq, text });
        } else {
            debug!(seq, "duplicate server message dropped");
        }
    }

    /// Periodic work: keep-alives, probes and dead-server detection.
    async fn housekeeping(&self, socket: &UdpSocket) -> Option<SessionEnd> {
        let now = Instant::now();
        let cfg = &self.config;
        let packet = {
            let mut conn = lock(&self.conn);
            if let Some(since) = conn.awaiting_since
                && now.duration_since(since) >= cfg.dead_timeout
            {
                return Some(SessionEnd::Dead);
            }
            let idle = now.duration_since(conn.last_tx) >= cfg.keepalive_interval;
            let probe = conn
                .awaiting_since
                .is_some_and(|since| now.duration_since(since) >= cfg.command_timeout)
                && now.duration_since(conn.last_keepalive) >= cfg.command_timeout;
            if !(idle || probe) {
                return None;
            }
            // Keep-alive answers are not awaited individually: any received packet counts.
            let seq = conn.alloc_seq()?;
            conn.note_sent();
            conn.last_keepalive = now;
            debug!(seq, probe, "sending keep-alive");
            ClientPacket::Command {
                seq,
                command: String::new(),
            }
            .encode()
        };
        match socket.send(&packet).await {
            Ok(_) => None,
            Err(e) if is_refused(&e) => None,
            Err(e) => Some(SessionEnd::Io(e)),
        }
    }

    async fn run_session(&self, socket: &UdpSocket, early: Vec<(u8, String)>) -> SessionEnd {
        let cfg = &self.config;
        let mut dedup = Dedup::new(cfg.dedup_window);
        for (seq, text) in early {
            self.deliver(&mut dedup, seq, text);
        }
        let tick = (cfg.keepalive_interval / 2)
            .min(cfg.command_timeout / 2)
            .min(cfg.dead_timeout / 4)
            .max(Duration::from_millis(5));
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut buf = vec![0u8; MAX_PACKET_SIZE + 1];
        loop {
            tokio::select! {
                () = self.cancel.cancelled() => return SessionEnd::Cancelled,
                received = socket.recv(&mut buf) => match received {
                    Ok(n) => {
                        let data = buf.get(..n).unwrap_or_default();
                        self.on_datagram(socket, data, &mut dedup).await;
                    }
                    // ICMP port unreachable: the server is down; the dead timeout decides.
                    Err(e) if is_refused(&e) => {}
                    Err(e) => return SessionEnd::Io(e),
                },
                _ = ticker.tick() => {
                    if let Some(end) = self.housekeeping(socket).await {
                        return end;
                    }
                }
            }
        }
    }
}

async fn send_ack(socket: &UdpSocket, seq: u8) {
    let ack = ClientPacket::MessageAck { seq }.encode();
    if let Err(e) = socket.send(&ack).await {
        debug!(seq, error = %e, "failed to acknowledge server message");
    }
}

/// Remembers recently delivered server messages to drop the server's resends.
struct Dedup {
    window: Duration,
    seen: VecDeque<(Instant, u8, u64)>,
}

impl Dedup {
    const MAX_ENTRIES: usize = 1024;

    fn new(window: Duration) -> Self {
        Self {
            window,
            seen: VecDeque::new(),
        }
    }

    fn is_new(&mut self, seq: u8, text: &str) -> bool {
        let now = Instant::now();
        while let Some(&(t, _, _)) = self.seen.front() {
            if now.duration_since(t) > self.window || self.seen.len() >= Self::MAX_ENTRIES {
                self.seen.pop_front();
            } else {
                break;
            }
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        text.hash(&mut h);
        let hash = h.finish();
        if self.seen.iter().any(|&(_, s, hh)| s == seq && hh == hash) {
            return false;
        }
        self.seen.push_back((now, seq, hash));
        true
    }
}

/// Binds a fresh socket, connects it to `addr` and logs in.
async fn login(addr: SocketAddr, password: &Password, config: &ClientConfig) -> Result<LoginOk> {
    let local: SocketAddr = if addr.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(addr).await?;
    let packet = ClientPacket::Login {
        password: password.0.clone(),
    }
    .encode();
    let mut buf = vec![0u8; MAX_PACKET_SIZE + 1];
    let mut early = Vec::new();
    for attempt in 1..=config.login_attempts.max(1) {
        debug!(server = %addr, attempt, "sending login");
        match socket.send(&packet).await {
            Ok(_) => {}
            Err(e) if is_refused(&e) => continue,
            Err(e) => return Err(Error::Io(e)),
        }
        let deadline = Instant::now() + config.login_timeout;
        loop {
            let n = match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
                Err(_elapsed) => break,
                Ok(Err(e)) if is_refused(&e) => {
                    // Nothing listens on the port; waiting longer will not help this attempt.
                    break;
                }
                Ok(Err(e)) => return Err(Error::Io(e)),
                Ok(Ok(n)) => n,
            };
            match ServerPacket::decode(buf.get(..n).unwrap_or_default()) {
                Ok(ServerPacket::LoginResult { ok: true }) => return Ok((Arc::new(socket), early)),
                Ok(ServerPacket::LoginResult { ok: false }) => return Err(Error::WrongPassword),
                Ok(ServerPacket::Message { seq, text }) => {
                    // Only logged-in clients get messages; acknowledge or be dropped.
                    send_ack(&socket, seq).await;
                    early.push((seq, text));
                }
                Ok(other) => debug!(packet = ?other, "ignoring packet during login"),
                Err(e) => debug!(error = %e, "ignoring malformed datagram during login"),
            }
        }
    }
    Err(Error::NoAnswer)
}

/// The background task: runs sessions and reconnects between them.
async fn supervise(shared: Arc<Shared>, first: LoginOk) {
    let (mut socket, mut early) = first;
    let cfg = shared.config.clone();
    loop {
        shared.start_session(Arc::clone(&socket));
        shared.set_state(ConnectionState::Connected);
        let end = shared
            .run_session(&socket, std::mem::take(&mut early))
            .await;
        // State first, so a command failing with `NotConnected` reports the new state.
        let reason = match end {
            SessionEnd::Cancelled => {
                shared.set_state(ConnectionState::Closed);
                shared.end_session();
                return;
            }
            SessionEnd::Dead => DisconnectReason::ServerTimeout,
            SessionEnd::Io(e) => DisconnectReason::Io(e.to_string()),
        };
        warn!(?reason, "BattlEye RCon connection lost");
        shared.set_state(ConnectionState::Disconnected(reason));
        shared.end_session();
        if !cfg.reconnect {
            return;
        }
        let mut backoff = cfg.reconnect_min_backoff;
        loop {
            tokio::select! {
                () = shared.cancel.cancelled() => {
                    shared.set_state(ConnectionState::Closed);
                    return;
                }
                () = tokio::time::sleep(backoff) => {}
            }
            let attempt = tokio::select! {
                () = shared.cancel.cancelled() => {
                    shared.set_state(ConnectionState::Closed);
                    return;
                }
                r = login(shared.addr, &shared.password, &cfg) => r,
            };
            match attempt {
                Ok((s, msgs)) => {
                    info!("BattlEye RCon reconnected");
                    socket = s;
                    early = msgs;
                    break;
                }
                Err(Error::WrongPassword) => {
                    warn!("BattlEye RCon password refused on reconnect; giving up");
                    shared.set_state(ConnectionState::Disconnected(
                        DisconnectReason::WrongPassword,
                    ));
                    return;
                }
                Err(Error::NoAnswer) => {
                    debug!(?backoff, "reconnect: no answer");
                    shared.set_state(ConnectionState::Disconnected(DisconnectReason::NoAnswer));
                }
                Err(e) => {
                    debug!(?backoff, error = %e, "reconnect failed");
                    shared.set_state(ConnectionState::Disconnected(DisconnectReason::Io(
                        e.to_string(),
                    )));
                }
            }
            backoff = (backoff * 2).min(cfg.reconnect_max_backoff);
        }
    }
}
