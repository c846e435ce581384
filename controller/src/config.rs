//! Controller configuration, layered: built-in defaults, then a TOML file, then `LANGUARD_*`
//! environment variables, then command-line flags. Validated before anything binds or opens.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Everything the controller can be configured with. Every field has a default.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address of the one listener for gRPC, grpc-web, `/ws` and `/healthz`.
    pub listen: SocketAddr,
    /// Directory for the SQLite database, the JWT secret and the initial admin password.
    pub data_dir: PathBuf,
    /// Database URL; empty means SQLite at `<data_dir>/languard.db`. `postgres://...` for PostgreSQL.
    pub database_url: String,
    /// HS256 secret for access tokens; empty means generated once and kept in `<data_dir>/jwt-secret`.
    pub jwt_secret: String,
    /// Lifetime of access tokens, seconds.
    pub access_token_ttl_seconds: u64,
    /// Lifetime of refresh tokens, seconds.
    pub refresh_token_ttl_seconds: u64,
    /// Login attempts allowed per minute, per username and per client address.
    pub login_attempts_per_minute: u32,
    /// Origins allowed to call grpc-web from a browser; empty allows none (same-origin still works).
    pub cors_origins: Vec<String>,
    /// TLS certificate chain (PEM); TLS is on when both this and `tls_key` are set.
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// CA bundle (PEM) for mutual TLS: when set, every client (agents, people, scripts) must
    /// present a certificate signed by it. Needs `tls_cert` and `tls_key`.
    pub tls_client_ca: Option<PathBuf>,
    /// Directory of declared game adapters (`*.toml`), loaded at start-up; a broken file is
    /// reported and skipped. Unset: only the built-in adapters (arma3).
    pub adapters_dir: Option<PathBuf>,
    /// How often agents send heartbeats, seconds (told to each agent when it connects).
    pub heartbeat_interval_seconds: u32,
    /// A node with no heartbeat for this long is marked offline, seconds.
    pub node_offline_after_seconds: u64,
    /// How long a power RPC waits for the agent's answer, seconds.
    pub command_timeout_seconds: u64,
    /// Grace period for open streams and the database writer at shutdown, seconds.
    pub shutdown_grace_seconds: u64,
    /// Capacity of the live event hub; a subscriber further behind than this is told what it missed.
    pub hub_capacity: usize,
    /// A WebSocket client that cannot take a message for this long is disconnected, seconds.
    pub ws_send_timeout_seconds: u64,
    /// Log output: "text" or "json".
    pub log_format: String,
    /// Log entries older than this many days are deleted by the retention job.
    pub log_retention_days: u32,
    /// When the log retention job runs: a cron expression (5 fields, or 6 with seconds first).
    pub log_retention_schedule: String,
    /// The IANA time zone of every retention schedule ("UTC", "Europe/Berlin", ...): logs, metrics
    /// and events. (The name predates the other jobs.)
    pub log_retention_time_zone: String,
    /// Metrics samples older than this many days are deleted by the metrics retention job.
    pub metrics_retention_days: u32,
    /// When the metrics retention job runs (cron, in `log_retention_time_zone`).
    pub metrics_retention_schedule: String,
    /// History events older than this many days are deleted by the event retention job.
    pub event_retention_days: u32,
    /// When the event retention job runs (cron, in `log_retention_time_zone`).
    pub event_retention_schedule: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            data_dir: PathBuf::from("languard-data"),
            database_url: String::new(),
            jwt_secret: String::new(),
            access_token_ttl_seconds: 15 * 60,
            refresh_token_ttl_seconds: 30 * 24 * 3600,
            login_attempts_per_minute: 10,
            cors_origins: Vec::new(),
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            adapters_dir: None,
            heartbeat_interval_seconds: 10,
            node_offline_after_seconds: 30,
            command_timeout_seconds: 90,
            shutdown_grace_seconds: 10,
            hub_capacity: 4096,
            ws_send_timeout_seconds: 10,
            log_format: "text".into(),
            log_retention_days: 7,
            log_retention_schedule: "0 3 * * *".into(),
            log_retention_time_zone: "UTC".into(),
            metrics_retention_days: 1,
            metrics_retention_schedule: "0 */6 * * *".into(),
            event_retention_days: 30,
            event_retention_schedule: "0 4 * * 0".into(),
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The layers could not be read or merged.
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    /// A value is out of range or inconsistent.
    #[error("configuration: {field}: {reason}")]
    Invalid {
        /// The offending key.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field,
        reason: reason.into(),
    }
}

impl Config {
    /// Loads the layers: defaults, `file` (if given), `LANGUARD_*` environment variables, `overrides`.
    /// Environment variables that are not controller keys (for example the agent's) are ignored.
    pub fn load(file: Option<&Path>, overrides: &impl Serialize) -> Result<Self, ConfigError> {
        let known: Vec<String> = match serde_json::to_value(Config::default()) {
            Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
            _ => Vec::new(),
        };
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
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
        let config: Config = figment.extract().map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every value that can be checked without side effects.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must not be empty"));
        }
        let known_scheme = ["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|p| self.database_url.starts_with(p));
        if !self.database_url.is_empty() && !known_scheme {
            return Err(invalid(
                "database_url",
                "must start with sqlite:, postgres:// or postgresql://",
            ));
        }
        if !self.jwt_secret.is_empty() && self.jwt_secret.len() < 32 {
            return Err(invalid("jwt_secret", "must be at least 32 characters"));
        }
        if self.access_token_ttl_seconds < 30 || self.access_token_ttl_seconds > 24 * 3600 {
            return Err(invalid(
                "access_token_ttl_seconds",
                "must be between 30 and 86400",
            ));
        }
        if self.refresh_token_ttl_seconds < self.access_token_ttl_seconds {
            return Err(invalid(
                "refresh_token_ttl_seconds",
                "must not be shorter than access_token_ttl_seconds",
            ));
        }
        if self.login_attempts_per_minute == 0 {
            return Err(invalid("login_attempts_per_minute", "must be at least 1"));
        }
        for origin in &self.cors_origins {
            if http::HeaderValue::from_str(origin).is_err()
                || !(origin.starts_with("http://") || origin.starts_with("https://"))
            {
                return Err(invalid(
                    "cors_origins",
                    format!("{origin:?} is not an http(s) origin"),
                ));
            }
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => {
                for (field, path) in [("tls_cert", cert), ("tls_key", key)] {
                    if !path.is_file() {
                        return Err(invalid(
                            field,
                            format!("{} is not a readable file", path.display()),
                        ));
                    }
                }
            }
            (None, None) => {}
            _ => {
                return Err(invalid(
                    "tls_cert",
                    "tls_cert and tls_key must be set together",
                ));
            }
        }
        if let Some(ca) = &self.tls_client_ca {
            if self.tls_cert.is_none() {
                return Err(invalid(
                    "tls_client_ca",
                    "mutual TLS needs tls_cert and tls_key",
                ));
            }
            if !ca.is_file() {
                return Err(invalid(
                    "tls_client_ca",
                    format!("{} is not a readable file", ca.display()),
                ));
            }
        }
        if self.heartbeat_interval_seconds == 0 {
            return Err(invalid("heartbeat_interval_seconds", "must be at least 1"));
        }
        if self.node_offline_after_seconds <= u64::from(self.heartbeat_interval_seconds) {
            return Err(invalid(
                "node_offline_after_seconds",
                "must be longer than heartbeat_interval_seconds",
            ));
        }
        if self.command_timeout_seconds == 0 {
            return Err(invalid("command_timeout_seconds", "must be at least 1"));
        }
        if self.hub_capacity < 16 {
            return Err(invalid("hub_capacity", "must be at least 16"));
        }
        if self.ws_send_timeout_seconds == 0 {
            return Err(invalid("ws_send_timeout_seconds", "must be at least 1"));
        }
        if self.log_format != "text" && self.log_format != "json" {
            return Err(invalid("log_format", "must be \"text\" or \"json\""));
        }
        for (field, days, schedule) in [
            (
                ("log_retention_days", "log_retention_schedule"),
                self.log_retention_days,
                &self.log_retention_schedule,
            ),
            (
                ("metrics_retention_days", "metrics_retention_schedule"),
                self.metrics_retention_days,
                &self.metrics_retention_schedule,
            ),
            (
                ("event_retention_days", "event_retention_schedule"),
                self.event_retention_days,
                &self.event_retention_schedule,
            ),
        ] {
            if !(1..=36_500).contains(&days) {
                return Err(invalid(field.0, "must be between 1 and 36500"));
            }
            if let Err(e) = crate::jobs::retention::parse_schedule(schedule) {
                return Err(invalid(field.1, format!("not a cron expression: {e}")));
            }
        }
        if let Err(e) = crate::jobs::retention::parse_time_zone(&self.log_retention_time_zone) {
            return Err(invalid(
                "log_retention_time_zone",
                format!("not an IANA time zone: {e}"),
            ));
        }
        Ok(())
    }

    /// The database URL to connect to: the configured one or SQLite in the data dir.
    pub fn effective_database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("languard.db").display()
            )
        } else {
            self.database_url.clone()
        }
    }

    /// Whether TLS is configured.
    pub fn tls_enabled(&self) -> bool {
        self.tls_cert.is_some() && self.tls_key.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct NoOverrides {}

    #[test]
    fn defaults_are_valid() {
        assert!(Config::default().validate().is_ok());
    }

    #[test]
    fn file_then_overrides_layer_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:6000\"\nhub_capacity = 100\n").expect("write");
        #[derive(Serialize)]
        struct Over {
            hub_capacity: usize,
        }
        let c = Config::load(Some(&path), &Over { hub_capacity: 200 }).expect("load");
        assert_eq!(c.listen.port(), 6000);
        assert_eq!(c.hub_capacity, 200);
    }

    #[test]
    fn the_shipped_example_parses_and_states_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/controller.example.toml");
        let c = Config::load(Some(&path), &NoOverrides {}).expect("example config");
        assert_eq!(c, Config::default());
    }

    #[test]
    fn unknown_key_in_file_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "lisen = \"127.0.0.1:6000\"\n").expect("write");
        let err = Config::load(Some(&path), &NoOverrides {}).expect_err("typo must fail");
        assert!(err.to_string().contains("lisen"), "{err}");
    }

    #[test]
    fn invalid_values_name_the_field() {
        let c = Config {
            heartbeat_interval_seconds: 40,
            ..Config::default()
        };
        let err = c.validate().expect_err("offline <= heartbeat");
        assert!(err.to_string().contains("node_offline_after_seconds"));
        let c = Config {
            tls_cert: Some("/nonexistent".into()),
            ..Config::default()
        };
        assert!(
            c.validate()
                .expect_err("half tls")
                .to_string()
                .contains("tls_cert")
        );
        let c = Config {
            database_url: "mysql://x".into(),
            ..Config::default()
        };
        assert!(
            c.validate()
                .expect_err("mysql")
                .to_string()
                .contains("database_url")
        );
        for (c, field) in [
            (
                Config {
                    log_retention_days: 0,
                    ..Config::default()
                },
                "log_retention_days",
            ),
            (
                Config {
                    log_retention_schedule: "every night".into(),
                    ..Config::default()
                },
                "log_retention_schedule",
            ),
            (
                Config {
                    log_retention_time_zone: "Europe/Atlantis".into(),
                    ..Config::default()
                },
                "log_retention_time_zone",
            ),
            (
                Config {
                    metrics_retention_days: 0,
                    ..Config::default()
                },
                "metrics_retention_days",
            ),
            (
                Config {
                    metrics_retention_schedule: "0 */6 * *".into(),
                    ..Config::default()
                },
                "metrics_retention_schedule",
            ),
            (
                Config {
                    event_retention_days: 40_000,
                    ..Config::default()
                },
                "event_retention_days",
            ),
            (
                Config {
                    event_retention_schedule: "sundays".into(),
                    ..Config::default()
                },
                "event_retention_schedule",
            ),
        ] {
            let err = c.validate().expect_err(field).to_string();
            assert!(err.contains(field), "{err}");
        }
    }
}
