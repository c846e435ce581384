//! File identity (device, inode, fingerprint of the first bytes) and checkpoints.

use std::fs::{File, Metadata};
use std::io::{self, Read, Seek, SeekFrom};

use serde::{Deserialize, Serialize};

/// How many leading bytes of a file the fingerprint covers at most.
pub const FINGERPRINT_MAX_LEN: u32 = 1024;

/// A hash of a file's first `len` bytes (`len` ≤ [`FINGERPRINT_MAX_LEN`]).
///
/// While a file is shorter than 1 KiB the fingerprint covers what exists and grows with the
/// file (logs are append-only, so a shorter fingerprint is a prefix of a longer one). The hash
/// is 64-bit FNV-1a: stable across builds and Rust versions, so stored checkpoints stay valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Bytes covered.
    pub len: u32,
    /// FNV-1a 64 of those bytes.
    pub hash: u64,
}

impl Fingerprint {
    /// The fingerprint of `bytes` (callers pass at most [`FINGERPRINT_MAX_LEN`] bytes).
    pub fn of(bytes: &[u8]) -> Self {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        Fingerprint {
            len: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
            hash,
        }
    }
}

/// Which file a line came from: (device, inode) plus a [`Fingerprint`] of its first bytes.
///
/// (device, inode) tells files apart while they exist; the fingerprint guards against an inode
/// number reused by a new file after the old one was deleted, and against content rewritten in
/// place (copytruncate). Two identities denote the same file when [`FileIdentity::same_inode`]
/// holds and the fingerprints agree on their common length (lines read early from a file shorter
/// than 1 KiB carry a shorter fingerprint than later ones).
///
/// On non-Unix systems device and inode are 0 and only the fingerprint identifies a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileIdentity {
    /// `st_dev`.
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
    /// Hash of the first bytes.
    pub fingerprint: Fingerprint,
}

impl FileIdentity {
    /// Same device and inode.
    pub fn same_inode(&self, other: &FileIdentity) -> bool {
        self.dev == other.dev && self.ino == other.ino
    }

    /// Reads the identity of an open file (its first up to 1 KiB are read; the file position is
    /// restored).
    pub fn of_file(file: &mut File) -> io::Result<FileIdentity> {
        let meta = file.metadata()?;
        let (dev, ino) = dev_ino(&meta);
        let fingerprint = fingerprint_file(file, FINGERPRINT_MAX_LEN)?;
        Ok(FileIdentity {
            dev,
            ino,
            fingerprint,
        })
    }

    /// Whether the open `file` (already known to have this device and inode) still starts with
    /// the bytes this identity's fingerprint covers.
    pub fn fingerprint_matches(&self, file: &mut File) -> io::Result<bool> {
        let fp = fingerprint_file(file, self.fingerprint.len)?;
        Ok(fp == self.fingerprint)
    }
}

/// Where to resume: just after the last line the downstream acknowledged.
///
/// Take it from [`crate::TailLine::checkpoint`] or [`crate::TailBatch::checkpoint`], store it
/// (it is serde-serialisable) and pass it to [`crate::Tailer::spawn`]. See the crate
/// documentation for what happens when the file is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The file.
    pub identity: FileIdentity,
    /// Byte offset just after the last acknowledged line.
    pub offset: u64,
}

/// (device, inode) of a file's metadata.
#[cfg(unix)]
pub fn dev_ino(meta: &Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

/// (device, inode) of a file's metadata (not available here: 0, 0).
#[cfg(not(unix))]
pub fn dev_ino(_meta: &Metadata) -> (u64, u64) {
    (0, 0)
}

/// Fingerprint of the first up to `max` bytes of `file`, restoring the file position.
fn fingerprint_file(file: &mut File, max: u32) -> io::Result<Fingerprint> {
    let pos = file.stream_position()?;
    file.seek(SeekFrom::Start(0))?;
    let mut buf = Vec::with_capacity(max as usize);
    let res = file.by_ref().take(u64::from(max)).read_to_end(&mut buf);
    file.seek(SeekFrom::Start(pos))?;
    res?;
    Ok(Fingerprint::of(&buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_is_stable() {
        // Reference values of FNV-1a 64.
        assert_eq!(Fingerprint::of(b"").hash, 0xcbf2_9ce4_8422_2325);
        assert_eq!(Fingerprint::of(b"a").hash, 0xaf63_dc4c_8601_ec8c);
        assert_eq!(Fingerprint::of(b"foobar").hash, 0x8594_4171_f739_67e8);
        assert_eq!(Fingerprint::of(b"foobar").len, 6);
    }

    #[test]
    fn checkpoint_round_trips_through_json() {
        let cp = Checkpoint {
            identity: FileIdentity {
                dev: 1,
                ino: 2,
                fingerprint: Fingerprint::of(b"x"),
            },
            offset: 42,
        };
        let json = serde_json::to_string(&cp).unwrap_or_default();
        let back: Option<Checkpoint> = serde_json::from_str(&json).ok();
        assert_eq!(back, Some(cp));
    }
}
