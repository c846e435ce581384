//! Building blocks for the Languard agent, three independent modules:
//!
//! - [`spool`]: a durable, bounded, append-only event spool on disk, so nothing the agent
//!   observes is lost when the agent, the controller or the link fails.
//! - [`policy`]: a pure crash/restart policy (restart limits in a window, exponential backoff).
//! - [`procid`]: Linux `/proc` process identity to re-attach to game servers that outlived an
//!   agent restart, and exit detection for processes that are not our children.
//!
//! # Spool
//!
//! Records are opaque byte payloads (the agent stores encoded protobuf) with a `u64` sequence
//! number assigned by the spool ([`Spool::append`] returns it; strictly increasing, never reused,
//! never going backwards across restarts) and a [`Class`]. Metrics are droppable; Log, Status and
//! Other are never silently dropped.
//!
//! ## Directory layout
//!
//! ```text
//! <dir>/spool.lock                     flock(LOCK_EX) held while open: one process per spool
//! <dir>/spool.state                    JSON {version, incarnation, acked, seq_floor}, replaced
//!                                      atomically (write tmp, fsync, rename, fsync dir)
//! <dir>/m-<first seq, 20 digits>.seg   Metrics lane segments
//! <dir>/e-<first seq, 20 digits>.seg   event lane segments (Log, Status, Other)
//! ```
//!
//! The two lanes share one sequence space; [`Spool::read_from`] merges them in seq order. Keeping
//! Metrics in their own segments is what lets the spool drop the oldest Metrics without touching
//! Log/Status records: eviction deletes whole Metrics segments, oldest first.
//!
//! ## Segment format (all integers little-endian)
//!
//! ```text
//! segment header, 16 bytes:  "LGSPOOL\0" | format version u32 = 1 | lane u8 (0 m, 1 e) | 3 zero
//! then records, each:
//!   0  magic "LGR1"         4 bytes
//!   4  payload length       u32 (<= max_record_bytes)
//!   8  seq                  u64
//!  16  class                u8 (1 Metrics, 2 Log, 3 Status, 4 Other)
//!  17  reserved             3 zero bytes
//!  20  CRC32 (IEEE, crc32fast) of bytes 4..20 followed by the payload
//!  24  payload
//! ```
//!
//! A segment is sealed (fsynced) when the next record would take it past `segment_bytes`
//! (default 8 MiB), and a new one is started, named after the seq of its first record.
//!
//! ## Durability contract (group commit)
//!
//! - [`Spool::append`] assigns the seq and buffers the encoded record in memory (handing it to
//!   the OS with `write(2)` once `write_buffer_bytes` are buffered). It is **not** durable yet.
//! - [`Spool::flush`] writes the buffers and `fdatasync`s the active segments. When it returns
//!   `Ok`, every record appended before the call is durable. Call it per batch (e.g. every
//!   1,000 records or every 50 ms, whichever first): one fsync per batch instead of per record.
//! - [`Spool::read_from`] returns **only durable records** (seq <= [`Spool::durable_seq`]), so
//!   nothing leaves the host before it is durable, and a seq the controller has seen is never
//!   handed out again after a crash. Records appended but not flushed when the process or host
//!   dies may be lost (their seqs may then be reused; nobody has seen them).
//! - New segment files are created with an fsync of the directory; the state file is replaced
//!   atomically and fsynced. A failed `fdatasync` poisons the spool ([`SpoolError::Poisoned`]):
//!   reopen it, which re-validates what is really on disk.
//!
//! ## Acknowledgement
//!
//! [`Spool::ack`]`(seq)` acknowledges everything `<= seq`, persists the mark (fsynced) before
//! deleting the segments that hold only acked records, so a restart does not resend them.
//! [`Spool::read_from`] never returns records at or below the ack mark.
//!
//! ## Bound and loss accounting
//!
//! The total size of all segments stays `<= max_bytes` (default 256 MiB). An append that does
//! not fit evicts the oldest Metrics segment(s) first (unacked records in them are counted in
//! [`Gap::evicted`] with their seq range, to be turned into a "gap" event by the caller via
//! [`Spool::take_gap`]). If no Metrics are left to evict, the append fails with
//! [`SpoolError::Full`] and is counted in [`Gap::rejected`] / [`SpoolStats::rejected`]: the
//! spool never blocks and never silently drops a Log/Status/Other record; the caller decides
//! (retry after the next ack, count and report). Evicted seqs raise the persisted seq floor so
//! they are never reused.
//!
//! ## Recovery (on [`Spool::open`])
//!
//! Every segment is scanned and each record validated (magic, length bound, class, reserved
//! bytes, CRC, seq strictly increasing within the lane). An incomplete record at the end (torn
//! write) is truncated away. A corrupt record is skipped: the scan resynchronises on the next
//! valid record (magic + CRC), and if valid records follow, the segment is rewritten without the
//! garbage (tmp file, fsync, rename), so good data around a bad record is kept. All of it is
//! counted in the [`RecoveryReport`]; nothing panics on garbage. Segments that end up empty or
//! fully acked are deleted. The next seq is the maximum of the persisted floor, `acked + 1`, the
//! highest seq on disk + 1 and one past the seq that a corrupt or torn but recognisable record
//! header carried (conservative: that record may have been sent before it rotted).
//! [`Spool::bump_to`] raises it further when the controller's high-water mark is higher (state
//! dir lost). [`Spool::incarnation`] is a random id chosen when the state is created: a changed
//! incarnation tells the controller the sequence space restarted.
//!
//! [`Spool`]: spool::Spool
//! [`Spool::append`]: spool::Spool::append
//! [`Spool::flush`]: spool::Spool::flush
//! [`Spool::read_from`]: spool::Spool::read_from
//! [`Spool::durable_seq`]: spool::Spool::durable_seq
//! [`Spool::ack`]: spool::Spool::ack
//! [`Spool::take_gap`]: spool::Spool::take_gap
//! [`Spool::open`]: spool::Spool::open
//! [`Spool::bump_to`]: spool::Spool::bump_to
//! [`Spool::incarnation`]: spool::Spool::incarnation
//! [`Class`]: spool::Class
//! [`Gap::evicted`]: spool::Gap::evicted
//! [`Gap::rejected`]: spool::Gap::rejected
//! [`SpoolStats::rejected`]: spool::SpoolStats::rejected
//! [`SpoolError::Full`]: spool::SpoolError::Full
//! [`SpoolError::Poisoned`]: spool::SpoolError::Poisoned
//! [`RecoveryReport`]: spool::RecoveryReport
//!
//! ```
//! use languard_spool::spool::{Class, Spool, SpoolConfig};
//! let dir = tempfile::tempdir().unwrap();
//! let mut spool = Spool::open(dir.path(), SpoolConfig::default()).unwrap();
//! let a = spool.append(Class::Log, b"line 1").unwrap();
//! let b = spool.append(Class::Metrics, b"cpu 3%").unwrap();
//! assert!(spool.read_from(0, 100, 1 << 20).unwrap().is_empty()); // not durable yet
//! spool.flush().unwrap();
//! let recs = spool.read_from(0, 100, 1 << 20).unwrap();
//! assert_eq!(recs.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![a, b]);
//! spool.ack(a).unwrap();
//! assert_eq!(spool.read_from(0, 100, 1 << 20).unwrap()[0].seq, b);
//! ```

pub mod policy;
pub mod procid;
pub mod spool;

pub use policy::{CrashHistory, Decision, RestartPolicy};
pub use procid::{ExitObserved, ProcessIdentity, is_alive, wait_exit};
pub use spool::{Class, Record, Spool, SpoolConfig, SpoolError};
