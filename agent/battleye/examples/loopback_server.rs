//! Runs the crate's loopback RCon server for manual checks with third-party clients.
//!
//! `cargo run -p languard-battleye --example loopback_server -- 2306 secret`
//! answers `players` with a two-player table, echoes other commands and broadcasts a chat line
//! every 2 seconds.

use std::time::Duration;

use languard_battleye::server::{Server, ServerConfig};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().as_deref().unwrap_or("2306").parse()?;
    let password = args.next().unwrap_or_else(|| "secret".to_owned());
    let config = ServerConfig {
        bind: (std::net::Ipv4Addr::LOCALHOST, port).into(),
        multipart_threshold: 64,
        ..ServerConfig::new(password)
    };
    let server = Server::bind(config, |cmd: &str| match cmd {
        "players" => "Players on server:\n[#] [IP Address]:[Port] [Ping] [GUID] [Name]\n\
            --------------------------------------------------\n\
            0   127.0.0.1:2304     40   2c65319280ac51b220aef667552a7f06(OK) Максим\n\
            1   127.0.0.1:2305     -1   73c5e50a7860475f49db400000000000(?)  Max (Lobby)\n\
            (2 players in total)"
            .to_owned(),
        other => format!("echo: {other}"),
    })
    .await?;
    println!("listening on {}", server.local_addr());
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        server.broadcast("(Global) bot: tick");
    }
}
