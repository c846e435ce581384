//! The synchronous core: which file to read, reading it, rotation, truncation, flood guard.
//!
//! [`Engine::step`] does blocking file I/O and returns at most one batch; the async task in
//! `tailer.rs` runs it on the blocking pool and decides when to call it again.

use std::collections::{HashSet, VecDeque};
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::config::{LogSource, StartPosition, TailConfig};
use crate::flood::FloodGuard;
use crate::identity::{Checkpoint, FINGERPRINT_MAX_LEN, FileIdentity, dev_ino};
use crate::line::{LineAssembler, RawLine, decode};
use crate::types::{CheckpointMiss, RotationReason, TailEvent, TailLine, TailRecord, TailStats};

/// The span over which the file's growth is judged by the flood guard.
const GROWTH_WINDOW: std::time::Duration = std::time::Duration::from_secs(1);

/// How much older than the current file a newly appeared file may be and still count as a
/// rotation (the old writer may touch its file just after the new file was created).
const NEWER_SLACK: Duration = Duration::from_secs(5);

/// State shared with the [`crate::TailHandle`].
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) status: Mutex<Status>,
}

#[derive(Debug, Default, Clone)]
pub(crate) struct Status {
    pub(crate) current: Option<(PathBuf, FileIdentity)>,
    /// (dev, ino) of files still to be read (never pruned).
    pub(crate) queued: Vec<(u64, u64)>,
    pub(crate) stats: TailStats,
}

/// A file found in the directory.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub(crate) path: PathBuf,
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    pub(crate) mtime: SystemTime,
}

impl Candidate {
    fn key(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }
}

struct Cursor {
    file: File,
    path: Arc<Path>,
    id: FileIdentity,
    /// Next byte to read.
    offset: u64,
    /// Just after the last line delivered or dropped (the checkpoint position).
    line_end: u64,
    asm: LineAssembler,
    /// When bytes last arrived (for `partial_line_idle`).
    last_data: Instant,
    /// Bytes the file held when it was opened; exempt from the flood guard unless configured.
    backlog_end: u64,
    /// The path no longer exists (reported once).
    gone: bool,
    /// A rotation is pending and the file was read once more to its end after it was decided.
    drained: bool,
}

/// What one step produced.
pub(crate) struct StepOut {
    pub(crate) records: Vec<TailRecord>,
    pub(crate) position: Option<Checkpoint>,
    /// The batch is full: step again without waiting.
    pub(crate) more: bool,
}

struct Out {
    records: Vec<TailRecord>,
    lines: usize,
    bytes: usize,
}

pub(crate) struct Engine {
    cfg: Arc<TailConfig>,
    shared: Arc<Shared>,
    cur: Option<Cursor>,
    queue: VecDeque<Candidate>,
    /// (dev, ino) of the matching files present at the last scan.
    seen: HashSet<(u64, u64)>,
    last_scan: Option<Instant>,
    last_verify: Instant,
    flood: FloodGuard,
    /// (time, size) of the current file at recent steps, for the write rate.
    growth: std::collections::VecDeque<(Instant, u64)>,
    pending: Vec<TailRecord>,
    chunk: Vec<u8>,
    stats: TailStats,
    /// Last logged error text, to log a repeating error once.
    last_error: Option<String>,
}

impl Engine {
    pub(crate) fn new(cfg: Arc<TailConfig>, shared: Arc<Shared>) -> Self {
        let chunk = vec![0u8; cfg.read_chunk_bytes];
        let flood = FloodGuard::new(cfg.max_lines_per_sec);
        Engine {
            cfg,
            shared,
            cur: None,
            queue: VecDeque::new(),
            seen: HashSet::new(),
            last_scan: None,
            last_verify: Instant::now(),
            flood,
            growth: std::collections::VecDeque::new(),
            pending: Vec::new(),
            chunk,
            stats: TailStats::default(),
            last_error: None,
        }
    }

    /// Records the current file's size (once per step) for [`Engine::writing_calmly`].
    fn sample_growth(&mut self, now: Instant) {
        let Some(len) = self
            .cur
            .as_ref()
            .and_then(|c| c.file.metadata().ok())
            .map(|m| m.len())
        else {
            self.growth.clear();
            return;
        };
        if self.growth.back().is_some_and(|(_, l)| *l > len) {
            self.growth.clear(); // truncated: a new history
        }
        self.growth.push_back((now, len));
        // Keep the newest sample at least a window old, and nothing older.
        while self.growth.len() > 2
            && self
                .growth
                .get(1)
                .is_some_and(|(t, _)| now.saturating_duration_since(*t) >= GROWTH_WINDOW)
        {
            self.growth.pop_front();
        }
    }

    /// Whether the server writes no faster than the flood guard allows, judged by how fast the
    /// file grew over the last second or more (lines estimated from the average line length).
    /// The guard limits what the server writes, not how fast the reader catches up: a backlog
    /// that piled up while the consumer held the reader back (e.g. the agent's spool was full)
    /// passes when it was written calmly, and is judged line by line when it was a flood.
    fn writing_calmly(&self, now: Instant) -> bool {
        let limit = self.flood.limit();
        if limit == 0 {
            return true;
        }
        let (Some((t0, l0)), Some((_, l1))) = (self.growth.front(), self.growth.back()) else {
            return false;
        };
        let span = now.saturating_duration_since(*t0);
        if span < GROWTH_WINDOW {
            return false; // not known yet: the guard decides
        }
        let seen = self.stats.lines + self.stats.dropped_lines;
        let avg_line = self
            .stats
            .bytes_read
            .checked_div(seen)
            .map_or(80, |b| b.max(1));
        let lines_per_sec = l1.saturating_sub(*l0) as f64 / avg_line as f64 / span.as_secs_f64();
        lines_per_sec <= f64::from(limit)
    }

    pub(crate) fn set_notify_active(&mut self, active: bool) {
        self.stats.notify_active = active;
    }

    /// Picks the first file and position: from the checkpoint, or the newest file.
    pub(crate) fn init(&mut self, start: Option<Checkpoint>) {
        let files = self.list_matching();
        self.seen = files.iter().map(Candidate::key).collect();
        self.last_scan = Some(Instant::now());
        if let Some(cp) = start {
            match self.find_checkpoint(&cp, &files) {
                Some((found, file, size)) if size >= cp.offset => {
                    self.queue_after(&found, &files);
                    self.open_file(found, file, cp.offset);
                    return;
                }
                Some((found, file, _)) => {
                    self.pending
                        .push(TailRecord::Event(TailEvent::CheckpointMissed {
                            checkpoint: cp,
                            reason: CheckpointMiss::Truncated,
                        }));
                    self.stats.truncations += 1;
                    self.queue_after(&found, &files);
                    self.open_file(found, file, 0);
                    return;
                }
                None => {
                    tracing::info!(
                        ino = cp.identity.ino,
                        offset = cp.offset,
                        "checkpoint file not found; reading the newest file from its start"
                    );
                    self.pending
                        .push(TailRecord::Event(TailEvent::CheckpointMissed {
                            checkpoint: cp,
                            reason: CheckpointMiss::NotFound,
                        }));
                }
            }
        }
        let from_end = start.is_none() && self.cfg.start == StartPosition::End;
        if let Some(newest) = files.last().cloned() {
            let key = newest.key();
            match File::open(&newest.path) {
                Ok(file) => {
                    let offset = if from_end {
                        file.metadata().map(|m| m.len()).unwrap_or(0)
                    } else {
                        0
                    };
                    self.open_file(newest, file, offset);
                }
                Err(e) => self.io_error("open", &newest.path, &e),
            }
            if self.cur.is_none() {
                // Retried when the next scan finds it again.
                self.seen.remove(&key);
            }
        }
        self.publish();
    }

    /// Reads until the batch is full or every file is at its end.
    pub(crate) fn step(&mut self, dir_changed: bool) -> StepOut {
        let mut out = Out {
            records: std::mem::take(&mut self.pending),
            lines: 0,
            bytes: 0,
        };
        let mut now = Instant::now();
        if self.cur.is_none() {
            if self.scan_due(now, dir_changed) {
                self.scan(now);
            }
            self.open_next(&mut out);
        }
        // Before reading new bytes: was the file truncated or rewritten since the last step?
        // (Reading first would deliver the rewritten file's bytes from the old offset.)
        let _ = self.check_rewritten(now, true, &mut out);
        self.sample_growth(now);
        let calm = self.writing_calmly(now);
        let mut more = false;
        // Bounds the time of one step (and so the reaction to cancel) while skipping an
        // overlong line or dropping a flood, which fill no batch.
        let read_budget = 4 * self.cfg.batch_max_bytes.max(self.cfg.read_chunk_bytes) as u64;
        let mut read_in_step = 0u64;
        while let Some(cur) = self.cur.as_mut() {
            if out.lines >= self.cfg.batch_max_lines
                || out.bytes >= self.cfg.batch_max_bytes
                || read_in_step >= read_budget
            {
                more = true;
                break;
            }
            match cur.file.read(&mut self.chunk) {
                Ok(0) => {
                    now = Instant::now();
                    if !self.at_eof(now, dir_changed, &mut out) {
                        break;
                    }
                }
                Ok(n) => {
                    now = Instant::now();
                    self.stats.bytes_read += n as u64;
                    read_in_step += n as u64;
                    if let Some(count) = self.flood.notice_due(now) {
                        out.records.push(TailRecord::Event(TailEvent::Dropped {
                            count,
                            limit: self.flood.limit(),
                        }));
                    }
                    let start = cur.offset;
                    cur.offset += n as u64;
                    cur.last_data = now;
                    let Cursor {
                        asm,
                        path,
                        id,
                        line_end,
                        backlog_end,
                        ..
                    } = cur;
                    let exempt_until = if self.cfg.flood_guard_backlog {
                        0
                    } else {
                        *backlog_end
                    };
                    let flood = &mut self.flood;
                    let stats = &mut self.stats;
                    asm.feed(&self.chunk[..n], start, |raw| {
                        *line_end = raw.offset_after;
                        if raw.offset_after <= exempt_until || calm || flood.admit(now) {
                            push_line(&mut out, stats, raw, id, path, false);
                        } else {
                            stats.dropped_lines += 1;
                        }
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let path = cur.path.to_path_buf();
                    self.io_error("read", &path, &e);
                    break;
                }
            }
        }
        now = Instant::now();
        self.flush_idle_partial(now, &mut out);
        if let Some(count) = self.flood.notice_due(now) {
            out.records.push(TailRecord::Event(TailEvent::Dropped {
                count,
                limit: self.flood.limit(),
            }));
        }
        self.publish();
        StepOut {
            records: out.records,
            position: self.position(),
            more,
        }
    }

    /// The earliest instant a step is needed without any file activity (idle partial line,
    /// flood notice).
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let partial = match (&self.cur, self.cfg.partial_line_idle) {
            (Some(cur), Some(idle)) if cur.asm.has_partial() => Some(cur.last_data + idle),
            _ => None,
        };
        match (partial, self.flood.deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn position(&self) -> Option<Checkpoint> {
        self.cur.as_ref().map(|c| Checkpoint {
            identity: c.id,
            offset: c.line_end,
        })
    }

    /// At the end of the current file: checks truncation, replacement and new files. Returns
    /// whether reading should go on (more data may be there, or another file is current now).
    fn at_eof(&mut self, now: Instant, dir_changed: bool, out: &mut Out) -> bool {
        let Some(cur) = self.cur.as_mut() else {
            return false;
        };
        if cur.drained && !self.queue.is_empty() {
            self.open_next(out);
            return true;
        }
        let verify_due = now.saturating_duration_since(self.last_verify) >= self.cfg.poll_interval;
        match self.check_rewritten(now, verify_due, out) {
            Ok(true) => return true,
            Ok(false) => {}
            Err(()) => return false,
        }
        let Some(cur) = self.cur.as_mut() else {
            return false;
        };
        // The path: still this file, gone, or another file.
        match fs::metadata(&cur.path) {
            Ok(meta) => {
                let (dev, ino) = dev_ino(&meta);
                if (dev, ino) != (cur.id.dev, cur.id.ino)
                    && meta.is_file()
                    && !self.queue.iter().any(|c| c.key() == (dev, ino))
                {
                    self.queue.push_back(Candidate {
                        path: cur.path.to_path_buf(),
                        dev,
                        ino,
                        mtime: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    });
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if !cur.gone {
                    cur.gone = true;
                    out.records.push(TailRecord::Event(TailEvent::Removed {
                        path: cur.path.to_path_buf(),
                        file: cur.id,
                    }));
                }
            }
            Err(_) => {}
        }
        if self.scan_due(now, dir_changed) {
            self.scan(now);
        }
        match self.cur.as_mut() {
            Some(cur) if !self.queue.is_empty() => {
                // Read once more to the end: the writer may have appended before the new file
                // appeared.
                cur.drained = true;
                true
            }
            _ => false,
        }
    }

    /// Detects a truncated file (shorter than what was read) or one rewritten in place (its
    /// first bytes no longer match the fingerprint; checked when `verify`, and while the
    /// fingerprint still grows) and restarts it from 0. `Ok(true)`: restarted.
    fn check_rewritten(&mut self, now: Instant, verify: bool, out: &mut Out) -> Result<bool, ()> {
        let Some(cur) = self.cur.as_mut() else {
            return Ok(false);
        };
        let size = match cur.file.metadata() {
            Ok(m) => m.len(),
            Err(e) => {
                let path = cur.path.to_path_buf();
                self.io_error("stat", &path, &e);
                return Err(());
            }
        };
        let mut rewritten = size < cur.offset;
        if !rewritten {
            let grow = cur.id.fingerprint.len < FINGERPRINT_MAX_LEN
                && size > u64::from(cur.id.fingerprint.len);
            if grow || (verify && cur.id.fingerprint.len > 0) {
                if verify {
                    self.last_verify = now;
                }
                match cur.id.fingerprint_matches(&mut cur.file) {
                    Ok(true) if grow => {
                        if let Ok(id) = FileIdentity::of_file(&mut cur.file) {
                            cur.id = id;
                        }
                    }
                    Ok(true) => {}
                    Ok(false) => rewritten = true,
                    Err(e) => {
                        let path = cur.path.to_path_buf();
                        self.io_error("fingerprint", &path, &e);
                        return Err(());
                    }
                }
            }
        }
        if rewritten {
            Ok(self.restart_truncated(size, out))
        } else {
            Ok(false)
        }
    }

    fn restart_truncated(&mut self, size: u64, out: &mut Out) -> bool {
        let Some(cur) = self.cur.as_mut() else {
            return false;
        };
        tracing::info!(path = %cur.path.display(), old_offset = cur.offset, size, "log file truncated; reading from the start");
        out.records.push(TailRecord::Event(TailEvent::Truncated {
            path: cur.path.to_path_buf(),
            file: cur.id,
            old_offset: cur.offset,
            new_size: size,
        }));
        self.stats.truncations += 1;
        if let Err(e) = cur.file.seek(SeekFrom::Start(0)) {
            let path = cur.path.to_path_buf();
            self.io_error("seek", &path, &e);
            return false;
        }
        if let Ok(id) = FileIdentity::of_file(&mut cur.file) {
            cur.id = id;
        }
        cur.offset = 0;
        cur.line_end = 0;
        cur.backlog_end = 0;
        cur.asm.reset();
        true
    }

    /// Finishes the current file (delivering a held partial line) and opens the next queued
    /// one from its start.
    fn open_next(&mut self, out: &mut Out) {
        while let Some(next) = self.queue.pop_front() {
            let file = match File::open(&next.path) {
                Ok(f) => f,
                Err(e) => {
                    self.io_error("open", &next.path, &e);
                    continue;
                }
            };
            if let Some(mut old) = self.cur.take() {
                let offset = old.offset;
                let Cursor {
                    asm,
                    path,
                    id,
                    line_end,
                    ..
                } = &mut old;
                let stats = &mut self.stats;
                asm.flush_partial(offset, |raw| {
                    *line_end = raw.offset_after;
                    push_line(out, stats, raw, id, path, true);
                });
                let (from, from_file) = (old.path.to_path_buf(), old.id);
                let reason = if next.path == from {
                    RotationReason::Replaced
                } else {
                    RotationReason::NewFile
                };
                drop(old);
                if let Some(cur) = self.open_cursor(next, file, 0) {
                    tracing::info!(from = %from.display(), to = %cur.path.display(), ?reason, "log rotated");
                    self.stats.rotations += 1;
                    out.records.push(TailRecord::Event(TailEvent::Rotated {
                        from,
                        from_file,
                        to: cur.path.to_path_buf(),
                        to_file: cur.id,
                        reason,
                    }));
                    self.cur = Some(cur);
                }
            } else {
                self.open_file(next, file, 0);
                out.records.append(&mut self.pending);
            }
            if self.cur.is_some() {
                return;
            }
        }
    }

    /// Makes `file` current at `offset` and records an `Opened` event.
    fn open_file(&mut self, cand: Candidate, file: File, offset: u64) {
        if let Some(cur) = self.open_cursor(cand, file, offset) {
            tracing::info!(path = %cur.path.display(), offset, "following log file");
            self.pending.push(TailRecord::Event(TailEvent::Opened {
                path: cur.path.to_path_buf(),
                file: cur.id,
                offset,
            }));
            self.cur = Some(cur);
        }
    }

    fn open_cursor(&mut self, cand: Candidate, mut file: File, offset: u64) -> Option<Cursor> {
        let res = (|| {
            let size = file.metadata()?.len();
            let id = FileIdentity::of_file(&mut file)?;
            file.seek(SeekFrom::Start(offset))?;
            Ok::<_, io::Error>((size, id))
        })();
        match res {
            Ok((size, id)) => {
                self.seen.insert((id.dev, id.ino));
                self.queue.retain(|c| c.key() != (id.dev, id.ino));
                Some(Cursor {
                    file,
                    path: Arc::from(cand.path.as_path()),
                    id,
                    offset,
                    line_end: offset,
                    asm: LineAssembler::new(self.cfg.max_line_bytes),
                    last_data: Instant::now(),
                    backlog_end: size,
                    gone: false,
                    drained: false,
                })
            }
            Err(e) => {
                self.io_error("open", &cand.path, &e);
                None
            }
        }
    }

    fn flush_idle_partial(&mut self, now: Instant, out: &mut Out) {
        let (Some(cur), Some(idle)) = (self.cur.as_mut(), self.cfg.partial_line_idle) else {
            return;
        };
        if !cur.asm.has_partial() || now.saturating_duration_since(cur.last_data) < idle {
            return;
        }
        let offset = cur.offset;
        let Cursor {
            asm,
            path,
            id,
            line_end,
            ..
        } = cur;
        let stats = &mut self.stats;
        asm.flush_partial(offset, |raw| {
            *line_end = raw.offset_after;
            push_line(out, stats, raw, id, path, true);
        });
    }

    /// Directory sources are listed on a notification or once per poll interval; a fixed path
    /// only while no file is open (afterwards its path is checked at every end of file).
    fn scan_due(&self, now: Instant, dir_changed: bool) -> bool {
        (matches!(self.cfg.source, LogSource::Directory { .. }) || self.cur.is_none())
            && (dir_changed
                || self
                    .last_scan
                    .is_none_or(|t| now.saturating_duration_since(t) >= self.cfg.poll_interval))
    }

    /// Lists the directory; matching files not present at the previous scan (and not current
    /// or queued) are queued, oldest first. A new file whose modification time is older than
    /// the current file's (by more than [`NEWER_SLACK`]) is an old log copied in, not a server
    /// start: it is not queued (and is looked at again while it stays older).
    fn scan(&mut self, now: Instant) {
        self.last_scan = Some(now);
        let files = self.list_matching();
        let cur_key = self.cur.as_ref().map(|c| (c.id.dev, c.id.ino));
        let cur_mtime = self
            .cur
            .as_ref()
            .and_then(|c| c.file.metadata().ok())
            .and_then(|m| m.modified().ok());
        let mut seen = HashSet::with_capacity(files.len());
        for f in &files {
            let key = f.key();
            let is_new = !self.seen.contains(&key)
                && Some(key) != cur_key
                && !self.queue.iter().any(|c| c.key() == key);
            if is_new && cur_mtime.is_some_and(|m| f.mtime + NEWER_SLACK < m) {
                tracing::debug!(path = %f.path.display(), "new log file is older than the current one; not followed");
                continue;
            }
            if is_new {
                tracing::debug!(path = %f.path.display(), "new log file");
                self.queue.push_back(f.clone());
            }
            seen.insert(key);
        }
        self.seen = seen;
    }

    /// Matching files (regular files), oldest first by (mtime, name).
    fn list_matching(&mut self) -> Vec<Candidate> {
        let cfg = Arc::clone(&self.cfg);
        let mut files = match &cfg.source {
            LogSource::File(path) => match fs::metadata(path) {
                Ok(meta) if meta.is_file() => vec![candidate(path.clone(), &meta)],
                _ => Vec::new(),
            },
            LogSource::Directory { dir, .. } => match list_dir(dir, |n| cfg.source.matches_name(n))
            {
                Ok(v) => v,
                Err(e) => {
                    self.io_error("list", dir, &e);
                    Vec::new()
                }
            },
        };
        sort_oldest_first(&mut files);
        files
    }

    /// The file of a checkpoint: same (dev, ino) and fingerprint, among the matching files or,
    /// if renamed, any file of the directory.
    fn find_checkpoint(
        &mut self,
        cp: &Checkpoint,
        files: &[Candidate],
    ) -> Option<(Candidate, File, u64)> {
        let want = (cp.identity.dev, cp.identity.ino);
        let check = |c: &Candidate| -> Option<(Candidate, File, u64)> {
            if c.key() != want {
                return None;
            }
            let mut file = File::open(&c.path).ok()?;
            let meta = file.metadata().ok()?;
            if dev_ino(&meta) != want || !cp.identity.fingerprint_matches(&mut file).ok()? {
                return None;
            }
            Some((c.clone(), file, meta.len()))
        };
        if let Some(found) = files.iter().find_map(check) {
            return Some(found);
        }
        let all = list_dir(self.cfg.source.watch_dir(), |_| true).ok()?;
        all.iter().find_map(check)
    }

    /// Queues the matching files newer than `found`, oldest first.
    fn queue_after(&mut self, found: &Candidate, files: &[Candidate]) {
        let found_key = (found.mtime, file_name(&found.path));
        for f in files {
            if f.key() != found.key() && (f.mtime, file_name(&f.path)) > found_key {
                self.queue.push_back(f.clone());
            }
        }
    }

    fn io_error(&mut self, what: &str, path: &Path, e: &io::Error) {
        self.stats.io_errors += 1;
        let text = format!("{what} {}: {e}", path.display());
        if self.last_error.as_deref() != Some(text.as_str()) {
            tracing::warn!(path = %path.display(), error = %e, "log tail: {what} failed");
            self.last_error = Some(text);
        }
    }

    fn publish(&self) {
        if let Ok(mut st) = self.shared.status.lock() {
            st.current = self.cur.as_ref().map(|c| (c.path.to_path_buf(), c.id));
            st.queued = self.queue.iter().map(Candidate::key).collect();
            st.stats = self.stats;
        }
    }
}

fn push_line(
    out: &mut Out,
    stats: &mut TailStats,
    raw: RawLine<'_>,
    id: &FileIdentity,
    path: &Arc<Path>,
    partial: bool,
) {
    if raw.dropped > 0 {
        stats.truncated_lines += 1;
    }
    stats.lines += 1;
    out.lines += 1;
    out.bytes += raw.bytes.len();
    out.records.push(TailRecord::Line(TailLine {
        text: decode(raw.bytes, raw.dropped),
        file: *id,
        file_path: Arc::clone(path),
        offset_after: raw.offset_after,
        truncated_bytes: raw.dropped,
        partial,
    }));
}

fn candidate(path: PathBuf, meta: &fs::Metadata) -> Candidate {
    let (dev, ino) = dev_ino(meta);
    Candidate {
        path,
        dev,
        ino,
        mtime: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
    }
}

fn file_name(p: &Path) -> &std::ffi::OsStr {
    p.file_name().unwrap_or_default()
}

/// Regular files of `dir` whose (UTF-8) names pass `keep`.
pub(crate) fn list_dir(dir: &Path, keep: impl Fn(&str) -> bool) -> io::Result<Vec<Candidate>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !keep(name) {
            continue;
        }
        // Follows symlinks; a file deleted meanwhile is skipped.
        let Ok(meta) = fs::metadata(entry.path()) else {
            continue;
        };
        if meta.is_file() {
            out.push(candidate(entry.path(), &meta));
        }
    }
    Ok(out)
}

pub(crate) fn sort_oldest_first(files: &mut [Candidate]) {
    files.sort_by(|a, b| (a.mtime, file_name(&a.path)).cmp(&(b.mtime, file_name(&b.path))));
}
