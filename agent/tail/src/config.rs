//! Tailer configuration: the log source, timing, limits.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The file-name patterns of an Arma 3 dedicated server's `.rpt` log in its profiles directory.
pub const ARMA3_RPT_PATTERNS: [&str; 2] = ["arma3server_x64_*.rpt", "arma3server_*.rpt"];

/// Where the log lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogSource {
    /// A directory whose files matching any of `patterns` form one log: the newest is followed,
    /// and a matching file that appears later is a rotation (the old file is read to its end
    /// first, the new one is then read from its start).
    Directory {
        /// The directory (not searched recursively).
        dir: PathBuf,
        /// File-name globs: `*` matches any run of characters, `?` exactly one.
        patterns: Vec<String>,
    },
    /// One fixed path. When a different file appears under that path (deleted and re-created,
    /// or renamed over), the old file is read to its end and the new one from its start.
    File(PathBuf),
}

impl LogSource {
    /// The `.rpt` logs of an Arma 3 server writing to `profiles_dir`
    /// (see [`ARMA3_RPT_PATTERNS`]).
    pub fn arma3(profiles_dir: impl Into<PathBuf>) -> Self {
        LogSource::Directory {
            dir: profiles_dir.into(),
            patterns: ARMA3_RPT_PATTERNS.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    /// The directory that is watched: the source directory, or the parent of a fixed file.
    pub fn watch_dir(&self) -> &Path {
        match self {
            LogSource::Directory { dir, .. } => dir,
            LogSource::File(path) => match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            },
        }
    }

    /// Whether a file name in [`LogSource::watch_dir`] belongs to this log.
    pub fn matches_name(&self, name: &str) -> bool {
        match self {
            LogSource::Directory { patterns, .. } => patterns.iter().any(|p| glob_match(p, name)),
            LogSource::File(path) => path.file_name().and_then(|n| n.to_str()) == Some(name),
        }
    }
}

/// Where to start when no checkpoint is given. (`End` may start in the middle of a line: its
/// rest is delivered as the first line.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartPosition {
    /// Read the newest file from its first byte (the default: the agent wants the whole
    /// current run of the server).
    #[default]
    Beginning,
    /// Skip what the newest file holds now; deliver only what is written from now on.
    End,
}

/// Configuration of one [`crate::Tailer`]. Build it with [`TailConfig::new`] and adjust fields.
#[derive(Debug, Clone)]
pub struct TailConfig {
    /// What to follow.
    pub source: LogSource,
    /// Where to start without a checkpoint.
    pub start: StartPosition,
    /// Use inotify (through `notify`) for low latency. When false, or when the watcher cannot be
    /// created, the tailer only polls.
    pub use_notify: bool,
    /// How often files are checked without a notification (default 250 ms). This runs even
    /// when `notify` works, as a safety net for missed events.
    pub poll_interval: Duration,
    /// Longest line delivered, in bytes, before decoding (default 64 KiB). Longer lines are cut
    /// and get the marker ` [... line truncated, N bytes dropped]`; the rest of the line is
    /// skipped without being buffered.
    pub max_line_bytes: usize,
    /// Deliver a line that has no newline yet after it has been idle this long (`None`: only
    /// when its file is finished by a rotation). Default `None`.
    pub partial_line_idle: Option<Duration>,
    /// Flood guard: lines per second delivered at most; more are dropped and counted
    /// (default 20,000; 0 disables the guard).
    pub max_lines_per_sec: u32,
    /// Whether the flood guard also applies to the backlog: bytes a file already held when the
    /// tailer opened it (resuming after a restart, or a file found at start). Default false, so
    /// catching up never drops lines.
    pub flood_guard_backlog: bool,
    /// Most lines in one [`crate::TailBatch`] (default 4096).
    pub batch_max_lines: usize,
    /// Most line bytes in one batch (default 1 MiB).
    pub batch_max_bytes: usize,
    /// Capacity of the batch channel (default 16). A full channel slows reading down; the file
    /// is the buffer.
    pub channel_capacity: usize,
    /// Size of one `read` from the file (default 64 KiB).
    pub read_chunk_bytes: usize,
}

impl TailConfig {
    /// Defaults for `source`.
    pub fn new(source: LogSource) -> Self {
        TailConfig {
            source,
            start: StartPosition::Beginning,
            use_notify: true,
            poll_interval: Duration::from_millis(250),
            max_line_bytes: 64 * 1024,
            partial_line_idle: None,
            max_lines_per_sec: 20_000,
            flood_guard_backlog: false,
            batch_max_lines: 4096,
            batch_max_bytes: 1024 * 1024,
            channel_capacity: 16,
            read_chunk_bytes: 64 * 1024,
        }
    }

    /// Checks the configuration; [`crate::Tailer::spawn`] calls it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match &self.source {
            LogSource::Directory { patterns, .. } if patterns.is_empty() => {
                return Err(ConfigError::NoPatterns);
            }
            LogSource::Directory { patterns, .. } => {
                if let Some(p) = patterns.iter().find(|p| p.is_empty() || p.contains('/')) {
                    return Err(ConfigError::BadPattern(p.clone()));
                }
            }
            LogSource::File(path) => {
                if path.file_name().is_none() {
                    return Err(ConfigError::NotAFileName(path.clone()));
                }
            }
        }
        if self.poll_interval.is_zero() {
            return Err(ConfigError::Zero("poll_interval"));
        }
        if matches!(self.partial_line_idle, Some(d) if d.is_zero()) {
            return Err(ConfigError::Zero("partial_line_idle"));
        }
        for (name, v) in [
            ("max_line_bytes", self.max_line_bytes),
            ("batch_max_lines", self.batch_max_lines),
            ("batch_max_bytes", self.batch_max_bytes),
            ("channel_capacity", self.channel_capacity),
            ("read_chunk_bytes", self.read_chunk_bytes),
        ] {
            if v == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        Ok(())
    }
}

/// A rejected [`TailConfig`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A directory source needs at least one pattern.
    #[error("a directory log source needs at least one file-name pattern")]
    NoPatterns,
    /// Patterns match file names, not paths.
    #[error("bad file-name pattern {0:?} (empty, or contains '/')")]
    BadPattern(String),
    /// A fixed path must name a file.
    #[error("log path {0:?} does not name a file")]
    NotAFileName(PathBuf),
    /// A size, count or duration that must be positive.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
}

/// Matches `name` against a glob with `*` (any run, also empty) and `?` (one character).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0usize, 0usize);
    // Position of the last `*` in the pattern and the name position it is trying.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(c) if *c == '?' || *c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match(
            "arma3server_x64_*.rpt",
            "arma3server_x64_2021-10-05_08-38-26.rpt"
        ));
        assert!(glob_match(
            "arma3server_*.rpt",
            "arma3server_x64_2021-10-05_08-38-26.rpt"
        ));
        assert!(!glob_match(
            "arma3server_x64_*.rpt",
            "arma3server_2021-10-05_08-38-26.rpt"
        ));
        assert!(!glob_match("arma3server_*.rpt", "arma3server_x.rpt.gz"));
        assert!(glob_match("a?c*", "abc"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("a", ""));
        assert!(glob_match("*.*.log", "x.y.z.log"));
    }

    #[test]
    fn validation() {
        let mut c = TailConfig::new(LogSource::arma3("/tmp"));
        assert_eq!(c.validate(), Ok(()));
        c.max_line_bytes = 0;
        assert_eq!(c.validate(), Err(ConfigError::Zero("max_line_bytes")));
        let c = TailConfig::new(LogSource::Directory {
            dir: "/tmp".into(),
            patterns: vec![],
        });
        assert_eq!(c.validate(), Err(ConfigError::NoPatterns));
        let c = TailConfig::new(LogSource::File("/".into()));
        assert!(matches!(c.validate(), Err(ConfigError::NotAFileName(_))));
    }
}
