//! Launching a game server as its own process group, with stdout and stderr going straight into a
//! log file the agent opened (not a pipe the agent must drain), so the server keeps running and
//! logging when the agent stops. Signals go to the whole group.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};

use chrono::Local;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use languard_adapters::Launch;

/// Why a launch failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SpawnError(pub String);

/// A launched server.
pub struct Spawned {
    /// The child (its exit is awaited by the monitor).
    pub child: tokio::process::Child,
    /// Its pid, which is also its process group id.
    pub pid: i32,
    /// The file its output goes to.
    pub log_path: PathBuf,
}

/// Launches `launch`, sending its output to a new dated file in its log dir
/// (`{stdout_prefix}{date}{stdout_suffix}`, e.g. `arma3server_x64_2026-12-03_19-05-17.rpt`).
pub fn spawn(launch: &Launch) -> Result<Spawned, SpawnError> {
    let log_dir = &launch.log_dir;
    std::fs::create_dir_all(log_dir)
        .map_err(|e| SpawnError(format!("log dir {}: {e}", log_dir.display())))?;
    if !launch.cwd.is_dir() {
        return Err(SpawnError(format!(
            "working dir {} does not exist",
            launch.cwd.display()
        )));
    }
    let name = format!(
        "{}{}{}",
        launch.stdout_prefix,
        Local::now().format("%Y-%m-%d_%H-%M-%S"),
        launch.stdout_suffix
    );
    let log_path = unique(log_dir.join(name));
    let out = File::options()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| SpawnError(format!("log file {}: {e}", log_path.display())))?;
    let err = out
        .try_clone()
        .map_err(|e| SpawnError(format!("log file {}: {e}", log_path.display())))?;
    let mut cmd = std::process::Command::new(&launch.program);
    cmd.args(&launch.args)
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&launch.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        // Own process group: terminal signals to the agent do not reach it, and we signal the group.
        .process_group(0);
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.kill_on_drop(false);
    let child = cmd
        .spawn()
        .map_err(|e| SpawnError(format!("cannot start {}: {e}", launch.program.display())))?;
    let pid = child
        .id()
        .and_then(|p| i32::try_from(p).ok())
        .ok_or_else(|| SpawnError("child has no pid".into()))?;
    Ok(Spawned {
        child,
        pid,
        log_path,
    })
}

fn unique(path: PathBuf) -> PathBuf {
    if !path.exists() {
        return path;
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    for i in 1.. {
        let candidate = path.with_file_name(format!("{stem}_{i}.rpt"));
        if !candidate.exists() {
            return candidate;
        }
    }
    path
}

/// Sends `signal` to the process group `pgid`. A group that is already gone is not an error.
pub fn signal_group(pgid: i32, signal: Signal) -> Result<(), SpawnError> {
    match killpg(Pid::from_raw(pgid), signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(e) => Err(SpawnError(format!(
            "signal {signal} to process group {pgid}: {e}"
        ))),
    }
}

/// Exit code and signal of an exit status.
pub fn describe(status: &ExitStatus) -> (Option<i32>, Option<i32>) {
    use std::os::unix::process::ExitStatusExt;
    (status.code(), status.signal())
}
