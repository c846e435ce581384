//! Durable, bounded, append-only event spool. See the crate docs for the on-disk format and the
//! durability contract.

mod format;
mod state;

use std::fs::{self, File, OpenOptions};
use std::io;
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use format::{
    DecodeError, RECORD_HEADER_LEN, RECORD_MAGIC, RawRecord, SEGMENT_HEADER_LEN, decode_record,
    encode_record, encode_segment_header, segment_header_ok,
};
use state::PersistedState;

/// Class of a record. Decides what happens when the spool is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Class {
    /// Periodic metrics: droppable. When the spool is full the oldest Metrics are evicted first.
    Metrics = 1,
    /// Log lines: never silently dropped.
    Log = 2,
    /// Status changes (server started/crashed/...): never silently dropped.
    Status = 3,
    /// Anything else: never silently dropped.
    Other = 4,
}

impl Class {
    /// All classes, in wire order.
    pub const ALL: [Class; 4] = [Class::Metrics, Class::Log, Class::Status, Class::Other];

    /// Whether records of this class may be evicted to make room.
    pub fn is_droppable(self) -> bool {
        matches!(self, Class::Metrics)
    }

    fn from_u8(v: u8) -> Option<Class> {
        match v {
            1 => Some(Class::Metrics),
            2 => Some(Class::Log),
            3 => Some(Class::Status),
            4 => Some(Class::Other),
            _ => None,
        }
    }

    fn lane(self) -> usize {
        if self.is_droppable() {
            LANE_METRICS
        } else {
            LANE_EVENTS
        }
    }
}

/// A per-class counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClassCounts {
    pub metrics: u64,
    pub log: u64,
    pub status: u64,
    pub other: u64,
}

impl ClassCounts {
    /// The counter for `class`.
    pub fn get(&self, class: Class) -> u64 {
        match class {
            Class::Metrics => self.metrics,
            Class::Log => self.log,
            Class::Status => self.status,
            Class::Other => self.other,
        }
    }

    fn slot(&mut self, class: Class) -> &mut u64 {
        match class {
            Class::Metrics => &mut self.metrics,
            Class::Log => &mut self.log,
            Class::Status => &mut self.status,
            Class::Other => &mut self.other,
        }
    }

    fn add(&mut self, class: Class, n: u64) {
        let s = self.slot(class);
        *s = s.saturating_add(n);
    }

    /// Sum over all classes.
    pub fn total(&self) -> u64 {
        Class::ALL
            .iter()
            .map(|c| self.get(*c))
            .fold(0, u64::saturating_add)
    }

    fn is_zero(&self) -> bool {
        self.total() == 0
    }
}

/// Spool sizing. All sizes in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolConfig {
    /// Upper bound on the total size of all segment files (default 256 MiB).
    pub max_bytes: u64,
    /// Size at which a segment is sealed and a new one started (default 8 MiB).
    pub segment_bytes: u64,
    /// Largest accepted payload (default 1 MiB). Must fit in a segment with its headers.
    pub max_record_bytes: u32,
    /// Appended bytes are handed to the OS (`write`, no fsync) once this many are buffered
    /// (default 256 KiB). Durability still needs [`Spool::flush`].
    pub write_buffer_bytes: usize,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            max_bytes: 256 << 20,
            segment_bytes: 8 << 20,
            max_record_bytes: 1 << 20,
            write_buffer_bytes: 256 << 10,
        }
    }
}

impl SpoolConfig {
    fn validate(&self) -> Result<(), SpoolError> {
        let bad = |m: &str| Err(SpoolError::Config(m.to_owned()));
        if self.max_record_bytes == 0 {
            return bad("max_record_bytes must be > 0");
        }
        let min_segment =
            SEGMENT_HEADER_LEN + RECORD_HEADER_LEN as u64 + u64::from(self.max_record_bytes);
        if self.segment_bytes < min_segment {
            return bad("segment_bytes must hold the segment header plus one maximal record");
        }
        if self.max_bytes < self.segment_bytes {
            return bad("max_bytes must be >= segment_bytes");
        }
        Ok(())
    }
}

/// One record as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub seq: u64,
    pub class: Class,
    pub payload: Vec<u8>,
}

/// Records lost since the last [`Spool::take_gap`]; turn it into a "gap" event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gap {
    /// Unacknowledged records evicted to make room (only Metrics ever are). Some of them may
    /// already have been sent, so this is an upper bound on what the controller is missing.
    pub evicted: ClassCounts,
    /// Payload+header bytes of the evicted records.
    pub evicted_bytes: u64,
    /// Lowest and highest evicted seq (the evicted seqs lie in this range, interleaved with
    /// records of other classes that were kept).
    pub evicted_seq_range: Option<(u64, u64)>,
    /// Appends refused with [`SpoolError::Full`] or [`SpoolError::RecordTooLarge`] (these
    /// records never got a seq).
    pub rejected: ClassCounts,
}

impl Gap {
    fn is_empty(&self) -> bool {
        self.evicted.is_zero() && self.rejected.is_zero()
    }
}

/// What [`Spool::open`] found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segment files kept.
    pub segments: usize,
    /// Valid records kept (including acked ones in partly acked segments).
    pub records: u64,
    /// Segments whose tail held an incomplete (torn) record; the tail was truncated.
    pub torn_tails: u64,
    /// Corrupt records (bad magic/length/class/CRC or a sequence number out of order). A run of
    /// garbage between two valid records counts as one. Bad segment headers count too.
    pub corrupt_records: u64,
    /// Valid records found after a corrupt one and kept (the segment was rewritten without the
    /// garbage).
    pub salvaged_records: u64,
    /// Bytes cut away (torn tails and corrupt regions).
    pub discarded_bytes: u64,
    /// Fully acked or empty segments deleted at open.
    pub deleted_segments: usize,
    /// The state file (ack mark, seq floor) was unreadable and has been recreated: the ack mark
    /// restarted from 0 (acked records may be resent once) and a new incarnation was chosen.
    pub state_reset: bool,
}

/// Counters for monitoring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolStats {
    /// Bytes in segment files, including not yet written buffers.
    pub bytes: u64,
    /// Records stored (including acked records still sitting in a partly acked segment).
    pub records: u64,
    pub segments: usize,
    /// The seq the next append gets.
    pub next_seq: u64,
    /// Everything `<=` this is durable (and visible to [`Spool::read_from`]).
    pub durable_seq: u64,
    /// Everything `<=` this is acknowledged.
    pub acked_seq: u64,
    /// The lowest stored seq above the ack mark, if any.
    pub oldest_unacked_seq: Option<u64>,
    /// Records evicted before being acked, since open.
    pub evicted: ClassCounts,
    /// Appends refused (full spool or oversized record), since open.
    pub rejected: ClassCounts,
    pub incarnation: u64,
}

/// Errors from the spool.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool I/O error ({op} {path}): {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "spool full: {class:?} record of {needed} bytes does not fit ({used} of {max} bytes used, nothing droppable left)"
    )]
    Full {
        class: Class,
        needed: u64,
        used: u64,
        max: u64,
    },
    #[error("record of {len} bytes exceeds max_record_bytes {max}")]
    RecordTooLarge { len: usize, max: u32 },
    #[error("invalid spool config: {0}")]
    Config(String),
    #[error("spool directory {0} is in use by another process")]
    Locked(PathBuf),
    #[error("spool unusable after a failed fsync; reopen it to re-validate the files on disk")]
    Poisoned,
    #[error("sequence numbers exhausted")]
    SeqExhausted,
}

type Result<T, E = SpoolError> = std::result::Result<T, E>;

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SpoolError + 'a {
    move |source| SpoolError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

const LANE_METRICS: usize = 0;
const LANE_EVENTS: usize = 1;
const LANE_PREFIX: [&str; 2] = ["m", "e"];
const LOCK_FILE: &str = "spool.lock";
/// One sparse index entry every this many records.
const INDEX_EVERY: u64 = 64;
const READ_CHUNK: usize = 256 << 10;

struct Segment {
    path: PathBuf,
    file: File,
    /// Bytes in the file (header included).
    len: u64,
    /// Encoded records not yet written to the file; they follow `len` logically.
    buf: Vec<u8>,
    /// Bytes written since the last fsync.
    unsynced: bool,
    records: u64,
    first_rec_seq: Option<u64>,
    last_seq: Option<u64>,
    /// (seq, offset) of every INDEX_EVERY-th record.
    index: Vec<(u64, u64)>,
    sealed: bool,
}

impl Segment {
    fn size(&self) -> u64 {
        self.len + self.buf.len() as u64
    }

    fn push(&mut self, seq: u64, class: Class, payload: &[u8]) {
        let offset = self.size();
        if self.records.is_multiple_of(INDEX_EVERY) {
            self.index.push((seq, offset));
        }
        encode_record(&mut self.buf, seq, class, payload);
        self.records += 1;
        self.first_rec_seq.get_or_insert(seq);
        self.last_seq = Some(seq);
    }

    /// Hands the buffer to the OS (positional write at `len`, so a failed partial write is
    /// simply overwritten by the retry).
    fn spill(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.file
            .write_all_at(&self.buf, self.len)
            .map_err(io_err("write", &self.path))?;
        self.len += self.buf.len() as u64;
        self.buf.clear();
        self.unsynced = true;
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        self.spill()?;
        if self.unsynced {
            self.file.sync_data().map_err(io_err("fsync", &self.path))?;
            self.unsynced = false;
        }
        Ok(())
    }

    /// Offset from which to scan for the first record with seq > `after`.
    fn start_offset(&self, after: u64) -> u64 {
        let i = self
            .index
            .partition_point(|(s, _)| *s <= after.saturating_add(1));
        if i == 0 {
            SEGMENT_HEADER_LEN
        } else {
            self.index[i - 1].1
        }
    }

    /// Calls `f` for every record from `offset` on (file, then buffer).
    fn scan(
        &self,
        mut offset: u64,
        max_payload: u32,
        mut f: impl FnMut(RawRecord<'_>) -> ControlFlow<()>,
    ) -> io::Result<()> {
        let corrupt = |off: u64| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("corrupt record at offset {off} of {}", self.path.display()),
            )
        };
        let mut chunk = Vec::new();
        let mut want = READ_CHUNK;
        while offset < self.len {
            let n = usize::try_from(self.len - offset)
                .unwrap_or(usize::MAX)
                .min(want);
            chunk.resize(n, 0);
            self.file.read_exact_at(&mut chunk, offset)?;
            let mut pos = 0;
            want = READ_CHUNK;
            loop {
                match decode_record(&chunk[pos..], max_payload) {
                    Ok(r) => {
                        let len = r.encoded_len();
                        if f(r).is_break() {
                            return Ok(());
                        }
                        pos += len;
                    }
                    Err(DecodeError::Incomplete { needed }) => {
                        if pos == chunk.len() {
                            break;
                        }
                        if pos == 0 {
                            if offset + needed as u64 > self.len {
                                return Err(corrupt(offset));
                            }
                            want = needed.max(READ_CHUNK);
                        }
                        break;
                    }
                    Err(DecodeError::Corrupt) => return Err(corrupt(offset + pos as u64)),
                }
            }
            offset += pos as u64;
        }
        let mut pos = usize::try_from(offset - self.len).unwrap_or(usize::MAX);
        while pos < self.buf.len() {
            match decode_record(&self.buf[pos..], max_payload) {
                Ok(r) => {
                    let len = r.encoded_len();
                    if f(r).is_break() {
                        return Ok(());
                    }
                    pos += len;
                }
                Err(_) => return Err(corrupt(self.len + pos as u64)),
            }
        }
        Ok(())
    }

    /// The lowest seq > `after` in this segment.
    fn first_after(&self, after: u64, max_payload: u32) -> io::Result<Option<u64>> {
        if self.first_rec_seq.is_some_and(|s| s > after) {
            return Ok(self.first_rec_seq);
        }
        let mut found = None;
        self.scan(self.start_offset(after), max_payload, |r| {
            if r.seq > after {
                found = Some(r.seq);
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?;
        Ok(found)
    }
}

#[derive(Default)]
struct Lane {
    /// Ordered by seq; only the last one can be unsealed (the active segment).
    segments: Vec<Segment>,
}

/// A durable, bounded, append-only event spool in one directory. See the crate docs.
///
/// Not thread-safe by itself (`&mut self`); all I/O is blocking std I/O, so own it from one
/// task and call it via `spawn_blocking`/a dedicated thread, or accept short blocking on fsync.
pub struct Spool {
    dir: PathBuf,
    cfg: SpoolConfig,
    _lock: Flock<File>,
    lanes: [Lane; 2],
    next_seq: u64,
    durable_seq: u64,
    acked: u64,
    seq_floor: u64,
    incarnation: u64,
    total_bytes: u64,
    evicted: ClassCounts,
    rejected: ClassCounts,
    gap: Gap,
    report: RecoveryReport,
    poisoned: bool,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("dir", &self.dir)
            .field("next_seq", &self.next_seq)
            .field("durable_seq", &self.durable_seq)
            .field("acked", &self.acked)
            .field("total_bytes", &self.total_bytes)
            .finish_non_exhaustive()
    }
}

fn segment_name(lane: usize, first_seq: u64) -> String {
    format!("{}-{first_seq:020}.seg", LANE_PREFIX[lane])
}

fn parse_segment_name(name: &str) -> Option<(usize, u64)> {
    let stem = name.strip_suffix(".seg")?;
    let (prefix, digits) = stem.split_once('-')?;
    let lane = LANE_PREFIX.iter().position(|p| *p == prefix)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((lane, digits.parse().ok()?))
}

/// Finds the next offset >= `from` holding a valid record with seq > `prev`.
fn resync(bytes: &[u8], from: usize, prev: u64, max_payload: u32) -> Option<usize> {
    let mut p = from;
    while p + RECORD_HEADER_LEN <= bytes.len() {
        let i = bytes[p..].windows(4).position(|w| w == RECORD_MAGIC)?;
        p += i;
        if let Ok(r) = decode_record(&bytes[p..], max_payload)
            && r.seq > prev
        {
            return Some(p);
        }
        p += 1;
    }
    None
}

struct Recovered {
    segment: Option<Segment>,
    /// Highest seq that a discarded (corrupt) record plausibly carried.
    seq_hint: u64,
}

fn recover_segment(
    path: &Path,
    lane: usize,
    prev_seq: &mut u64,
    acked: u64,
    max_payload: u32,
    report: &mut RecoveryReport,
) -> Result<Recovered> {
    let bytes = fs::read(path).map_err(io_err("read", path))?;
    let mut rewrite = !segment_header_ok(&bytes, lane as u8);
    if rewrite {
        report.corrupt_records += 1;
        tracing::warn!(path = %path.display(), "spool segment header invalid; salvaging records");
    }
    let mut pos = (SEGMENT_HEADER_LEN as usize).min(bytes.len());
    let mut clean_end = pos;
    let mut damaged = false;
    let mut keep: Vec<(usize, usize)> = Vec::new(); // valid record byte ranges
    let mut seq_hint = 0;
    let start_prev = *prev_seq;
    let mut seg_prev = start_prev;
    while pos < bytes.len() {
        let res = decode_record(&bytes[pos..], max_payload);
        if let Ok(r) = res
            && r.seq > seg_prev
        {
            keep.push((pos, pos + r.encoded_len()));
            seg_prev = r.seq;
            pos += r.encoded_len();
            if damaged {
                report.salvaged_records += 1;
                rewrite = true;
            } else {
                clean_end = pos;
            }
            continue;
        }
        // A header with the right magic and a plausible seq: remember the seq so it is never
        // handed out again (that record may have been durable and sent before it rotted).
        if bytes.len() >= pos + 16 && bytes[pos..pos + 4] == RECORD_MAGIC {
            let mut s = [0u8; 8];
            s.copy_from_slice(&bytes[pos + 8..pos + 16]);
            let s = u64::from_le_bytes(s);
            if s > seg_prev && s - seg_prev < (1 << 20) {
                seq_hint = seq_hint.max(s);
            }
        }
        let next = resync(&bytes, pos + 1, seg_prev, max_payload);
        let end = next.unwrap_or(bytes.len());
        report.discarded_bytes += (end - pos) as u64;
        match (res, next) {
            (Err(DecodeError::Incomplete { .. }), None) => {
                report.torn_tails += 1;
                tracing::warn!(path = %path.display(), offset = pos, "spool: torn record at tail truncated");
            }
            _ => {
                report.corrupt_records += 1;
                tracing::warn!(path = %path.display(), offset = pos, "spool: corrupt record skipped");
            }
        }
        damaged = true;
        pos = end;
    }
    *prev_seq = seg_prev;

    let last_seq = if keep.is_empty() {
        None
    } else {
        Some(seg_prev)
    };
    if last_seq.is_none_or(|s| s <= acked) {
        report.deleted_segments += 1;
        fs::remove_file(path).map_err(io_err("remove", path))?;
        return Ok(Recovered {
            segment: None,
            seq_hint,
        });
    }

    let len = if rewrite {
        let mut out = Vec::with_capacity(bytes.len());
        out.extend_from_slice(&encode_segment_header(lane as u8));
        for (a, b) in &keep {
            out.extend_from_slice(&bytes[*a..*b]);
        }
        let tmp = path.with_extension("seg.tmp");
        {
            let f = File::create(&tmp).map_err(io_err("create", &tmp))?;
            f.write_all_at(&out, 0).map_err(io_err("write", &tmp))?;
            f.sync_data().map_err(io_err("fsync", &tmp))?;
        }
        fs::rename(&tmp, path).map_err(io_err("rename", path))?;
        out.len() as u64
    } else {
        clean_end as u64
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(io_err("open", path))?;
    if !rewrite && (clean_end as u64) < bytes.len() as u64 {
        file.set_len(len).map_err(io_err("truncate", path))?;
    }
    // Records that survived a process crash may still be only in the page cache.
    file.sync_data().map_err(io_err("fsync", path))?;

    // Rebuild the sparse index from the kept records' positions in the (possibly rewritten) file.
    let mut index = Vec::new();
    let mut off = SEGMENT_HEADER_LEN;
    let mut first_rec_seq = None;
    for (i, (a, b)) in keep.iter().enumerate() {
        let mut s = [0u8; 8];
        s.copy_from_slice(&bytes[a + 8..a + 16]);
        let seq = u64::from_le_bytes(s);
        first_rec_seq.get_or_insert(seq);
        if (i as u64).is_multiple_of(INDEX_EVERY) {
            index.push((seq, off));
        }
        off += (b - a) as u64;
    }
    report.segments += 1;
    report.records += keep.len() as u64;
    Ok(Recovered {
        segment: Some(Segment {
            path: path.to_path_buf(),
            file,
            len,
            buf: Vec::new(),
            unsynced: false,
            records: keep.len() as u64,
            first_rec_seq,
            last_seq,
            index,
            sealed: true,
        }),
        seq_hint,
    })
}

impl Spool {
    /// Opens (creating if needed) the spool in `dir`, recovering whatever is on disk. Never
    /// panics on garbage: corrupt records are skipped and counted in [`Spool::recovery_report`].
    /// Takes an exclusive `flock` on `dir/spool.lock` (a second opener gets
    /// [`SpoolError::Locked`]).
    pub fn open(dir: impl AsRef<Path>, cfg: SpoolConfig) -> Result<Spool> {
        cfg.validate()?;
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(io_err("create dir", &dir))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io_err("open", &lock_path))?;
        let lock = Flock::lock(lock_file, FlockArg::LockExclusiveNonblock)
            .map_err(|_| SpoolError::Locked(dir.clone()))?;

        let mut report = RecoveryReport::default();
        let (mut st, mut dirty) = match state::load(&dir).map_err(io_err("read", &dir))? {
            state::Loaded::Ok(s) => (s, false),
            loaded => {
                if let state::Loaded::Corrupt(why) = loaded {
                    tracing::warn!(dir = %dir.display(), %why, "spool state file unreadable; resetting it");
                    report.state_reset = true;
                }
                let st = PersistedState {
                    version: 1,
                    incarnation: rand::random::<u64>() | 1,
                    acked: 0,
                    seq_floor: 1,
                };
                (st, true)
            }
        };

        let mut names: [Vec<(u64, PathBuf)>; 2] = [Vec::new(), Vec::new()];
        for entry in fs::read_dir(&dir).map_err(io_err("list", &dir))? {
            let entry = entry.map_err(io_err("list", &dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.ends_with(".tmp") {
                let p = entry.path();
                fs::remove_file(&p).map_err(io_err("remove", &p))?;
            } else if let Some((lane, first)) = parse_segment_name(name) {
                names[lane].push((first, entry.path()));
            }
        }

        let mut lanes: [Lane; 2] = Default::default();
        let mut max_seq = 0u64;
        let mut seq_hint = 0u64;
        for (lane, list) in names.iter_mut().enumerate() {
            list.sort();
            let mut prev = 0u64;
            for (_, path) in list.iter() {
                let rec = recover_segment(
                    path,
                    lane,
                    &mut prev,
                    st.acked,
                    cfg.max_record_bytes,
                    &mut report,
                )?;
                seq_hint = seq_hint.max(rec.seq_hint);
                if let Some(seg) = rec.segment {
                    lanes[lane].segments.push(seg);
                }
            }
            max_seq = max_seq.max(prev);
        }
        if report.deleted_segments > 0 || report.corrupt_records > 0 {
            state::sync_dir(&dir).map_err(io_err("fsync", &dir))?;
        }

        let next_seq = st
            .seq_floor
            .max(st.acked.saturating_add(1))
            .max(max_seq.saturating_add(1))
            .max(seq_hint.saturating_add(1));
        if seq_hint > 0 && seq_hint.saturating_add(1) > st.seq_floor {
            st.seq_floor = seq_hint.saturating_add(1);
            dirty = true;
        }
        if dirty {
            state::store(&dir, &st).map_err(io_err("write state", &dir))?;
        }
        let total_bytes = lanes
            .iter()
            .flat_map(|l| &l.segments)
            .map(Segment::size)
            .sum();
        if report != RecoveryReport::default() {
            tracing::info!(dir = %dir.display(), ?report, "spool recovered");
        }
        Ok(Spool {
            dir,
            cfg,
            _lock: lock,
            lanes,
            next_seq,
            durable_seq: next_seq - 1,
            acked: st.acked,
            seq_floor: st.seq_floor,
            incarnation: st.incarnation,
            total_bytes,
            evicted: ClassCounts::default(),
            rejected: ClassCounts::default(),
            gap: Gap::default(),
            report,
            poisoned: false,
        })
    }

    /// What [`Spool::open`] found and repaired.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.report
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Random id chosen when the spool's state was created. A different incarnation means the
    /// sequence space started over (state dir lost); the controller may use it to reset dedup.
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// The seq the next append will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Everything `<=` this is durable.
    pub fn durable_seq(&self) -> u64 {
        self.durable_seq
    }

    /// Everything `<=` this is acknowledged.
    pub fn acked_seq(&self) -> u64 {
        self.acked
    }

    fn persist_state(&mut self) -> Result<()> {
        let st = PersistedState {
            version: 1,
            incarnation: self.incarnation,
            acked: self.acked,
            seq_floor: self.seq_floor,
        };
        state::store(&self.dir, &st).map_err(io_err("write state", &self.dir))
    }

    fn check_poisoned(&self) -> Result<()> {
        if self.poisoned {
            Err(SpoolError::Poisoned)
        } else {
            Ok(())
        }
    }

    /// Appends a record and returns its seq. The record is buffered: it is durable (and visible
    /// to [`Spool::read_from`]) once a later [`Spool::flush`] returns `Ok`.
    ///
    /// When the record does not fit under `max_bytes`, the oldest Metrics segments are evicted
    /// (counted in [`Spool::take_gap`]) until it does; if nothing droppable is left the append
    /// fails with [`SpoolError::Full`] (counted as rejected) and nothing is written. Full is
    /// an error, not back-pressure: the caller decides whether to retry after the next ack.
    pub fn append(&mut self, class: Class, payload: &[u8]) -> Result<u64> {
        self.check_poisoned()?;
        if payload.len() > self.cfg.max_record_bytes as usize {
            self.rejected.add(class, 1);
            self.gap.rejected.add(class, 1);
            return Err(SpoolError::RecordTooLarge {
                len: payload.len(),
                max: self.cfg.max_record_bytes,
            });
        }
        let seq = self.next_seq;
        let after = seq.checked_add(1).ok_or(SpoolError::SeqExhausted)?;
        let lane = class.lane();
        let rec_len = (RECORD_HEADER_LEN + payload.len()) as u64;
        let needs_new = loop {
            let needs_new = match self.lanes[lane].segments.last() {
                Some(s) if !s.sealed => s.size() + rec_len > self.cfg.segment_bytes,
                _ => true,
            };
            let needed = rec_len + if needs_new { SEGMENT_HEADER_LEN } else { 0 };
            if self.total_bytes + needed <= self.cfg.max_bytes {
                break needs_new;
            }
            if !self.evict_oldest_metrics()? {
                self.rejected.add(class, 1);
                self.gap.rejected.add(class, 1);
                return Err(SpoolError::Full {
                    class,
                    needed,
                    used: self.total_bytes,
                    max: self.cfg.max_bytes,
                });
            }
        };
        if needs_new {
            self.roll(lane, seq)?;
        }
        let write_buffer = self.cfg.write_buffer_bytes;
        let Some(seg) = self.lanes[lane].segments.last_mut() else {
            return Err(SpoolError::Io {
                op: "append",
                path: self.dir.clone(),
                source: io::Error::other("no active segment"),
            });
        };
        seg.push(seq, class, payload);
        self.total_bytes += rec_len;
        self.next_seq = after;
        if seg.buf.len() >= write_buffer
            && let Err(e) = seg.spill()
        {
            // The record is buffered and counted; the error resurfaces at the next flush.
            tracing::warn!(error = %e, "spool: write failed, will retry at flush");
        }
        Ok(seq)
    }

    /// Seals the lane's active segment (fsynced) and starts a new one whose name is `first_seq`.
    fn roll(&mut self, lane: usize, first_seq: u64) -> Result<()> {
        if let Some(seg) = self.lanes[lane].segments.last_mut()
            && !seg.sealed
        {
            seg.sync()?;
            seg.sealed = true;
        }
        let path = self.dir.join(segment_name(lane, first_seq));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_err("create", &path))?;
        let init = file
            .write_all_at(&encode_segment_header(lane as u8), 0)
            .map_err(io_err("write", &path))
            .and_then(|()| state::sync_dir(&self.dir).map_err(io_err("fsync", &self.dir)));
        if let Err(e) = init {
            // Do not leave a half-made file behind: the retry creates the same name.
            drop(file);
            let _ = fs::remove_file(&path);
            return Err(e);
        }
        self.total_bytes += SEGMENT_HEADER_LEN;
        self.lanes[lane].segments.push(Segment {
            path,
            file,
            len: SEGMENT_HEADER_LEN,
            buf: Vec::new(),
            unsynced: true,
            records: 0,
            first_rec_seq: None,
            last_seq: None,
            index: Vec::new(),
            sealed: false,
        });
        Ok(())
    }

    /// Evicts the oldest Metrics segment; false when there is none.
    fn evict_oldest_metrics(&mut self) -> Result<bool> {
        let lane = &mut self.lanes[LANE_METRICS];
        if lane.segments.is_empty() {
            return Ok(false);
        }
        let seg = lane.segments.remove(0);
        let acked = self.acked;
        let mut n = 0u64;
        let mut bytes = 0u64;
        let mut range: Option<(u64, u64)> = None;
        let scanned = seg.scan(seg.start_offset(acked), self.cfg.max_record_bytes, |r| {
            if r.seq > acked {
                n += 1;
                bytes += r.encoded_len() as u64;
                range = Some(range.map_or((r.seq, r.seq), |(a, _)| (a, r.seq)));
            }
            ControlFlow::Continue(())
        });
        if let Err(e) = scanned {
            tracing::warn!(path = %seg.path.display(), error = %e, "spool: evicted segment unreadable; counting all its records");
            n = seg.records;
            range = seg.first_rec_seq.zip(seg.last_seq);
        }
        self.evicted.add(Class::Metrics, n);
        self.gap.evicted.add(Class::Metrics, n);
        self.gap.evicted_bytes += bytes;
        if let Some((a, b)) = range {
            self.gap.evicted_seq_range = Some(
                self.gap
                    .evicted_seq_range
                    .map_or((a, b), |(x, y)| (x.min(a), y.max(b))),
            );
        }
        // Those seqs may have been sent: never hand them out again, even if every later
        // record is lost with the state dir's segments.
        if let Some(last) = seg.last_seq
            && last >= self.seq_floor
        {
            self.seq_floor = last + 1;
            self.persist_state()?;
        }
        self.total_bytes -= seg.size();
        tracing::warn!(path = %seg.path.display(), records = n, "spool full: evicted oldest metrics segment");
        remove_segment_file(seg)?;
        Ok(true)
    }

    /// Group commit: writes all buffered records and fsyncs the active segments. When it
    /// returns `Ok`, every record appended before the call is durable and readable through
    /// [`Spool::read_from`]. A failed fsync poisons the spool (data may be lost in the kernel;
    /// retrying would falsely report success): reopen it.
    pub fn flush(&mut self) -> Result<()> {
        self.check_poisoned()?;
        for lane in &mut self.lanes {
            for seg in lane.segments.iter_mut().filter(|s| !s.sealed) {
                if let Err(e) = seg.sync() {
                    if matches!(e, SpoolError::Io { op: "fsync", .. }) {
                        self.poisoned = true;
                    }
                    return Err(e);
                }
            }
        }
        self.durable_seq = self.next_seq - 1;
        Ok(())
    }

    /// Marks everything `<= seq` acknowledged, persists the mark (fsynced) and deletes segments
    /// that hold only acked records. `seq` beyond the last appended record is clamped to it.
    pub fn ack(&mut self, seq: u64) -> Result<()> {
        self.check_poisoned()?;
        let seq = seq.min(self.next_seq - 1);
        if seq <= self.acked {
            return Ok(());
        }
        self.acked = seq;
        self.persist_state()?;
        for lane in &mut self.lanes {
            let n = lane
                .segments
                .iter()
                .take_while(|s| s.last_seq.is_some_and(|l| l <= seq))
                .count();
            for seg in lane.segments.drain(..n) {
                self.total_bytes -= seg.size();
                remove_segment_file(seg)?;
            }
        }
        Ok(())
    }

    /// Makes the next seq at least `seq + 1` (persisted, fsynced). Use it when the controller
    /// reports a high-water mark above the local state (state dir lost or restored). Returns
    /// the new next seq. Records already in the spool keep their seqs.
    pub fn bump_to(&mut self, seq: u64) -> Result<u64> {
        self.check_poisoned()?;
        let want = seq.checked_add(1).ok_or(SpoolError::SeqExhausted)?;
        if want > self.next_seq {
            // Buffered records keep their (lower) seqs; they become durable at the next flush.
            self.next_seq = want;
            self.seq_floor = want;
            self.persist_state()?;
        }
        Ok(self.next_seq)
    }

    /// Durable records with seq > `max(after_seq, acked)`, in seq order, at most `max_records`
    /// and at most `max_bytes` of payload (but always at least one record if any is available,
    /// so an oversized record cannot stall the stream). Only records made durable by a
    /// completed [`Spool::flush`] are returned, so a seq the controller has seen is never
    /// reused after a crash.
    pub fn read_from(
        &self,
        after_seq: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> Result<Vec<Record>> {
        let start = after_seq.max(self.acked);
        let end = self.durable_seq;
        if start >= end || max_records == 0 {
            return Ok(Vec::new());
        }
        let mut per_lane: [Vec<Record>; 2] = [Vec::new(), Vec::new()];
        for (lane, out) in self.lanes.iter().zip(per_lane.iter_mut()) {
            let mut bytes = 0usize;
            for seg in lane
                .segments
                .iter()
                .filter(|s| s.last_seq.is_some_and(|l| l > start))
            {
                if seg.first_rec_seq.is_some_and(|f| f > end) || out.len() >= max_records {
                    break;
                }
                let mut done = false;
                seg.scan(seg.start_offset(start), self.cfg.max_record_bytes, |r| {
                    if r.seq <= start {
                        return ControlFlow::Continue(());
                    }
                    if r.seq > end
                        || out.len() >= max_records
                        || (bytes >= max_bytes && !out.is_empty())
                    {
                        done = true;
                        return ControlFlow::Break(());
                    }
                    bytes += r.payload.len();
                    out.push(Record {
                        seq: r.seq,
                        class: r.class,
                        payload: r.payload.to_vec(),
                    });
                    ControlFlow::Continue(())
                })
                .map_err(io_err("read", &seg.path))?;
                if done {
                    break;
                }
            }
        }
        // Merge the two sorted lanes and apply the limits to the merged order.
        let [m, e] = per_lane;
        let mut out = Vec::with_capacity(max_records.min(m.len() + e.len()));
        let (mut mi, mut ei) = (m.into_iter().peekable(), e.into_iter().peekable());
        let mut bytes = 0usize;
        while out.len() < max_records {
            let take_m = match (mi.peek(), ei.peek()) {
                (Some(a), Some(b)) => a.seq < b.seq,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            let next = if take_m { mi.next() } else { ei.next() };
            let Some(r) = next else { break };
            if !out.is_empty() && bytes + r.payload.len() > max_bytes {
                break;
            }
            bytes += r.payload.len();
            out.push(r);
        }
        Ok(out)
    }

    /// Returns and resets what was lost since the last call (None if nothing).
    pub fn take_gap(&mut self) -> Option<Gap> {
        if self.gap.is_empty() {
            return None;
        }
        Some(std::mem::take(&mut self.gap))
    }

    /// Current counters. Cheap (at most a short scan to find the oldest unacked seq).
    pub fn stats(&self) -> SpoolStats {
        let mut oldest: Option<u64> = None;
        for lane in &self.lanes {
            let Some(seg) = lane
                .segments
                .iter()
                .find(|s| s.last_seq.is_some_and(|l| l > self.acked))
            else {
                continue;
            };
            let first = seg
                .first_after(self.acked, self.cfg.max_record_bytes)
                .ok()
                .flatten()
                .or(seg.first_rec_seq);
            oldest = match (oldest, first) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        let segs = self.lanes.iter().flat_map(|l| &l.segments);
        SpoolStats {
            bytes: self.total_bytes,
            records: segs.clone().map(|s| s.records).sum(),
            segments: segs.count(),
            next_seq: self.next_seq,
            durable_seq: self.durable_seq,
            acked_seq: self.acked,
            oldest_unacked_seq: oldest,
            evicted: self.evicted,
            rejected: self.rejected,
            incarnation: self.incarnation,
        }
    }

    /// Flushes and closes the spool.
    pub fn close(mut self) -> Result<()> {
        self.flush()
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        if !self.poisoned
            && let Err(e) = self.flush()
        {
            tracing::warn!(error = %e, "spool: flush on drop failed");
        }
    }
}

fn remove_segment_file(seg: Segment) -> Result<()> {
    let Segment { path, file, .. } = seg;
    drop(file);
    match fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(SpoolError::Io {
            op: "remove",
            path,
            source: e,
        }),
    }
}
