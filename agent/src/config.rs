//! Agent configuration, layered: defaults, TOML file, `LANGUARD_*` environment variables, CLI flags.
//! Validated before the agent does anything.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Everything the agent can be configured with.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    /// The controller's URL, `http://host:port` or `https://host:port`.
    pub controller_url: String,
    /// This node's token (from `NodeService.CreateNode`). Prefer `node_token_file`.
    pub node_token: String,
    /// A file holding the node token.
    pub node_token_file: Option<PathBuf>,
    /// Where the agent keeps its state: cached specs, sequence numbers, server logs.
    pub state_dir: PathBuf,
    /// Largest size of the on-disk event spool, bytes; when full, metrics are dropped first.
    pub spool_max_bytes: u64,
    /// How long a graceful stop waits after SIGTERM before SIGKILL, seconds.
    pub stop_timeout_seconds: u64,
    /// First delay before restarting a crashed server, milliseconds (doubles per crash in a row).
    pub restart_backoff_initial_ms: u64,
    /// Largest delay before restarting a crashed server, milliseconds.
    pub restart_backoff_max_ms: u64,
    /// Time zone of the servers' log timestamps: "local", "UTC" or an IANA name ("Europe/Berlin").
    pub log_time_zone: String,
    /// Flood guard: log lines per second per server above which lines are dropped and counted
    /// (0 = no limit). Never stops the game server.
    pub log_max_lines_per_sec: u32,
    /// Old `.rpt` files kept per server; older ones are deleted (0 = keep all).
    pub log_keep_files: usize,
    /// How often the node and its servers are sampled (CPU, memory, ...), seconds.
    pub metrics_interval_seconds: u64,
    /// How often each server's RCon `players` list is polled, seconds (joins and leaves arrive
    /// instantly from server messages; the poll reconciles).
    pub rcon_poll_interval_seconds: u64,
    /// PEM file of the CA that signed the controller's certificate (for https URLs).
    pub ca_cert: Option<PathBuf>,
    /// Client certificate (PEM) to present when the controller requires mutual TLS.
    pub client_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub client_key: Option<PathBuf>,
    /// Address of the agent's Prometheus endpoint (`/metrics`, `/healthz`), e.g.
    /// "127.0.0.1:9465"; unset: no endpoint. No authentication: keep it on loopback or a
    /// private network.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Stop every running game server gracefully when the agent shuts down. Off by default: game
    /// servers keep running through agent restarts and upgrades, and are re-attached.
    pub stop_servers_on_shutdown: bool,
    /// Log output: "text" or "json".
    pub log_format: String,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            controller_url: "http://127.0.0.1:50051".into(),
            node_token: String::new(),
            node_token_file: None,
            state_dir: PathBuf::from("languard-agent-state"),
            spool_max_bytes: 256 << 20,
            stop_timeout_seconds: 30,
            restart_backoff_initial_ms: 10_000,
            restart_backoff_max_ms: 300_000,
            log_time_zone: "local".into(),
            log_max_lines_per_sec: 20_000,
            log_keep_files: 20,
            metrics_interval_seconds: 10,
            rcon_poll_interval_seconds: 10,
            ca_cert: None,
            client_cert: None,
            client_key: None,
            metrics_listen: None,
            stop_servers_on_shutdown: false,
            log_format: "text".into(),
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The layers could not be read or merged.
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    /// A value is invalid.
    #[error("configuration: {field}: {reason}")]
    Invalid {
        /// The key.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field,
        reason: reason.into(),
    }
}

impl AgentConfig {
    /// Loads the layers: defaults, `file`, `LANGUARD_*` variables that are agent keys, `overrides`.
    pub fn load(file: Option<&Path>, overrides: &impl Serialize) -> Result<Self, ConfigError> {
        let known: Vec<String> = match serde_json::to_value(AgentConfig::default()) {
            Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
            _ => Vec::new(),
        };
        let mut figment = Figment::from(Serialized::defaults(AgentConfig::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(invalid(
                    "config",
                    format!("file {} does not exist", file.display()),
                ));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        figment = figment
            .merge(
                Env::prefixed("LANGUARD_")
                    .filter(move |k| known.iter().any(|n| k.as_str().eq_ignore_ascii_case(n))),
            )
            .merge(Serialized::defaults(overrides));
        let mut config: AgentConfig = figment.extract().map_err(Box::new)?;
        config.resolve_token()?;
        config.validate()?;
        Ok(config)
    }

    /// Reads `node_token_file` into `node_token` when the token is not given directly.
    pub fn resolve_token(&mut self) -> Result<(), ConfigError> {
        if self.node_token.is_empty()
            && let Some(path) = &self.node_token_file
        {
            let t = std::fs::read_to_string(path)
                .map_err(|e| invalid("node_token_file", format!("{}: {e}", path.display())))?;
            self.node_token = t.trim().to_owned();
        }
        Ok(())
    }

    /// Checks every value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.controller_url.starts_with("http://")
            || self.controller_url.starts_with("https://"))
        {
            return Err(invalid(
                "controller_url",
                "must start with http:// or https://",
            ));
        }
        if self.controller_url.parse::<http_uri::Uri>().is_err() {
            return Err(invalid("controller_url", "is not a valid URL"));
        }
        if self.node_token.is_empty() {
            return Err(invalid("node_token", "is required (or node_token_file)"));
        }
        if self
            .node_token
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(invalid("node_token", "must not contain whitespace"));
        }
        if self.state_dir.as_os_str().is_empty() {
            return Err(invalid("state_dir", "must not be empty"));
        }
        if self.spool_max_bytes < (4 << 20) {
            return Err(invalid("spool_max_bytes", "must be at least 4 MiB"));
        }
        if self.stop_timeout_seconds == 0 || self.stop_timeout_seconds > 3600 {
            return Err(invalid(
                "stop_timeout_seconds",
                "must be between 1 and 3600",
            ));
        }
        if self.restart_backoff_initial_ms == 0
            || self.restart_backoff_max_ms < self.restart_backoff_initial_ms
        {
            return Err(invalid(
                "restart_backoff_max_ms",
                "backoff must be positive and max >= initial",
            ));
        }
        if self
            .log_time_zone
            .parse::<languard_rpt::LogTimeZone>()
            .is_err()
        {
            return Err(invalid(
                "log_time_zone",
                format!("unknown time zone {:?}", self.log_time_zone),
            ));
        }
        if self.metrics_interval_seconds == 0 || self.metrics_interval_seconds > 3600 {
            return Err(invalid(
                "metrics_interval_seconds",
                "must be between 1 and 3600",
            ));
        }
        if self.rcon_poll_interval_seconds == 0 || self.rcon_poll_interval_seconds > 3600 {
            return Err(invalid(
                "rcon_poll_interval_seconds",
                "must be between 1 and 3600",
            ));
        }
        if let Some(ca) = &self.ca_cert
            && !ca.is_file()
        {
            return Err(invalid(
                "ca_cert",
                format!("{} is not a readable file", ca.display()),
            ));
        }
        match (&self.client_cert, &self.client_key) {
            (Some(c), Some(k)) => {
                for (field, p) in [("client_cert", c), ("client_key", k)] {
                    if !p.is_file() {
                        return Err(invalid(
                            field,
                            format!("{} is not a readable file", p.display()),
                        ));
                    }
                }
            }
            (None, None) => {}
            _ => {
                return Err(invalid(
                    "client_cert",
                    "client_cert and client_key must be set together",
                ));
            }
        }
        if self.log_format != "text" && self.log_format != "json" {
            return Err(invalid("log_format", "must be \"text\" or \"json\""));
        }
        Ok(())
    }
}

/// URI parsing for validation.
mod http_uri {
    pub use tonic::codegen::http::Uri;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_required_and_url_checked() {
        let c = AgentConfig::default();
        assert!(
            c.validate()
                .expect_err("no token")
                .to_string()
                .contains("node_token")
        );
        let c = AgentConfig {
            node_token: "lgn_x".into(),
            controller_url: "ftp://x".into(),
            ..AgentConfig::default()
        };
        assert!(
            c.validate()
                .expect_err("url")
                .to_string()
                .contains("controller_url")
        );
        let c = AgentConfig {
            node_token: "lgn_x".into(),
            ..AgentConfig::default()
        };
        assert!(c.validate().is_ok());
    }

    #[test]
    fn the_shipped_example_parses_and_states_the_defaults() {
        #[derive(Serialize)]
        struct Over {
            node_token: &'static str,
        }
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/agent.example.toml");
        let c = AgentConfig::load(
            Some(&path),
            &Over {
                node_token: "lgn_x",
            },
        )
        .expect("example config");
        assert_eq!(
            c,
            AgentConfig {
                node_token: "lgn_x".into(),
                ..AgentConfig::default()
            }
        );
    }

    #[test]
    fn token_file_is_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("tok");
        std::fs::write(&p, "lgn_abc\n").expect("write");
        let mut c = AgentConfig {
            node_token_file: Some(p),
            ..AgentConfig::default()
        };
        c.resolve_token().expect("read");
        assert_eq!(c.node_token, "lgn_abc");
    }
}
