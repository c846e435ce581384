//! The agent's state dir: the server specs it was last given (so it can supervise without a
//! controller) and the block of event sequence numbers it has reserved.

use std::io::Write;
use std::path::{Path, PathBuf};

use languard_proto::v1 as pb;
use prost::Message;

/// State-dir failures.
#[derive(Debug, thiserror::Error)]
#[error("state dir: {path}: {reason}")]
pub struct StateError {
    /// The file.
    pub path: String,
    /// What went wrong.
    pub reason: String,
}

fn err(path: &Path, reason: impl ToString) -> StateError {
    StateError {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Handle of the state dir.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// Opens (creating) the state dir.
    pub fn open(root: &Path) -> Result<Self, StateError> {
        std::fs::create_dir_all(root).map_err(|e| err(root, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| err(root, e))?;
        }
        Ok(Self {
            root: root.to_owned(),
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Writes `bytes` to `name` atomically (temp file, fsync, rename), mode 0600.
    pub fn write_atomic(&self, name: &str, bytes: &[u8]) -> Result<(), StateError> {
        let path = self.root.join(name);
        let tmp = self.root.join(format!(".{name}.tmp"));
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(|e| err(&tmp, e))?;
        f.write_all(bytes).map_err(|e| err(&tmp, e))?;
        f.sync_all().map_err(|e| err(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| err(&path, e))
    }

    /// The cached specs; empty when none are cached. A corrupt cache is reported, not fatal.
    pub fn load_specs(&self) -> Vec<pb::ServerSpec> {
        let path = self.root.join("specs.pb");
        match std::fs::read(&path) {
            Ok(bytes) => match pb::SessionAccepted::decode(bytes.as_slice()) {
                Ok(s) => s.servers,
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "cached specs unreadable; starting without them");
                    Vec::new()
                }
            },
            Err(_) => Vec::new(),
        }
    }

    /// Caches `specs`.
    pub fn save_specs(&self, specs: &[pb::ServerSpec]) -> Result<(), StateError> {
        let msg = pb::SessionAccepted {
            servers: specs.to_vec(),
            ..Default::default()
        };
        self.write_atomic("specs.pb", &msg.encode_to_vec())
    }

    /// The highest sequence number reserved by a previous run (0 if none).
    pub fn reserved_seq(&self) -> u64 {
        std::fs::read_to_string(self.root.join("seq"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Reserves sequence numbers up to `until`, durably, before any of them is used.
    pub fn reserve_seq(&self, until: u64) -> Result<(), StateError> {
        self.write_atomic("seq", until.to_string().as_bytes())
    }

    /// The run records of the servers that were running (for re-attach). Unreadable → empty, logged.
    pub fn load_runs(&self) -> std::collections::BTreeMap<i64, crate::supervisor::RunRecord> {
        let path = self.root.join("runs.json");
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::error!(path = %path.display(), error = %e, "run records unreadable; not re-attaching");
                Default::default()
            }),
            Err(_) => Default::default(),
        }
    }

    /// Records the running servers.
    pub fn save_runs(
        &self,
        runs: &std::collections::BTreeMap<i64, crate::supervisor::RunRecord>,
    ) -> Result<(), StateError> {
        let json =
            serde_json::to_vec_pretty(runs).map_err(|e| err(&self.root.join("runs.json"), e))?;
        self.write_atomic("runs.json", &json)
    }

    /// Directory for a server's own files (the log of its stdout, ...).
    pub fn server_dir(&self, server_id: i64) -> PathBuf {
        self.root.join("servers").join(server_id.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_and_seq_survive_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = StateDir::open(dir.path()).expect("open");
        s.save_specs(&[pb::ServerSpec {
            server_id: 4,
            name: "a".into(),
            ..Default::default()
        }])
        .expect("save");
        s.reserve_seq(10_000).expect("reserve");
        let s = StateDir::open(dir.path()).expect("reopen");
        assert_eq!(s.load_specs()[0].server_id, 4);
        assert_eq!(s.reserved_seq(), 10_000);
        std::fs::write(dir.path().join("specs.pb"), b"\xff\xff garbage").expect("corrupt");
        assert!(s.load_specs().is_empty());
    }
}
