//! Game adapters. A [`GameAdapter`] owns everything game-specific: the command line and config
//! files of a server, where its log is and how to parse it, how to stop it gracefully and which
//! RCon protocol it speaks. The supervisor and the controller never match on a game type; they ask
//! the [`Registry`].
//!
//! Arma 3 is built in ([`arma3`]); other games are declared in TOML files ([`declared`]) that the
//! controller loads from its adapters directory and ships to agents inside each server's spec.

pub mod arma3;
pub mod check;
pub mod declared;
pub mod parse;
pub mod registry;
pub mod template;

use std::path::PathBuf;

use languard_proto::v1 as pb;
use languard_rpt::LogTimeZone;

pub use check::{PortUse, SpecError};
pub use parse::{LogParser, ParsedEntry};
pub use registry::Registry;

/// Why a spec cannot be run by an adapter, or an adapter definition is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AdapterError(pub String);

/// How to launch one server.
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    /// The executable.
    pub program: PathBuf,
    /// Arguments, one entry each (never a shell string).
    pub args: Vec<String>,
    /// Working directory.
    pub cwd: PathBuf,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Where the server's log files are; the agent writes the server's stdout and stderr there too.
    pub log_dir: PathBuf,
    /// File name of the stdout/stderr file: `{prefix}{local date}{suffix}`.
    pub stdout_prefix: String,
    /// See `stdout_prefix`.
    pub stdout_suffix: String,
}

/// Which log files to follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFiles {
    /// The directory (not searched recursively).
    pub dir: PathBuf,
    /// File-name patterns (`*` and `?`); the newest match is followed, a newer one is a rotation.
    pub patterns: Vec<String>,
}

/// One step of a graceful stop. SIGKILL follows the last step after the stop timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopStep {
    /// Send this RCon command (skipped when RCon is not connected).
    Rcon(String),
    /// Run this command (argv) and wait for it, bounded.
    Command(Vec<String>),
    /// Send this signal (a number from `libc`, e.g. 15 for SIGTERM) to the server's process group.
    Signal(i32),
}

/// RCon protocols the agent speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RconProtocol {
    /// BattlEye RCon over UDP.
    BattlEye,
}

/// Everything game-specific. Implementations are cheap to share (`Arc<dyn GameAdapter>`).
pub trait GameAdapter: Send + Sync + std::fmt::Debug {
    /// The adapter's name and capabilities, as `ListGameTypes` shows them.
    fn info(&self) -> pb::GameType;

    /// Fills in the adapter's defaults (e.g. the Arma 3 game port) before a spec is checked and
    /// stored.
    fn normalize(&self, _spec: &mut pb::ServerSpec) {}

    /// Checks a spec's game-specific parts (settings, paths, ports); the error names the field.
    /// The controller calls this before it stores a server; the agent before it starts one.
    fn validate(&self, spec: &pb::ServerSpec) -> Result<(), SpecError>;

    /// The ports a spec occupies on its host (game ports, RCon), for clash checks.
    fn ports(&self, spec: &pb::ServerSpec) -> Vec<PortUse>;

    /// The command line, working directory, environment and log directory of a spec.
    fn launch(&self, spec: &pb::ServerSpec) -> Result<Launch, AdapterError>;

    /// Writes the files the game needs before each start (e.g. the BattlEye RCon config).
    fn prepare(&self, spec: &pb::ServerSpec, launch: &Launch) -> Result<(), AdapterError>;

    /// The log files to follow.
    fn log_files(&self, spec: &pb::ServerSpec) -> Result<LogFiles, AdapterError>;

    /// A parser for the log's lines; `default_tz` is the agent's time zone for log timestamps.
    fn log_parser(&self, spec: &pb::ServerSpec, default_tz: LogTimeZone) -> Box<dyn LogParser>;

    /// The RCon protocol, when the spec has RCon configured and the game speaks one.
    fn rcon(&self, spec: &pb::ServerSpec) -> Option<RconProtocol>;

    /// The graceful stop, in order.
    fn stop_sequence(&self, spec: &pb::ServerSpec) -> Vec<StopStep>;
}

/// The signal number of a name such as `SIGTERM` or `TERM` (the ones a stop may use).
pub fn signal_number(name: &str) -> Option<i32> {
    let n = name.trim().to_ascii_uppercase();
    let n = n.strip_prefix("SIG").unwrap_or(&n);
    Some(match n {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "USR1" => 10,
        "USR2" => 12,
        "TERM" => 15,
        _ => return None,
    })
}

/// The name of a signal number from [`signal_number`].
pub fn signal_name(n: i32) -> String {
    match n {
        1 => "SIGHUP".into(),
        2 => "SIGINT".into(),
        3 => "SIGQUIT".into(),
        10 => "SIGUSR1".into(),
        12 => "SIGUSR2".into(),
        15 => "SIGTERM".into(),
        9 => "SIGKILL".into(),
        n => format!("signal {n}"),
    }
}

impl std::fmt::Display for StopStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopStep::Rcon(c) => write!(f, "rcon {c}"),
            StopStep::Command(argv) => write!(f, "command {}", argv.join(" ")),
            StopStep::Signal(n) => write!(f, "signal {}", signal_name(*n)),
        }
    }
}

/// The log time zone of a spec: its own setting when valid, else `default`.
pub fn time_zone_of(setting: &str, default: LogTimeZone) -> LogTimeZone {
    match setting.trim() {
        "" => default,
        tz => tz.parse().unwrap_or(default),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names_round_trip() {
        for name in [
            "SIGHUP", "SIGINT", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGTERM",
        ] {
            let n = signal_number(name).expect("known");
            assert_eq!(signal_name(n), name);
        }
        assert_eq!(signal_number("term"), Some(15));
        assert_eq!(
            signal_number("SIGKILL"),
            None,
            "KILL is not a graceful stop"
        );
        assert_eq!(signal_number("bogus"), None);
    }
}
