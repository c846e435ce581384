//! What the tailer delivers: lines and events, grouped in batches.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::identity::{Checkpoint, FileIdentity};

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailLine {
    /// The text: no `\n`, no final `\r`, invalid UTF-8 replaced by U+FFFD, cut at
    /// `max_line_bytes` with the marker ` [... line truncated, N bytes dropped]`.
    pub text: String,
    /// The file it was read from.
    pub file: FileIdentity,
    /// The file's path when it was opened.
    pub file_path: Arc<Path>,
    /// Byte offset just after this line (after its `\n`). Checkpointing here resumes with the
    /// next line.
    pub offset_after: u64,
    /// Bytes of the line not delivered because it was longer than the cap (0 normally).
    pub truncated_bytes: u64,
    /// The line had no newline: it was delivered because it stayed idle for
    /// `partial_line_idle`, or because its file was finished by a rotation. What the writer
    /// appends to it later arrives as a new line.
    pub partial: bool,
}

impl TailLine {
    /// The checkpoint that resumes just after this line.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            identity: self.file,
            offset: self.offset_after,
        }
    }
}

/// Why the tailer moved to another file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationReason {
    /// A new matching file appeared in the directory (a server start), or a file queued on
    /// resume.
    NewFile,
    /// A different file now exists under the same path (deleted and re-created, or renamed
    /// over).
    Replaced,
}

/// Why a start checkpoint could not be used as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointMiss {
    /// No file in the directory has the checkpoint's (device, inode) and fingerprint: the
    /// newest file is read from its start.
    NotFound,
    /// The file exists but is shorter than the checkpoint offset: it is read from its start.
    Truncated,
}

/// Something that happened to the followed files. `Display` renders a notice line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TailEvent {
    /// Following starts at `offset` of `path` (at start or resume; or the first file appeared).
    Opened {
        path: PathBuf,
        file: FileIdentity,
        offset: u64,
    },
    /// The old file was read to its end; the new one is read from its start.
    Rotated {
        from: PathBuf,
        from_file: FileIdentity,
        to: PathBuf,
        to_file: FileIdentity,
        reason: RotationReason,
    },
    /// The file became shorter than what was read (truncated or copytruncated) or its first
    /// bytes changed: it is read again from offset 0.
    Truncated {
        path: PathBuf,
        file: FileIdentity,
        old_offset: u64,
        new_size: u64,
    },
    /// The followed file's path no longer exists. The open file is still read (its writer may
    /// still append) until another file replaces it.
    Removed { path: PathBuf, file: FileIdentity },
    /// The flood guard dropped `count` lines (emitted at most once per second while dropping).
    Dropped { count: u64, limit: u32 },
    /// The start checkpoint could not be used as it is.
    CheckpointMissed {
        checkpoint: Checkpoint,
        reason: CheckpointMiss,
    },
}

impl fmt::Display for TailEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TailEvent::Opened { path, offset, .. } => {
                write!(
                    f,
                    "[languard] following {} from byte {offset}",
                    path.display()
                )
            }
            TailEvent::Rotated { from, to, .. } => write!(
                f,
                "[languard] log rotated: {} -> {}",
                from.display(),
                to.display()
            ),
            TailEvent::Truncated {
                path,
                old_offset,
                new_size,
                ..
            } => write!(
                f,
                "[languard] {} was truncated (read {old_offset} bytes, now {new_size}); reading from the start",
                path.display()
            ),
            TailEvent::Removed { path, .. } => {
                write!(f, "[languard] {} was removed", path.display())
            }
            TailEvent::Dropped { count, limit } => write!(
                f,
                "[languard] {count} lines dropped by the flood guard (limit {limit}/s)"
            ),
            TailEvent::CheckpointMissed { checkpoint, reason } => write!(
                f,
                "[languard] checkpoint (inode {}, offset {}) not usable ({reason:?}); reading from the start",
                checkpoint.identity.ino, checkpoint.offset
            ),
        }
    }
}

/// One item of a batch, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TailRecord {
    /// A line.
    Line(TailLine),
    /// An event, at its place between the lines.
    Event(TailEvent),
}

/// Lines and events read together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailBatch {
    /// In order.
    pub records: Vec<TailRecord>,
    /// The position after everything in this batch, including lines dropped by the flood
    /// guard (but not a held partial line). Store it once the downstream acknowledged every
    /// line of this batch (and of the batches before).
    pub position: Option<Checkpoint>,
}

impl TailBatch {
    /// The lines.
    pub fn lines(&self) -> impl Iterator<Item = &TailLine> {
        self.records.iter().filter_map(|r| match r {
            TailRecord::Line(l) => Some(l),
            TailRecord::Event(_) => None,
        })
    }

    /// The events.
    pub fn events(&self) -> impl Iterator<Item = &TailEvent> {
        self.records.iter().filter_map(|r| match r {
            TailRecord::Event(e) => Some(e),
            TailRecord::Line(_) => None,
        })
    }

    /// Same as [`TailBatch::position`].
    pub fn checkpoint(&self) -> Option<Checkpoint> {
        self.position
    }
}

/// Counters of one tailer since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TailStats {
    /// Lines delivered (including partial and truncated ones).
    pub lines: u64,
    /// Bytes read from files.
    pub bytes_read: u64,
    /// Lines dropped by the flood guard.
    pub dropped_lines: u64,
    /// Lines cut at `max_line_bytes`.
    pub truncated_lines: u64,
    /// Switches to another file.
    pub rotations: u64,
    /// Truncations detected.
    pub truncations: u64,
    /// I/O errors (logged, retried on the next poll).
    pub io_errors: u64,
    /// Whether inotify is in use right now (false: polling only).
    pub notify_active: bool,
}
