//! Deleting old log files (Arma 3 never deletes its `.rpt` files).

use std::collections::HashSet;
use std::io;
use std::path::PathBuf;

use crate::config::LogSource;
use crate::engine::{list_dir, sort_oldest_first};
use crate::identity::FileIdentity;

/// Deletes the matching files of a directory source except the `keep` newest (by modification
/// time, then name) and except every file in `protect` (compared by device and inode), which
/// are kept in any case. Returns the deleted paths, oldest first.
///
/// A fixed-path source has nothing to prune (returns an empty list). Blocking: call it from
/// `tokio::task::spawn_blocking` in async code. A file that cannot be deleted is logged and
/// skipped; listing the directory failing is an error.
pub fn prune_logs(
    source: &LogSource,
    keep: usize,
    protect: &[FileIdentity],
) -> io::Result<Vec<PathBuf>> {
    let protect: HashSet<(u64, u64)> = protect.iter().map(|id| (id.dev, id.ino)).collect();
    prune_keys(source, keep, &protect)
}

pub(crate) fn prune_keys(
    source: &LogSource,
    keep: usize,
    protect: &HashSet<(u64, u64)>,
) -> io::Result<Vec<PathBuf>> {
    let LogSource::Directory { dir, .. } = source else {
        return Ok(Vec::new());
    };
    let mut files = list_dir(dir, |n| source.matches_name(n))?;
    sort_oldest_first(&mut files);
    let old = files.len().saturating_sub(keep);
    let mut deleted = Vec::new();
    for f in files.into_iter().take(old) {
        if protect.contains(&(f.dev, f.ino)) {
            continue;
        }
        match std::fs::remove_file(&f.path) {
            Ok(()) => {
                tracing::info!(path = %f.path.display(), "pruned old log file");
                deleted.push(f.path);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %f.path.display(), error = %e, "cannot prune log file");
            }
        }
    }
    Ok(deleted)
}
