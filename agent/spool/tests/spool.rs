#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};

use languard_spool::spool::{Class, Spool, SpoolConfig, SpoolError};

fn small() -> SpoolConfig {
    SpoolConfig {
        max_bytes: 64 << 10,
        segment_bytes: 4096,
        max_record_bytes: 1024,
        write_buffer_bytes: 1024,
    }
}

fn payload(seq_hint: u64, len: usize) -> Vec<u8> {
    let mut v = format!("record-{seq_hint}-").into_bytes();
    v.resize(len, b'x');
    v
}

fn segs(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_str().unwrap();
            n.starts_with(prefix) && n.ends_with(".seg")
        })
        .collect();
    v.sort();
    v
}

fn all(spool: &Spool) -> Vec<(u64, Class, Vec<u8>)> {
    spool
        .read_from(0, usize::MAX, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|r| (r.seq, r.class, r.payload))
        .collect()
}

#[test]
fn append_flush_read_ack_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut expected = Vec::new();
    {
        let mut s = Spool::open(dir.path(), small()).unwrap();
        assert_eq!(s.next_seq(), 1);
        for i in 0..100u64 {
            let class = if i % 3 == 0 {
                Class::Metrics
            } else {
                Class::Log
            };
            let p = payload(i, 50 + (i as usize % 7) * 20);
            let seq = s.append(class, &p).unwrap();
            assert_eq!(seq, i + 1);
            expected.push((seq, class, p));
        }
        // Not durable yet, so not readable.
        assert!(s.read_from(0, 10, 1 << 20).unwrap().is_empty());
        assert_eq!(s.durable_seq(), 0);
        s.flush().unwrap();
        assert_eq!(s.durable_seq(), 100);
        assert_eq!(all(&s), expected);
        let st = s.stats();
        assert_eq!(
            (st.records, st.oldest_unacked_seq, st.next_seq),
            (100, Some(1), 101)
        );
        assert!(st.segments >= 4, "{st:?}");

        let bytes_before = st.bytes;
        s.ack(60).unwrap();
        let st = s.stats();
        assert_eq!(st.acked_seq, 60);
        assert_eq!(st.oldest_unacked_seq, Some(61));
        assert!(st.bytes < bytes_before, "fully acked segments deleted");
        let r = s.read_from(0, usize::MAX, usize::MAX).unwrap();
        assert_eq!(r.first().unwrap().seq, 61);
        assert_eq!(r.len(), 40);
    }
    let mut s = Spool::open(dir.path(), small()).unwrap();
    let rep = s.recovery_report().clone();
    assert_eq!((rep.corrupt_records, rep.torn_tails), (0, 0), "{rep:?}");
    assert_eq!(s.acked_seq(), 60);
    assert_eq!(s.next_seq(), 101);
    assert_eq!(all(&s), expected[60..].to_vec());

    // Paging from the controller's high-water mark, with record and byte limits.
    let page = s.read_from(70, 10, usize::MAX).unwrap();
    assert_eq!(
        page.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (71..=80).collect::<Vec<_>>()
    );
    // Below the ack mark: starts after it.
    assert_eq!(s.read_from(10, 1, usize::MAX).unwrap()[0].seq, 61);
    let one = s.read_from(60, 10, 1).unwrap();
    assert_eq!(
        one.len(),
        1,
        "max_bytes smaller than a record still yields one record"
    );
    let page = s.read_from(60, 100, 300).unwrap();
    let sum: usize = page.iter().map(|r| r.payload.len()).sum();
    assert!(sum <= 300 && !page.is_empty(), "{sum}");
    assert!(s.read_from(100, 10, usize::MAX).unwrap().is_empty());

    // Acking everything deletes every segment; new appends continue the sequence.
    s.ack(100).unwrap();
    assert_eq!(s.stats().segments, 0);
    assert_eq!(s.stats().oldest_unacked_seq, None);
    assert_eq!(s.append(Class::Status, b"up").unwrap(), 101);
}

#[test]
fn paging_through_many_records_is_contiguous() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SpoolConfig {
        max_bytes: 4 << 20,
        ..small()
    };
    let mut s = Spool::open(dir.path(), cfg).unwrap();
    for i in 0..5000u64 {
        let class = if i % 5 == 0 {
            Class::Metrics
        } else {
            Class::Log
        };
        s.append(class, &payload(i, 30)).unwrap();
        if i % 1000 == 999 {
            s.flush().unwrap();
        }
    }
    let mut after = 0;
    let mut n = 0;
    loop {
        let page = s.read_from(after, 97, usize::MAX).unwrap();
        if page.is_empty() {
            break;
        }
        for r in &page {
            assert_eq!(r.seq, after + 1);
            assert_eq!(r.payload, payload(r.seq - 1, 30));
            after = r.seq;
            n += 1;
        }
    }
    assert_eq!(n, 5000);
}

#[test]
fn records_larger_than_the_read_chunk_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::open(dir.path(), SpoolConfig::default()).unwrap();
    let big: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 600 << 10]).collect();
    for b in &big {
        s.append(Class::Log, b).unwrap();
    }
    s.flush().unwrap();
    drop(s);
    let s = Spool::open(dir.path(), SpoolConfig::default()).unwrap();
    let r = s.read_from(0, 10, usize::MAX).unwrap();
    assert_eq!(r.iter().map(|r| r.payload.clone()).collect::<Vec<_>>(), big);
    let too_big = vec![0u8; (1 << 20) + 1];
    let mut s = s;
    assert!(matches!(
        s.append(Class::Log, &too_big),
        Err(SpoolError::RecordTooLarge { .. })
    ));
}

#[test]
fn torn_tail_is_truncated_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = Spool::open(dir.path(), small()).unwrap();
        for i in 0..10u64 {
            s.append(Class::Log, &payload(i, 100)).unwrap();
        }
        s.flush().unwrap();
    }
    let last = segs(dir.path(), "e-").pop().unwrap();
    let len = fs::metadata(&last).unwrap().len();
    // Cut the last record (124 bytes on disk) in the middle of its payload.
    fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .set_len(len - 50)
        .unwrap();

    let mut s = Spool::open(dir.path(), small()).unwrap();
    let rep = s.recovery_report().clone();
    assert_eq!(rep.torn_tails, 1, "{rep:?}");
    assert_eq!(rep.corrupt_records, 0, "{rep:?}");
    assert_eq!(rep.discarded_bytes, 74);
    let got = all(&s);
    assert_eq!(got.len(), 9);
    for (i, (seq, class, p)) in got.iter().enumerate() {
        assert_eq!(
            (*seq, *class, p.clone()),
            (i as u64 + 1, Class::Log, payload(i as u64, 100))
        );
    }
    assert_eq!(
        fs::metadata(&last).unwrap().len(),
        len - 124,
        "tail truncated on disk"
    );
    // Conservatively, the seq in the torn record's (intact) header is not handed out again.
    assert_eq!(s.append(Class::Log, b"after").unwrap(), 11);
    s.flush().unwrap();
    drop(s);

    // Cut inside a record header this time.
    let last = segs(dir.path(), "e-").pop().unwrap();
    let len = fs::metadata(&last).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .set_len(len - 29 + 10)
        .unwrap();
    let s = Spool::open(dir.path(), small()).unwrap();
    assert_eq!(s.recovery_report().torn_tails, 1);
    assert_eq!(all(&s).len(), 9);
    drop(s);
    // A clean reopen reports nothing.
    let s = Spool::open(dir.path(), small()).unwrap();
    assert_eq!(
        s.recovery_report().torn_tails + s.recovery_report().corrupt_records,
        0
    );
}

#[test]
fn bitflip_is_detected_skipped_and_neighbours_kept() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SpoolConfig {
        segment_bytes: 64 << 10,
        ..small()
    };
    {
        let mut s = Spool::open(dir.path(), cfg.clone()).unwrap();
        for i in 0..30u64 {
            s.append(Class::Log, &payload(i, 100)).unwrap();
        }
        s.flush().unwrap();
    }
    let seg = segs(dir.path(), "e-").pop().unwrap();
    let mut bytes = fs::read(&seg).unwrap();
    // Record #10 (seq 10) starts at 16 + 9 * 124; flip a payload bit.
    let rec10 = 16 + 9 * 124;
    bytes[rec10 + 24 + 40] ^= 0x04;
    fs::write(&seg, &bytes).unwrap();

    let mut s = Spool::open(dir.path(), cfg.clone()).unwrap();
    let rep = s.recovery_report().clone();
    assert_eq!(rep.corrupt_records, 1, "{rep:?}");
    assert_eq!(rep.salvaged_records, 20, "{rep:?}");
    assert_eq!(rep.discarded_bytes, 124);
    let seqs: Vec<u64> = all(&s).iter().map(|r| r.0).collect();
    let want: Vec<u64> = (1..=30).filter(|s| *s != 10).collect();
    assert_eq!(seqs, want);
    assert_eq!(s.next_seq(), 31);
    // Appending after a salvage rewrite works and survives another reopen cleanly.
    assert_eq!(s.append(Class::Log, b"x").unwrap(), 31);
    s.flush().unwrap();
    drop(s);
    let s = Spool::open(dir.path(), cfg.clone()).unwrap();
    assert_eq!(s.recovery_report().corrupt_records, 0);
    assert_eq!(all(&s).len(), 30);
    drop(s);

    // A flipped bit in the very last record: it is cut, but its seq (header intact) is never
    // handed out again, because it may already have been sent.
    let seg = segs(dir.path(), "e-").pop().unwrap();
    let mut bytes = fs::read(&seg).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 0x80;
    fs::write(&seg, &bytes).unwrap();
    let mut s = Spool::open(dir.path(), cfg.clone()).unwrap();
    assert_eq!(s.recovery_report().corrupt_records, 1);
    assert_eq!(all(&s).last().unwrap().0, 30);
    assert_eq!(s.append(Class::Log, b"y").unwrap(), 32);
}

#[test]
fn garbage_files_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = Spool::open(dir.path(), small()).unwrap();
        for i in 0..5u64 {
            s.append(Class::Status, &payload(i, 10)).unwrap();
        }
        s.flush().unwrap();
    }
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut noise = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    };
    fs::write(dir.path().join("e-00000000000000000100.seg"), noise(5000)).unwrap();
    fs::write(dir.path().join("m-00000000000000000001.seg"), b"").unwrap();
    fs::write(dir.path().join("m-00000000000000000002.seg"), b"LGSPOOL\0").unwrap();
    fs::write(dir.path().join("e-garbage.seg"), noise(100)).unwrap();
    fs::write(dir.path().join("notes.txt"), b"hello").unwrap();
    fs::write(
        dir.path().join("e-00000000000000000200.seg.tmp"),
        b"half written",
    )
    .unwrap();

    let s = Spool::open(dir.path(), small()).unwrap();
    let rep = s.recovery_report().clone();
    assert!(rep.corrupt_records >= 2, "{rep:?}");
    assert_eq!(rep.deleted_segments, 3, "{rep:?}");
    assert_eq!(all(&s).len(), 5);
    assert!(
        dir.path().join("notes.txt").exists(),
        "unrelated files are left alone"
    );
    assert!(!dir.path().join("e-00000000000000000200.seg.tmp").exists());
    drop(s);

    // A corrupt state file resets the ack mark but keeps the records.
    fs::write(dir.path().join("spool.state"), b"{not json").unwrap();
    let s = Spool::open(dir.path(), small()).unwrap();
    assert!(s.recovery_report().state_reset);
    assert_eq!(all(&s).len(), 5);
    assert_eq!(s.next_seq(), 6);
}

#[test]
fn full_spool_evicts_oldest_metrics_first_and_reports_the_gap() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SpoolConfig {
        max_bytes: 16 << 10,
        ..small()
    };
    let mut s = Spool::open(dir.path(), cfg.clone()).unwrap();
    // ~12 KiB of metrics (3 segments), then logs push them out.
    let mut metrics = Vec::new();
    for i in 0..54u64 {
        metrics.push(s.append(Class::Metrics, &payload(i, 200)).unwrap());
    }
    s.flush().unwrap();
    assert!(s.take_gap().is_none());
    let mut logs = Vec::new();
    for i in 0..40u64 {
        logs.push(s.append(Class::Log, &payload(1000 + i, 200)).unwrap());
    }
    s.flush().unwrap();
    let st = s.stats();
    assert!(st.bytes <= cfg.max_bytes, "{st:?}");
    assert!(st.evicted.metrics > 0);
    assert_eq!(st.evicted.log + st.evicted.status + st.evicted.other, 0);
    assert_eq!(st.rejected.total(), 0);

    let gap = s.take_gap().unwrap();
    assert_eq!(gap.evicted.metrics, st.evicted.metrics);
    assert_eq!(gap.rejected.total(), 0);
    let (lo, hi) = gap.evicted_seq_range.unwrap();
    assert_eq!(lo, 1, "oldest metrics go first");
    assert!(s.take_gap().is_none(), "take_gap resets");

    let got = all(&s);
    // Every log is there; the metrics that remain are the newest ones, contiguous up to 54.
    let got_logs: Vec<u64> = got
        .iter()
        .filter(|r| r.1 == Class::Log)
        .map(|r| r.0)
        .collect();
    assert_eq!(got_logs, logs);
    let got_metrics: Vec<u64> = got
        .iter()
        .filter(|r| r.1 == Class::Metrics)
        .map(|r| r.0)
        .collect();
    assert_eq!(got_metrics, ((hi + 1)..=54).collect::<Vec<_>>());
    assert_eq!(gap.evicted.metrics, hi);

    // Evicted seqs are never reused even after everything else is acked and reopened.
    s.ack(s.next_seq() - 1).unwrap();
    drop(s);
    let s = Spool::open(dir.path(), cfg).unwrap();
    assert_eq!(s.next_seq(), 95);
}

#[test]
fn logs_are_never_silently_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SpoolConfig {
        max_bytes: 16 << 10,
        ..small()
    };
    let mut s = Spool::open(dir.path(), cfg.clone()).unwrap();
    let mut accepted = Vec::new();
    let mut full_errors = 0u64;
    for i in 0..200u64 {
        let class = if i % 2 == 0 {
            Class::Log
        } else {
            Class::Status
        };
        match s.append(class, &payload(i, 200)) {
            Ok(seq) => accepted.push(seq),
            Err(SpoolError::Full {
                class: c,
                used,
                max,
                ..
            }) => {
                assert_eq!(c, class);
                assert!(used <= max);
                full_errors += 1;
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(full_errors > 0 && !accepted.is_empty());
    // A metric cannot evict logs either.
    assert!(matches!(
        s.append(Class::Metrics, &[0; 200]),
        Err(SpoolError::Full { .. })
    ));
    s.flush().unwrap();
    let st = s.stats();
    assert_eq!(st.rejected.log + st.rejected.status, full_errors);
    assert_eq!(st.rejected.metrics, 1);
    assert_eq!(st.evicted.total(), 0);
    let gap = s.take_gap().unwrap();
    assert_eq!(gap.rejected.total(), full_errors + 1);
    assert_eq!(gap.evicted.total(), 0);
    // Every accepted record is there, in order, with no holes.
    let got: Vec<u64> = all(&s).iter().map(|r| r.0).collect();
    assert_eq!(got, accepted);
    assert_eq!(got, (1..=accepted.len() as u64).collect::<Vec<_>>());

    // Acking makes room again.
    let half = accepted[accepted.len() / 2];
    s.ack(half).unwrap();
    assert!(s.append(Class::Log, &payload(999, 200)).is_ok());
}

#[test]
fn seq_never_goes_backwards_and_bump_to() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = Spool::open(dir.path(), small()).unwrap();
        for _ in 0..10 {
            s.append(Class::Log, b"a").unwrap();
        }
        s.flush().unwrap();
        s.ack(10).unwrap();
        assert_eq!(s.stats().segments, 0);
    }
    {
        // No segment left: the ack mark carries the sequence.
        let mut s = Spool::open(dir.path(), small()).unwrap();
        assert_eq!(s.next_seq(), 11);
        assert_eq!(s.append(Class::Log, b"b").unwrap(), 11);
        // Lower bumps are no-ops.
        assert_eq!(s.bump_to(5).unwrap(), 12);
        // The controller has seen up to 1000 (our state was lost or restored from a backup).
        assert_eq!(s.bump_to(1000).unwrap(), 1001);
        assert_eq!(s.append(Class::Status, b"c").unwrap(), 1001);
        s.flush().unwrap();
        assert_eq!(s.bump_to(5000).unwrap(), 5001);
        // Not appended after the bump: the floor alone must survive the restart.
    }
    let inc;
    {
        let s = Spool::open(dir.path(), small()).unwrap();
        assert_eq!(s.next_seq(), 5001);
        let seqs: Vec<u64> = all(&s).iter().map(|r| r.0).collect();
        assert_eq!(seqs, vec![11, 1001]);
        inc = s.incarnation();
    }
    // Unflushed records are lost on a crash, but the sequence still never goes below what was
    // durable or acked.
    {
        let mut s = Spool::open(dir.path(), small()).unwrap();
        assert_eq!(s.incarnation(), inc, "incarnation persists");
        let seq = s.append(Class::Log, b"d").unwrap();
        assert_eq!(seq, 5001);
        s.flush().unwrap();
    }
    let s = Spool::open(dir.path(), small()).unwrap();
    assert_eq!(s.next_seq(), 5002);
    assert!(matches!(
        Spool::open(dir.path(), small()),
        Err(SpoolError::Locked(_))
    ));
    drop(s);
    // A fresh directory is a new incarnation.
    let other = tempfile::tempdir().unwrap();
    assert_ne!(
        Spool::open(other.path(), small()).unwrap().incarnation(),
        inc
    );
}

#[test]
fn invalid_config_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let bad = SpoolConfig {
        segment_bytes: 100,
        ..small()
    };
    assert!(matches!(
        Spool::open(dir.path(), bad),
        Err(SpoolError::Config(_))
    ));
    let bad = SpoolConfig {
        max_bytes: 1000,
        ..small()
    };
    assert!(matches!(
        Spool::open(dir.path(), bad),
        Err(SpoolError::Config(_))
    ));
}

#[test]
fn evicted_seqs_are_never_reused_even_when_nothing_newer_survives() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SpoolConfig {
        max_bytes: 13_000,
        ..small()
    };
    {
        let mut s = Spool::open(dir.path(), cfg.clone()).unwrap();
        for i in 0..54u64 {
            s.append(Class::Log, &payload(i, 200)).unwrap(); // seqs 1..=54, three full segments
        }
        for i in 0..3u64 {
            s.append(Class::Metrics, &payload(i, 200)).unwrap(); // 55..=57
        }
        s.flush().unwrap();
        // A big log line: evicts the metrics segment, still does not fit, and is refused.
        let err = s.append(Class::Log, &[b'z'; 1000]).unwrap_err();
        assert!(
            matches!(
                err,
                SpoolError::Full {
                    class: Class::Log,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("spool full"));
        let gap = s.take_gap().unwrap();
        assert_eq!(gap.evicted.metrics, 3);
        assert_eq!(gap.evicted_seq_range, Some((55, 57)));
        assert_eq!(gap.rejected.log, 1);
        assert_eq!(all(&s).last().unwrap().0, 54);
    }
    // Seqs 55..=57 may have reached the controller: the persisted floor keeps them retired.
    let mut s = Spool::open(dir.path(), cfg).unwrap();
    assert_eq!(s.next_seq(), 58);
    assert_eq!(all(&s).len(), 54);
    s.ack(54).unwrap();
    assert_eq!(s.append(Class::Log, b"ok").unwrap(), 58);
}
