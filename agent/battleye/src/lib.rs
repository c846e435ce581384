//! BattlEye RCon for Arma 3 dedicated servers: wire codec, async client, parsers for command
//! answers and server messages, and a loopback RCon server used as a test double.
//!
//! # The protocol in short
//!
//! RCon runs over UDP. Every datagram, in both directions, is `'B' 'E'`, a CRC32 (IEEE,
//! little-endian) of everything that follows it, `0xFF`, then a payload whose first byte is the
//! packet type:
//!
//! | type | client → server | server → client |
//! |------|-----------------|-----------------|
//! | `0x00` | login: password | login result: `0x01` ok / `0x00` wrong password |
//! | `0x01` | command: seq + text (empty text = keep-alive) | answer: seq + text, or one part of a long answer: seq `0x00` total index + bytes |
//! | `0x02` | acknowledgement: seq | server message: seq + text |
//!
//! Sequence numbers are one byte and wrap 255 → 0. No answer to a login means RCon is disabled.
//! The server resends an unacknowledged message up to 5 times within 10 s (so clients see
//! duplicates) and drops a client that sends no command for 45 s. Text is UTF-8 in practice and
//! is decoded lossily.
//!
//! # Modules
//!
//! - [`packet`]: [`ClientPacket`] / [`ServerPacket`] `encode`/`decode`, typed [`PacketError`].
//! - [`client`]: [`Client`], a cheap-to-clone handle: [`Client::command`],
//!   [`Client::subscribe_messages`], [`Client::state`] / [`Client::watch_state`],
//!   [`Client::close`]. One background task per client receives, acknowledges and
//!   de-duplicates server messages, sends keep-alives, detects a dead server and **reconnects
//!   automatically** (fresh socket, re-login, exponential backoff) unless the password is refused.
//! - [`players`]: parsers for `players`, `bans`, `admins`, `missions` (junk rows are counted,
//!   never fatal).
//! - [`messages`]: [`messages::parse`] turns a server message into a typed [`Message`].
//! - [`server`]: a small RCon server bound to loopback only, answering through a
//!   [`server::CommandHandler`], with packet-loss hooks. It is always compiled (no cargo
//!   feature): it has no extra dependencies, the fake Arma 3 server needs it, and keeping it
//!   unconditional lets a plain `cargo test -p languard-battleye` and a workspace test run cover
//!   the client against it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), languard_battleye::client::Error> {
//! use languard_battleye::{Client, ClientConfig, messages};
//! let client = Client::connect("127.0.0.1:2306".parse().unwrap(), "secret", ClientConfig::default()).await?;
//! let mut events = client.subscribe_messages();
//! let players = client.players().await?;
//! println!("{} players", players.players.len());
//! while let Ok(msg) = events.recv().await {
//!     println!("{:?}", messages::parse(&msg.text));
//! }
//! # Ok(()) }
//! ```

pub mod client;
pub mod messages;
pub mod packet;
pub mod players;
pub mod server;

pub use client::{Client, ClientConfig, ConnectionState, DisconnectReason, Error, ServerMessage};
pub use messages::{ChatTarget, Message};
pub use packet::{ClientPacket, PacketError, ServerPacket};
pub use players::{
    AdminList, AdminRow, BanDuration, BanList, BanRow, PlayerList, PlayerRow, parse_admins,
    parse_bans, parse_missions, parse_players,
};
