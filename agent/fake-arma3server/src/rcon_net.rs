//! The network side of RCon: the project's BattlEye RCon server (`languard_battleye::server`,
//! loopback UDP, password check, multi-part answers, server messages with resends) answering
//! through [`RconHandler`]. This is the only file that knows the transport.

use std::net::SocketAddr;
use std::time::Duration;

use languard_battleye::server::{
    CommandContext, CommandHandler, Server, ServerConfig, ServerError,
};
use tokio::sync::mpsc;

use crate::becfg::RconSettings;
use crate::rcon::{Admin, RconHandler};

/// Adapts [`RconHandler`] to the transport's handler trait.
struct Handler(RconHandler);

impl CommandHandler for Handler {
    fn handle(&self, ctx: &CommandContext, command: &str) -> String {
        // The transport tracks the logged-in admins; mirror them for `admins`.
        self.0.state().admins = ctx
            .server
            .admins()
            .into_iter()
            .map(|a| Admin {
                id: a.id,
                addr: a.addr,
            })
            .collect();
        match self.0.command(ctx.admin_id, command) {
            Some(answer) => answer,
            None => hang_forever(),
        }
    }
}

/// A hung server never answers: block this (the only runtime) thread until SIGKILL.
fn hang_forever() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// A bound RCon server, not yet wired to the message stream.
pub struct Bound {
    server: Server,
}

impl Bound {
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Broadcasts every server message from `messages` until the channel closes.
    pub async fn run(self, mut messages: mpsc::UnboundedReceiver<String>) {
        let handle = self.server.handle();
        while let Some(m) = messages.recv().await {
            handle.broadcast(m);
        }
        self.server.shutdown().await;
    }
}

/// Binds the RCon UDP port (loopback only) and starts answering commands through `handler`.
pub async fn bind(settings: &RconSettings, handler: RconHandler) -> Result<Bound, ServerError> {
    let mut config = ServerConfig::new(settings.password.clone());
    config.bind = SocketAddr::new(settings.ip, settings.port);
    let server = Server::bind(config, Handler(handler)).await?;
    Ok(Bound { server })
}
