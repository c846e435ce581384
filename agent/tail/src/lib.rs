//! Follows a game server's log files: the `tail -F` of the Languard agent.
//!
//! # Use
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use languard_tail::{LogSource, TailConfig, TailRecord, Tailer};
//! use tokio_util::sync::CancellationToken;
//!
//! let config = TailConfig::new(LogSource::arma3("/srv/arma3/profiles"));
//! let stored = None; // a `Checkpoint` loaded from disk, if any
//! let (handle, mut batches) = Tailer::spawn(config, stored, CancellationToken::new())?;
//! while let Some(batch) = batches.recv().await {
//!     for record in &batch.records {
//!         match record {
//!             TailRecord::Line(line) => println!("{}", line.text),
//!             TailRecord::Event(event) => println!("{event}"),
//!         }
//!     }
//!     // Once the downstream has acknowledged the batch:
//!     let _checkpoint_to_store = batch.position;
//! }
//! handle.join().await;
//! # Ok(()) }
//! ```
//!
//! # Design
//!
//! - **One task per log.** [`Tailer::spawn`] validates the [`TailConfig`] and spawns one tokio
//!   task (with a `log_tail` tracing span) owning all state. Blocking file I/O runs on the
//!   blocking pool in steps of at most one batch (and at most 4 batches' worth of bytes read,
//!   when skipping an overlong line or dropping a flood), so cancelling via the
//!   [`tokio_util::sync::CancellationToken`] ends the task within one step. The
//!   [`TailHandle`] shows the current file and [`TailStats`], and prunes.
//! - **Wake-ups.** An inotify watch (crate `notify`) on the directory wakes the task on any
//!   change to a matching file (our own reads, `Access` events, are ignored), so a written line
//!   is delivered within about a millisecond. A poll timer (`poll_interval`, 250 ms) runs in
//!   any case as a safety net; without a watcher (`use_notify = false`, or it cannot be
//!   created, e.g. the directory does not exist yet, retried every few seconds) it is the only
//!   mechanism.
//! - **Batches and backpressure.** Lines read together are sent as one [`TailBatch`] (at most
//!   `batch_max_lines` / `batch_max_bytes`) on a bounded channel. A slow receiver makes the
//!   tailer read slower; the file is the buffer, the game server is never blocked.
//!   Events ([`TailEvent`]) sit between the lines at their place; their `Display` is a notice
//!   line such as `[languard] 5000 lines dropped by the flood guard (limit 20000/s)`.
//! - **Lines.** Split on `\n`; a final `\r` is stripped; invalid UTF-8 is replaced (never an
//!   error); a line longer than `max_line_bytes` is cut and marked
//!   ` [... line truncated, N bytes dropped]` while the rest is skipped without buffering it.
//!   A line without its newline is held; it is delivered (with [`TailLine::partial`]) when its
//!   file is finished by a rotation, or after `partial_line_idle` if set. A cancelled tailer
//!   never delivers a held partial line: the checkpoint stays before it and a resume reads it
//!   whole.
//! - **Which file.** A [`LogSource::Directory`] follows the newest matching file (by
//!   modification time, then name). Any matching file that appears later (a server start) is
//!   queued, unless its modification time is more than 5 s older than the current file's (an
//!   old log copied in with its time kept); at the end of the current file the tailer reads the current file to its end once
//!   more, then switches to the queued file from offset 0 ([`TailEvent::Rotated`]). A
//!   [`LogSource::File`] follows one path; the same switch happens when the path names another
//!   file (same name, new inode: deleted and re-created, or renamed over). A followed file whose
//!   path vanished keeps being read ([`TailEvent::Removed`]) until a replacement appears.
//! - **Truncation.** A file shorter than the read offset, or whose first bytes no longer match
//!   its fingerprint (checked every poll interval), is read again from 0
//!   ([`TailEvent::Truncated`]).
//! - **Flood guard.** At most `max_lines_per_sec` lines per one-second window are delivered;
//!   more are dropped and counted, and a [`TailEvent::Dropped`] notice is emitted once per
//!   second while dropping. Bytes that a file already held when the tailer opened it (a
//!   backlog after a restart) are exempt unless `flood_guard_backlog` is set, so resuming never
//!   drops lines.
//!
//! # File identity and checkpoints
//!
//! A [`FileIdentity`] is (device, inode) plus a [`Fingerprint`]: an FNV-1a hash of the file's
//! first up to 1 KiB (it grows with a file shorter than that). Every [`TailLine`] carries the
//! identity and `offset_after`, the byte offset just after it; [`TailLine::checkpoint`] or
//! [`TailBatch::position`] gives a [`Checkpoint`] to store **after** the downstream
//! acknowledged the lines. Given to [`Tailer::spawn`] it resumes as follows:
//!
//! 1. The checkpoint's file is looked up by (device, inode) among the matching files, then
//!    among all files of the directory (it may have been renamed), and accepted only if its
//!    first bytes still match the fingerprint. If found and at least `offset` long, reading
//!    resumes exactly at `offset` (no line lost, none repeated), and every matching file newer
//!    than it (by modification time, then name) is queued to be read from its start: the
//!    restarts that happened while the agent was down.
//! 2. If found but shorter than `offset` (truncated meanwhile), it is read from 0 and a
//!    [`TailEvent::CheckpointMissed`] (`Truncated`) is emitted.
//! 3. If not found (deleted, pruned, or the inode reused by other content), a
//!    [`TailEvent::CheckpointMissed`] (`NotFound`) is emitted and the newest file is read from
//!    its start. Lines of files that were created and deleted while the agent was down are lost;
//!    nothing is repeated except when the newest file was fully read before under another
//!    identity (which cannot happen for append-only logs).
//!
//! Without a checkpoint the newest file is read from its start ([`StartPosition::Beginning`],
//! the default) or from its current end ([`StartPosition::End`]).
//!
//! # What it does not do
//!
//! - It does not read a rotated-away file again after switching: a writer that keeps writing to
//!   the old file after the new one appeared and the old one was drained loses those lines.
//! - It does not parse lines (that is `languard-rpt`) and does not follow subdirectories.
//! - An inode number reused by a new matching file between two directory scans (within one
//!   notification or poll interval) is not seen as new.
//!
//! Old files are deleted with [`prune_logs`] or [`TailHandle::prune`], which never delete the
//! followed file or files still queued.

mod config;
mod engine;
mod flood;
mod identity;
mod line;
mod prune;
mod tailer;
mod types;

pub use config::{
    ARMA3_RPT_PATTERNS, ConfigError, LogSource, StartPosition, TailConfig, glob_match,
};
pub use identity::{Checkpoint, FINGERPRINT_MAX_LEN, FileIdentity, Fingerprint};
pub use prune::prune_logs;
pub use tailer::{TailHandle, Tailer};
pub use types::{
    CheckpointMiss, RotationReason, TailBatch, TailEvent, TailLine, TailRecord, TailStats,
};
