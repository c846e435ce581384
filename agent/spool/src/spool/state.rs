//! The small persisted state file (`spool.state`): ack mark, sequence floor, incarnation.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

pub(crate) const STATE_FILE: &str = "spool.state";
const STATE_TMP: &str = "spool.state.tmp";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PersistedState {
    pub version: u32,
    /// Random id of this spool directory's life; a new one means the sequence space restarted.
    pub incarnation: u64,
    /// Everything with seq <= acked is acknowledged.
    pub acked: u64,
    /// The next sequence number handed out is at least this.
    pub seq_floor: u64,
}

pub(crate) enum Loaded {
    Missing,
    Corrupt(String),
    Ok(PersistedState),
}

pub(crate) fn load(dir: &Path) -> io::Result<Loaded> {
    match fs::read(dir.join(STATE_FILE)) {
        Ok(bytes) => Ok(match serde_json::from_slice::<PersistedState>(&bytes) {
            Ok(s) if s.version == 1 => Loaded::Ok(s),
            Ok(s) => Loaded::Corrupt(format!("unsupported state version {}", s.version)),
            Err(e) => Loaded::Corrupt(e.to_string()),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Loaded::Missing),
        Err(e) => Err(e),
    }
}

/// Atomically replaces the state file: write a temp file, fsync it, rename, fsync the directory.
pub(crate) fn store(dir: &Path, state: &PersistedState) -> io::Result<()> {
    let tmp = dir.join(STATE_TMP);
    let json = serde_json::to_vec(state).map_err(io::Error::other)?;
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(&json)?;
        f.sync_data()?;
    }
    fs::rename(&tmp, dir.join(STATE_FILE))?;
    sync_dir(dir)
}

pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
