//! The `languard-agent` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::AgentConfig;

/// Languard agent: supervises the game servers of this host for a Languard controller.
#[derive(Debug, Parser, Serialize)]
#[command(version, about)]
struct Cli {
    /// TOML configuration file.
    #[arg(long, short)]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// The controller's URL.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    controller_url: Option<String>,
    /// The node token.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    node_token: Option<String>,
    /// A file holding the node token.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    node_token_file: Option<PathBuf>,
    /// The state directory.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    state_dir: Option<PathBuf>,
    /// Seconds between SIGTERM and SIGKILL when stopping a server.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_timeout_seconds: Option<u64>,
    /// Address of the Prometheus endpoint, e.g. 127.0.0.1:9465.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// Log format: text or json.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    log_format: Option<String>,
}

/// Installs the tracing subscriber (stderr, `RUST_LOG` or info).
pub fn init_tracing(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sea_orm_migration=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let cfg = match AgentConfig::load(cli.config.as_deref(), &cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("languard-agent: {e}");
            return ExitCode::from(2);
        }
    };
    init_tracing(&cfg.log_format);
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("languard-agent: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let shutdown = CancellationToken::new();
        let signals = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            signals.cancel();
        });
        match crate::run(cfg, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "agent failed");
                ExitCode::FAILURE
            }
        }
    })
}

/// Completes on SIGINT or SIGTERM.
pub async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
