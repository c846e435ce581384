//! Linux process identity, for re-attaching to game servers that outlived an agent restart.
//!
//! A pid alone is not an identity: pids are recycled. [`ProcessIdentity`] is the triple
//! (pid, start time in clock ticks since boot from `/proc/<pid>/stat` field 22, executable path
//! from `/proc/<pid>/exe`); a recycled pid has a different start time, so it never matches.
//! Record the identity when starting a server, persist it (it is `serde`-serialisable), and after
//! an agent restart call [`ProcessIdentity::of`] and [`ProcessIdentity::matches`].
//!
//! Exit of a non-child process is detected by polling `/proc` ([`wait_exit`], every 250 ms by
//! default): the process is gone when its `/proc/<pid>` entry disappears, is a zombie (`Z`) or
//! dead (`X`), or belongs to a different process (start time changed). **The exit code of a
//! non-child cannot be known**: only the parent can `wait()` for it, and after an agent restart
//! the game server is no longer our child (it was re-parented to init or a subreaper). Callers
//! should treat such an exit as "exited, status unknown" (e.g. consult the server's log tail).
//! pidfd (`pidfd_open` + poll) would report the exit instantly, but neither `nix` 0.30 nor the
//! workspace offers it without `unsafe` or a new dependency; 250 ms polling meets the 1 s goal.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// Default polling interval of [`wait_exit`].
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

const DELETED_SUFFIX: &str = " (deleted)";

/// Who a process is: pid + start time + executable.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProcessIdentity {
    pub pid: i32,
    /// Start time in clock ticks since boot (`/proc/<pid>/stat` field 22).
    pub start_time_ticks: u64,
    /// Target of `/proc/<pid>/exe`, with a trailing `" (deleted)"` removed (the binary was
    /// replaced or deleted while running, e.g. by a game update).
    pub exe: PathBuf,
}

/// Errors reading a process's identity.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("no process with pid {0}")]
    NoSuchProcess(i32),
    #[error("process {0} has exited (zombie or dead)")]
    Exited(i32),
    #[error("permission denied reading /proc/{0}")]
    PermissionDenied(i32),
    #[error("malformed /proc/{pid}/stat: {why}")]
    Malformed { pid: i32, why: &'static str },
    #[error("invalid pid {0}")]
    InvalidPid(i32),
    #[error("reading /proc/{pid}: {source}")]
    Io {
        pid: i32,
        #[source]
        source: io::Error,
    },
}

/// The fields of `/proc/<pid>/stat` this module needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub pid: i32,
    /// The command name between the parentheses (may itself contain spaces and parentheses).
    pub comm: String,
    /// Field 3: `R`, `S`, `D`, `Z`, `X`, ...
    pub state: char,
    /// Field 22.
    pub start_time_ticks: u64,
}

impl Stat {
    /// A zombie or dead process: it has exited (a zombie merely awaits its parent's `wait`).
    pub fn has_exited(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Parses the content of `/proc/<pid>/stat`. The comm field is delimited by the first `(` and
/// the **last** `)`, since the name may contain both and spaces.
pub fn parse_stat(content: &str) -> Result<Stat, &'static str> {
    let open = content.find('(').ok_or("no '(' before comm")?;
    let close = content.rfind(')').ok_or("no ')' after comm")?;
    if close < open {
        return Err("')' before '('");
    }
    let pid = content[..open]
        .trim()
        .parse::<i32>()
        .map_err(|_| "bad pid field")?;
    let comm = content[open + 1..close].to_owned();
    let mut rest = content[close + 1..].split_ascii_whitespace();
    let state = rest
        .next()
        .and_then(|s| s.chars().next())
        .ok_or("missing state field")?;
    // `rest` started at field 3 (state); field 22 is 19 further.
    let start = rest.nth(18).ok_or("missing field 22 (starttime)")?;
    let start_time_ticks = start.parse::<u64>().map_err(|_| "bad starttime field")?;
    Ok(Stat {
        pid,
        comm,
        state,
        start_time_ticks,
    })
}

fn proc_dir(pid: i32) -> Result<PathBuf, ProcError> {
    if pid <= 0 {
        return Err(ProcError::InvalidPid(pid));
    }
    Ok(Path::new("/proc").join(pid.to_string()))
}

fn map_io(pid: i32, e: io::Error) -> ProcError {
    match e.kind() {
        io::ErrorKind::NotFound => ProcError::NoSuchProcess(pid),
        io::ErrorKind::PermissionDenied => ProcError::PermissionDenied(pid),
        _ if e.raw_os_error() == Some(nix::libc::ESRCH) => ProcError::NoSuchProcess(pid),
        _ => ProcError::Io { pid, source: e },
    }
}

/// Reads and parses `/proc/<pid>/stat`.
pub fn read_stat(pid: i32) -> Result<Stat, ProcError> {
    let path = proc_dir(pid)?.join("stat");
    let bytes = fs::read(&path).map_err(|e| map_io(pid, e))?;
    let content = String::from_utf8_lossy(&bytes);
    let stat = parse_stat(&content).map_err(|why| ProcError::Malformed { pid, why })?;
    if stat.pid != pid {
        return Err(ProcError::Malformed {
            pid,
            why: "pid field differs from the path",
        });
    }
    Ok(stat)
}

/// Removes the `" (deleted)"` the kernel appends to the link of an unlinked executable.
pub fn strip_deleted(link: PathBuf) -> PathBuf {
    match link.to_str().and_then(|s| s.strip_suffix(DELETED_SUFFIX)) {
        Some(s) => PathBuf::from(s),
        None => link,
    }
}

impl ProcessIdentity {
    /// Reads the identity of the live process `pid`. A zombie is reported as
    /// [`ProcError::Exited`].
    pub fn of(pid: i32) -> Result<ProcessIdentity, ProcError> {
        let stat = read_stat(pid)?;
        if stat.has_exited() {
            return Err(ProcError::Exited(pid));
        }
        let link = fs::read_link(proc_dir(pid)?.join("exe")).map_err(|e| map_io(pid, e))?;
        // Re-read: the pid might have exited (and even been reused) between the two reads.
        let again = read_stat(pid)?;
        if again.start_time_ticks != stat.start_time_ticks {
            return Err(ProcError::NoSuchProcess(pid));
        }
        if again.has_exited() {
            return Err(ProcError::Exited(pid));
        }
        Ok(ProcessIdentity {
            pid,
            start_time_ticks: stat.start_time_ticks,
            exe: strip_deleted(link),
        })
    }

    /// True when `self` and `recorded` are the same process: pid, start time and exe all equal.
    pub fn matches(&self, recorded: &ProcessIdentity) -> bool {
        self.pid == recorded.pid
            && self.start_time_ticks == recorded.start_time_ticks
            && self.exe == recorded.exe
    }

    /// True when this exact process still runs (not exited, not a zombie, pid not recycled).
    pub fn is_running(&self) -> bool {
        ProcessIdentity::of(self.pid).is_ok_and(|now| now.matches(self))
    }

    /// How the process is now, for exit polling. Does not read `exe` (cheap; a pid reused with
    /// an identical start tick is impossible, the kernel counts in ticks since boot).
    fn probe(&self) -> Option<ExitReason> {
        match read_stat(self.pid) {
            Ok(s) if s.start_time_ticks != self.start_time_ticks => Some(ExitReason::PidReused),
            Ok(s) if s.has_exited() => Some(ExitReason::Zombie),
            Ok(_) => None,
            Err(ProcError::NoSuchProcess(_)) | Err(ProcError::InvalidPid(_)) => {
                Some(ExitReason::Gone)
            }
            // Permission or transient I/O problems: assume still running, try again later.
            Err(e) => {
                tracing::debug!(pid = self.pid, error = %e, "procid: probe failed");
                None
            }
        }
    }
}

/// True when a process `pid` exists and has not exited (zombies count as exited).
pub fn is_alive(pid: i32) -> bool {
    read_stat(pid).is_ok_and(|s| !s.has_exited())
}

/// How an exit was observed. The exit code of a non-child is unknowable (see module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    /// `/proc/<pid>` no longer exists (exited and reaped).
    Gone,
    /// Exited; a zombie awaiting its parent's `wait`.
    Zombie,
    /// The pid now belongs to a different process (ours exited and the pid was recycled).
    PidReused,
}

/// Result of [`wait_exit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitObserved {
    /// The process exited; exit status unknown.
    Exited(ExitReason),
    /// `cancel` fired first.
    Cancelled,
}

/// Waits until the process `identity` exits (polling `/proc` every [`POLL_INTERVAL`], so the exit
/// is seen within ~250 ms) or `cancel` fires.
pub async fn wait_exit(identity: &ProcessIdentity, cancel: &CancellationToken) -> ExitObserved {
    wait_exit_every(identity, cancel, POLL_INTERVAL).await
}

/// [`wait_exit`] with a custom polling interval.
pub async fn wait_exit_every(
    identity: &ProcessIdentity,
    cancel: &CancellationToken,
    interval: Duration,
) -> ExitObserved {
    let mut tick = tokio::time::interval(interval.max(Duration::from_millis(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => return ExitObserved::Cancelled,
            _ = tick.tick() => {
                if let Some(reason) = identity.probe() {
                    return ExitObserved::Exited(reason);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_comm_with_spaces_and_parens() {
        let line = "4242 (a) b (c)) R 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 987654 \
                    12345 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.pid, 4242);
        assert_eq!(s.comm, "a) b (c)");
        assert_eq!(s.state, 'R');
        assert_eq!(s.start_time_ticks, 987654);
        assert!(!s.has_exited());
        assert!(parse_stat("1 (x) Z 0 0").is_err());
        assert!(parse_stat("").is_err());
        assert!(parse_stat(")(").is_err());
        assert!(parse_stat("x (y) R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20").is_err());
        let z = "7 (sleep) Z 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 77 0";
        let z = parse_stat(z).unwrap();
        assert!(z.has_exited());
        assert_eq!(z.start_time_ticks, 77);
    }

    #[test]
    fn strips_deleted_suffix() {
        assert_eq!(
            strip_deleted(PathBuf::from("/srv/a3/arma3server_x64 (deleted)")),
            PathBuf::from("/srv/a3/arma3server_x64")
        );
        assert_eq!(
            strip_deleted(PathBuf::from("/bin/sleep")),
            PathBuf::from("/bin/sleep")
        );
    }

    #[test]
    fn invalid_pids() {
        assert!(matches!(
            ProcessIdentity::of(0),
            Err(ProcError::InvalidPid(0))
        ));
        assert!(matches!(
            ProcessIdentity::of(-3),
            Err(ProcError::InvalidPid(-3))
        ));
        assert!(!is_alive(-1));
        // pid_max is at most 2^22; this pid cannot exist.
        assert!(matches!(
            ProcessIdentity::of(i32::MAX),
            Err(ProcError::NoSuchProcess(_))
        ));
    }
}
