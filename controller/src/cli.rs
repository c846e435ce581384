//! The `languard-controller` command line. Also the multi-call entry: invoked under the name
//! `arma3server_x64` (the demo links it so), the binary runs the Arma 3 test double instead.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::app::{App, RunOptions};
use crate::config::Config;

/// Languard controller: the centre of a fleet of Arma 3 servers.
#[derive(Debug, Parser, Serialize)]
#[command(version, about)]
struct Cli {
    /// TOML configuration file.
    #[arg(long, short)]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// Listen address for gRPC, grpc-web, /ws and /healthz.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<std::net::SocketAddr>,
    /// Data directory (SQLite database, secrets).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    data_dir: Option<PathBuf>,
    /// Database URL (sqlite:... or postgres://...).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    database_url: Option<String>,
    /// Log format: text or json.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    log_format: Option<String>,
    /// Seconds without heartbeat before a node is marked offline.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    node_offline_after_seconds: Option<u64>,
    /// Also run an agent for this host, registered automatically as node "local".
    #[arg(long)]
    #[serde(skip)]
    with_local_agent: bool,
    /// Register and start a demo server backed by the built-in Arma 3 test double (implies
    /// --with-local-agent).
    #[arg(long)]
    #[serde(skip)]
    demo: bool,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let argv0 = std::env::args_os().next().unwrap_or_default();
    let name = std::path::Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name.starts_with("arma3server") {
        let code = fake_arma3server::run(std::env::args_os().skip(1).collect());
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref(), &cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("languard-controller: {e}");
            return ExitCode::from(2);
        }
    };
    languard_agent::cli::init_tracing(&config.log_format);
    let opts = RunOptions {
        with_local_agent: cli.with_local_agent,
        demo: cli.demo,
    };
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("languard-controller: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let shutdown = CancellationToken::new();
        let app = match App::start(config, &opts, shutdown.clone()).await {
            Ok(app) => app,
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "start-up failed");
                eprintln!("languard-controller: {e:#}");
                return ExitCode::FAILURE;
            }
        };
        let signals = shutdown.clone();
        tokio::spawn(async move {
            languard_agent::cli::wait_for_signal().await;
            tracing::info!("shutdown requested");
            signals.cancel();
        });
        app.wait().await;
        ExitCode::SUCCESS
    })
}
