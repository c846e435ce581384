//! End-to-end tests: real files in temp dirs, real inotify, the real task.
#![allow(clippy::unwrap_used)]

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use languard_tail::{
    Checkpoint, CheckpointMiss, LogSource, RotationReason, TailBatch, TailConfig, TailEvent,
    TailHandle, TailLine, TailRecord, Tailer, prune_logs,
};
use tokio::sync::mpsc::Receiver;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(10);

struct Tail {
    handle: TailHandle,
    rx: Receiver<TailBatch>,
    cancel: CancellationToken,
    lines: Vec<TailLine>,
    events: Vec<TailEvent>,
    /// Everything in order, lines rendered as `L:text`, events as `E:Display`.
    log: Vec<String>,
    position: Option<Checkpoint>,
}

impl Tail {
    fn spawn(cfg: TailConfig, start: Option<Checkpoint>) -> Tail {
        let cancel = CancellationToken::new();
        let (handle, rx) = Tailer::spawn(cfg, start, cancel.clone()).unwrap();
        Tail {
            handle,
            rx,
            cancel,
            lines: Vec::new(),
            events: Vec::new(),
            log: Vec::new(),
            position: None,
        }
    }

    fn take(&mut self, batch: TailBatch) {
        if batch.position.is_some() {
            self.position = batch.position;
        }
        for r in batch.records {
            match r {
                TailRecord::Line(l) => {
                    self.log.push(format!("L:{}", l.text));
                    self.lines.push(l);
                }
                TailRecord::Event(e) => {
                    self.log.push(format!("E:{e}"));
                    self.events.push(e);
                }
            }
        }
    }

    /// Receives until `done` holds; panics after `WAIT`.
    async fn until(&mut self, what: &str, done: impl Fn(&Tail) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !done(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.rx.recv()).await {
                Ok(Some(b)) => self.take(b),
                Ok(None) => panic!("channel closed waiting for {what}; log: {:?}", self.log),
                Err(_) => panic!("timed out waiting for {what}; log: {:?}", self.log),
            }
        }
    }

    async fn lines(&mut self, n: usize) {
        self.until(&format!("{n} lines"), |t| t.lines.len() >= n)
            .await;
    }

    /// Receives whatever arrives within `d` (to check that nothing more comes).
    async fn settle(&mut self, d: Duration) {
        let deadline = tokio::time::Instant::now() + d;
        while let Ok(Some(b)) = tokio::time::timeout_at(deadline, self.rx.recv()).await {
            self.take(b);
        }
    }

    fn texts(&self) -> Vec<&str> {
        self.lines.iter().map(|l| l.text.as_str()).collect()
    }

    async fn stop(self) {
        self.cancel.cancel();
        tokio::time::timeout(WAIT, self.handle.join())
            .await
            .expect("tailer ends promptly on cancel");
    }
}

fn append(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(bytes).unwrap();
}

fn numbered(prefix: &str, range: std::ops::Range<usize>) -> String {
    range.map(|i| format!("{prefix} {i}\n")).collect()
}

fn set_mtime(path: &Path, secs_ago: u64) {
    let f = File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(secs_ago))
        .unwrap();
}

fn file_cfg(path: &Path) -> TailConfig {
    TailConfig::new(LogSource::File(path.to_path_buf()))
}

fn rpt(dir: &Path, stamp: &str) -> PathBuf {
    dir.join(format!("arma3server_x64_{stamp}.rpt"))
}

#[tokio::test]
async fn notify_delivers_without_polling() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.log");
    append(&path, b"first\n");
    let mut cfg = file_cfg(&path);
    // A poll this slow cannot be what delivers the lines below within the test's patience.
    cfg.poll_interval = Duration::from_secs(30);
    let mut t = Tail::spawn(cfg, None);
    t.lines(1).await;
    assert!(t.handle.stats().notify_active);
    let t0 = Instant::now();
    for i in 0..5 {
        append(&path, format!("line {i}\n").as_bytes());
        t.lines(2 + i).await;
    }
    let per_line = t0.elapsed() / 5;
    eprintln!("notify latency per line (incl. write): {per_line:?}");
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert_eq!(
        t.texts(),
        ["first", "line 0", "line 1", "line 2", "line 3", "line 4"]
    );
    // Offsets point just after each line; the identity is the file's.
    assert_eq!(t.lines[0].offset_after, 6);
    assert_eq!(t.lines[1].offset_after, 13);
    let (cur, id) = t.handle.current_file().unwrap();
    assert_eq!(cur, path);
    assert!(t.lines.iter().all(|l| l.file.same_inode(&id)));
    assert!(matches!(t.events[0], TailEvent::Opened { offset: 0, .. }));
    t.stop().await;
}

#[tokio::test]
async fn crlf_invalid_utf8_and_partial_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.rpt");
    append(&path, b"win\r\nbad \xff\xfe bytes\r\nhalf");
    let mut t = Tail::spawn(file_cfg(&path), None);
    t.lines(2).await;
    t.settle(Duration::from_millis(400)).await;
    // The partial line is held until its newline arrives.
    assert_eq!(t.texts(), ["win", "bad \u{fffd}\u{fffd} bytes"]);
    assert_eq!(t.position.unwrap().offset, 19);
    append(&path, b" and rest\r\n");
    t.lines(3).await;
    assert_eq!(t.lines[2].text, "half and rest");
    assert!(!t.lines[2].partial);
    assert_eq!(t.lines[2].offset_after, 34);
    t.stop().await;
}

#[tokio::test]
async fn idle_partial_line_is_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.log");
    append(&path, b"done\nprompt> ");
    let mut cfg = file_cfg(&path);
    cfg.partial_line_idle = Some(Duration::from_millis(300));
    let mut t = Tail::spawn(cfg, None);
    t.lines(2).await;
    assert_eq!(t.texts(), ["done", "prompt> "]);
    assert!(t.lines[1].partial);
    assert_eq!(t.lines[1].offset_after, 13);
    append(&path, b"typed\n");
    t.lines(3).await;
    assert_eq!(t.lines[2].text, "typed");
    t.stop().await;
}

#[tokio::test]
async fn huge_line_without_newline_is_capped_then_normal_lines_follow() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.log");
    append(&path, b"before\n");
    let mut t = Tail::spawn(file_cfg(&path), None);
    t.lines(1).await;
    let mb = vec![b'x'; 1024 * 1024];
    for _ in 0..10 {
        append(&path, &mb);
    }
    append(&path, b"\r\nafter 1\nafter 2\n");
    t.lines(4).await;
    let cap = 64 * 1024;
    let dropped = 10 * 1024 * 1024 - cap;
    let want = format!(
        "{} [... line truncated, {dropped} bytes dropped]",
        "x".repeat(cap)
    );
    assert_eq!(t.lines[1].text, want);
    assert_eq!(t.lines[1].truncated_bytes, dropped as u64);
    assert_eq!(t.lines[1].offset_after, 7 + 10 * 1024 * 1024 + 2);
    assert_eq!(t.texts()[2..], ["after 1", "after 2"]);
    assert_eq!(t.handle.stats().truncated_lines, 1);
    t.stop().await;
}

#[tokio::test]
async fn rotation_on_server_restart_finishes_old_file_first() {
    let dir = tempfile::tempdir().unwrap();
    let old = rpt(dir.path(), "2024-01-01_10-00-00");
    let older = rpt(dir.path(), "2023-12-31_10-00-00");
    append(&older, b"ancient\n");
    set_mtime(&older, 3600);
    append(&old, numbered("old", 0..3).as_bytes());
    let mut t = Tail::spawn(TailConfig::new(LogSource::arma3(dir.path())), None);
    t.lines(3).await;
    // The newest file is followed, not the older one.
    assert_eq!(t.texts(), ["old 0", "old 1", "old 2"]);
    // An old log copied in (modification time kept) is not a server start.
    let staging = dir.path().join("restore.tmp");
    append(&staging, b"restored\n");
    set_mtime(&staging, 86_400);
    fs::rename(&staging, rpt(dir.path(), "2023-06-01_10-00-00")).unwrap();
    t.settle(Duration::from_millis(400)).await;
    assert_eq!(t.lines.len(), 3, "{:?}", t.log);
    // The old server writes its last lines (the last one without newline), then a new server
    // starts and writes a new file immediately.
    append(&old, b"old 3\nold 4 last words");
    let new = rpt(dir.path(), "2024-01-01_11-00-00");
    append(&new, numbered("new", 0..3).as_bytes());
    t.lines(8).await;
    assert_eq!(
        t.texts(),
        [
            "old 0",
            "old 1",
            "old 2",
            "old 3",
            "old 4 last words",
            "new 0",
            "new 1",
            "new 2"
        ]
    );
    assert!(t.lines[4].partial);
    let rot = t
        .events
        .iter()
        .find(|e| matches!(e, TailEvent::Rotated { .. }))
        .unwrap();
    match rot {
        TailEvent::Rotated {
            from, to, reason, ..
        } => {
            assert_eq!(from, &old);
            assert_eq!(to, &new);
            assert_eq!(*reason, RotationReason::NewFile);
        }
        _ => unreachable!(),
    }
    // The rotation notice sits between the old and the new lines.
    let pos_rot = t
        .log
        .iter()
        .position(|l| l.starts_with("E:[languard] log rotated"))
        .unwrap();
    let pos_new = t.log.iter().position(|l| l == "L:new 0").unwrap();
    let pos_last = t
        .log
        .iter()
        .position(|l| l == "L:old 4 last words")
        .unwrap();
    assert!(pos_last < pos_rot && pos_rot < pos_new);
    assert_eq!(t.lines[5].offset_after, 6);
    assert_eq!(t.handle.current_file().unwrap().0, new);
    assert_eq!(t.handle.stats().rotations, 1);
    t.stop().await;
}

#[tokio::test]
async fn truncation_restarts_from_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.log");
    append(&path, numbered("a", 0..20).as_bytes());
    let mut t = Tail::spawn(file_cfg(&path), None);
    t.lines(20).await;
    // copytruncate: truncate in place, then the writer goes on.
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    t.until("truncation", |t| {
        t.events
            .iter()
            .any(|e| matches!(e, TailEvent::Truncated { .. }))
    })
    .await;
    append(&path, b"b 0\nb 1\n");
    t.lines(22).await;
    assert_eq!(t.texts()[20..], ["b 0", "b 1"]);
    assert_eq!(t.lines[21].offset_after, 8);
    match &t.events[1] {
        TailEvent::Truncated {
            old_offset,
            new_size,
            ..
        } => {
            assert_eq!(*old_offset, numbered("a", 0..20).len() as u64);
            assert_eq!(*new_size, 0);
        }
        e => panic!("unexpected {e:?}"),
    }
    // Rewritten in place with other content longer than what was read: the fingerprint of the
    // first bytes tells.
    fs::write(&path, numbered("c", 0..10)).unwrap();
    t.lines(32).await;
    assert_eq!(
        t.texts()[22..],
        numbered("c", 0..10).lines().collect::<Vec<_>>()[..]
    );
    assert_eq!(t.handle.stats().truncations, 2);
    t.stop().await;
}

#[tokio::test]
async fn deleted_file_is_finished_then_the_new_one_read_from_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.log");
    let mut writer = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap();
    writer.write_all(b"one\n").unwrap();
    let mut t = Tail::spawn(file_cfg(&path), None);
    t.lines(1).await;
    fs::remove_file(&path).unwrap();
    t.until("removal", |t| {
        t.events
            .iter()
            .any(|e| matches!(e, TailEvent::Removed { .. }))
    })
    .await;
    // The old writer still holds the deleted file.
    writer.write_all(b"two\n").unwrap();
    t.lines(2).await;
    append(&path, b"three\n");
    t.lines(3).await;
    assert_eq!(t.texts(), ["one", "two", "three"]);
    assert!(t.events.iter().any(|e| matches!(
        e,
        TailEvent::Rotated {
            reason: RotationReason::Replaced,
            ..
        }
    )));
    assert_eq!(t.lines[2].offset_after, 6);
    assert!(!t.lines[2].file.same_inode(&t.lines[0].file));
    t.stop().await;
}

#[tokio::test]
async fn replaced_under_the_same_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = rpt(dir.path(), "2024-01-01_10-00-00");
    append(&path, b"old a\nold b\n");
    let mut t = Tail::spawn(TailConfig::new(LogSource::arma3(dir.path())), None);
    t.lines(2).await;
    let first_id = t.handle.current_file().unwrap().1;
    // Atomically renamed over (a new inode under the same name).
    let tmp = dir.path().join("staging.tmp");
    fs::write(&tmp, b"new a\nnew b\n").unwrap();
    fs::rename(&tmp, &path).unwrap();
    t.lines(4).await;
    assert_eq!(t.texts(), ["old a", "old b", "new a", "new b"]);
    let (cur, id) = t.handle.current_file().unwrap();
    assert_eq!(cur, path);
    assert!(!id.same_inode(&first_id));
    assert!(t.events.iter().any(|e| matches!(
        e,
        TailEvent::Rotated {
            reason: RotationReason::Replaced,
            ..
        }
    )));
    t.settle(Duration::from_millis(300)).await;
    assert_eq!(t.lines.len(), 4, "no line read twice: {:?}", t.log);
    t.stop().await;
}

#[tokio::test]
async fn resume_from_checkpoint_after_recreating_the_tailer() {
    let dir = tempfile::tempdir().unwrap();
    let path = rpt(dir.path(), "2024-01-01_10-00-00");
    append(&path, numbered("l", 0..100).as_bytes());
    let mut t = Tail::spawn(TailConfig::new(LogSource::arma3(dir.path())), None);
    t.lines(100).await;
    // The downstream acknowledged up to line 59 only; a partial line is pending.
    append(&path, b"l 100\nl 1");
    t.lines(101).await;
    let acked = t.lines[59].checkpoint();
    t.stop().await;
    // Stored and loaded as the agent would.
    let stored = serde_json::to_string(&acked).unwrap();
    // While the agent is down the server writes on.
    append(&path, b"01\nl 102\n");
    let cp: Checkpoint = serde_json::from_str(&stored).unwrap();
    let mut t = Tail::spawn(TailConfig::new(LogSource::arma3(dir.path())), Some(cp));
    t.lines(43).await;
    t.settle(Duration::from_millis(300)).await;
    let want: Vec<String> = (60..103).map(|i| format!("l {i}")).collect();
    assert_eq!(t.texts(), want);
    assert!(matches!(t.events[0], TailEvent::Opened { offset, .. } if offset == cp.offset));
    // Resume again from the last batch position: nothing repeats.
    let cp2 = t.position.unwrap();
    t.stop().await;
    append(&path, b"l 103\n");
    let mut t = Tail::spawn(TailConfig::new(LogSource::arma3(dir.path())), Some(cp2));
    t.lines(1).await;
    t.settle(Duration::from_millis(300)).await;
    assert_eq!(t.texts(), ["l 103"]);
    t.stop().await;
}

#[tokio::test]
async fn resume_after_restarts_while_down_and_lost_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let a = rpt(dir.path(), "2024-01-01_10-00-00");
    append(&a, b"a 0\na 1\n");
    let mut t = Tail::spawn(TailConfig::new(LogSource::arma3(dir.path())), None);
    t.lines(2).await;
    let cp = t.lines[0].checkpoint();
    t.stop().await;
    // While down: the old server writes on, then two restarts.
    append(&a, b"a 2\n");
    set_mtime(&a, 120);
    let b = rpt(dir.path(), "2024-01-01_11-00-00");
    append(&b, b"b 0\n");
    set_mtime(&b, 60);
    let c = rpt(dir.path(), "2024-01-01_12-00-00");
    append(&c, b"c 0\n");
    let mut t = Tail::spawn(TailConfig::new(LogSource::arma3(dir.path())), Some(cp));
    t.lines(4).await;
    t.settle(Duration::from_millis(300)).await;
    assert_eq!(t.texts(), ["a 1", "a 2", "b 0", "c 0"]);
    t.stop().await;

    // The checkpoint's file is gone (pruned): the newest file is read from its start.
    fs::remove_file(&a).unwrap();
    let mut t = Tail::spawn(TailConfig::new(LogSource::arma3(dir.path())), Some(cp));
    t.lines(1).await;
    t.settle(Duration::from_millis(300)).await;
    assert_eq!(t.texts(), ["c 0"]);
    assert!(matches!(
        t.events[0],
        TailEvent::CheckpointMissed {
            reason: CheckpointMiss::NotFound,
            ..
        }
    ));
    t.stop().await;
}

#[tokio::test]
async fn flood_guard_drops_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.log");
    append(&path, b"");
    let mut cfg = file_cfg(&path);
    cfg.max_lines_per_sec = 1000;
    let mut t = Tail::spawn(cfg, None);
    t.until("open", |t| !t.events.is_empty()).await;
    append(&path, numbered("spam", 0..5000).as_bytes());
    let total = |t: &Tail| {
        t.lines.len() as u64
            + t.events
                .iter()
                .map(|e| match e {
                    TailEvent::Dropped { count, .. } => *count,
                    _ => 0,
                })
                .sum::<u64>()
    };
    t.until("every line delivered or reported dropped", |t| {
        total(t) >= 5000
    })
    .await;
    assert_eq!(total(&t), 5000);
    let delivered = t.lines.len();
    assert!((1000..5000).contains(&delivered), "delivered {delivered}");
    let stats = t.handle.stats();
    assert_eq!(stats.dropped_lines, 5000 - delivered as u64);
    // The lines that pass are the first ones of each window, in order.
    assert_eq!(t.lines[0].text, "spam 0");
    assert_eq!(t.lines[999].text, "spam 999");
    let notice = t
        .log
        .iter()
        .find(|l| l.starts_with("E:[languard]") && l.contains("dropped"))
        .unwrap();
    assert!(
        notice.ends_with("lines dropped by the flood guard (limit 1000/s)"),
        "{notice}"
    );
    // After the flood, lines flow again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    append(&path, b"calm\n");
    t.until("calm", |t| t.lines.last().is_some_and(|l| l.text == "calm"))
        .await;
    t.stop().await;
}

#[tokio::test]
async fn backlog_is_not_subject_to_the_flood_guard() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.log");
    append(&path, numbered("old", 0..5000).as_bytes());
    let mut cfg = file_cfg(&path);
    cfg.max_lines_per_sec = 1000;
    let mut t = Tail::spawn(cfg, None);
    t.lines(5000).await;
    assert_eq!(t.handle.stats().dropped_lines, 0);
    assert_eq!(t.lines[4999].text, "old 4999");
    t.stop().await;
}

#[tokio::test]
async fn pruning_keeps_newest_and_the_followed_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for i in 0..6 {
        let p = rpt(dir.path(), &format!("2024-01-0{}_10-00-00", i + 1));
        append(&p, format!("file {i}\n").as_bytes());
        set_mtime(&p, 600 - 60 * i as u64);
        files.push(p);
    }
    let other = dir.path().join("server.cfg");
    append(&other, b"x");
    // Resume on the oldest file, so files 1..6 are queued; a channel of one batch of one line
    // that nobody reads holds the tailer on file 1 with files 2..6 queued.
    let cp = Checkpoint {
        identity: id_of(&files[0]),
        offset: 0,
    };
    let mut cfg = TailConfig::new(LogSource::arma3(dir.path()));
    cfg.channel_capacity = 1;
    cfg.batch_max_lines = 1;
    let t = Tail::spawn(cfg, Some(cp));
    let deadline = Instant::now() + WAIT;
    while t.handle.current_file().map(|c| c.0) != Some(files[1].clone()) {
        assert!(Instant::now() < deadline, "tailer did not reach file 1");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(t.handle.current_file().unwrap().0, files[1]);
    let deleted = t.handle.prune(2).unwrap();
    assert_eq!(
        deleted,
        vec![files[0].clone()],
        "followed and queued files are kept"
    );
    t.stop().await;

    // The helper: keep 2 newest, protect file 1.
    let deleted = prune_logs(&LogSource::arma3(dir.path()), 2, &[id_of(&files[1])]).unwrap();
    assert_eq!(deleted, vec![files[2].clone(), files[3].clone()]);
    assert!(files[1].exists() && files[4].exists() && files[5].exists());
    assert!(other.exists());
    let deleted = prune_logs(&LogSource::arma3(dir.path()), 0, &[]).unwrap();
    assert_eq!(deleted.len(), 3);
}

fn id_of(path: &Path) -> languard_tail::FileIdentity {
    languard_tail::FileIdentity::of_file(&mut File::open(path).unwrap()).unwrap()
}

#[tokio::test]
async fn polling_fallback_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = TailConfig::new(LogSource::arma3(dir.path()));
    cfg.use_notify = false;
    cfg.poll_interval = Duration::from_millis(100);
    // No file yet: the first one to appear is read from its start.
    let mut t = Tail::spawn(cfg, None);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let a = rpt(dir.path(), "2024-01-01_10-00-00");
    append(&a, b"a 0\n");
    t.lines(1).await;
    append(&a, b"a 1\n");
    t.lines(2).await;
    let b = rpt(dir.path(), "2024-01-01_11-00-00");
    append(&a, b"a 2\n");
    append(&b, b"b 0\n");
    t.lines(4).await;
    OpenOptions::new()
        .write(true)
        .open(&b)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&b, b"b1\n");
    t.lines(5).await;
    assert_eq!(t.texts(), ["a 0", "a 1", "a 2", "b 0", "b1"]);
    assert_eq!(t.handle.stats().truncations, 1);
    assert!(!t.handle.stats().notify_active);
    t.stop().await;
}

#[tokio::test]
async fn lines_held_back_by_the_consumer_are_not_judged_by_the_reading_rate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.log");
    append(&path, b"");
    let mut cfg = file_cfg(&path);
    cfg.max_lines_per_sec = 1000;
    cfg.channel_capacity = 1;
    cfg.batch_max_lines = 50;
    let mut t = Tail::spawn(cfg, None);
    t.until("open", |t| !t.events.is_empty()).await;
    // The server writes 600 lines/s (under the limit) for 3 s while the consumer takes nothing
    // (as when the agent's spool is full): the reader stalls on the full channel.
    for i in 0..30 {
        append(&path, numbered("slow", i * 60..(i + 1) * 60).as_bytes());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The consumer is back: the backlog arrives at reading speed, far above 1000/s, and nothing
    // is dropped, because the server never wrote faster than the limit.
    t.lines(1800).await;
    assert_eq!(t.handle.stats().dropped_lines, 0, "{:?}", t.events);
    assert_eq!(t.lines[1799].text, "slow 1799");
    t.stop().await;
}

#[tokio::test]
async fn a_flood_written_while_the_consumer_held_back_is_still_judged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.log");
    append(&path, b"");
    let mut cfg = file_cfg(&path);
    cfg.max_lines_per_sec = 1000;
    cfg.channel_capacity = 1;
    cfg.batch_max_lines = 50;
    let mut t = Tail::spawn(cfg, None);
    t.until("open", |t| !t.events.is_empty()).await;
    // Fill the channel, then flood (20,000 lines in well under a second) while nothing is taken.
    append(&path, numbered("first", 0..200).as_bytes());
    tokio::time::sleep(Duration::from_millis(300)).await;
    append(&path, numbered("flood", 0..20_000).as_bytes());
    tokio::time::sleep(Duration::from_millis(700)).await;
    let total = |t: &Tail| {
        t.lines.len() as u64
            + t.events
                .iter()
                .map(|e| match e {
                    TailEvent::Dropped { count, .. } => *count,
                    _ => 0,
                })
                .sum::<u64>()
    };
    t.until("every line delivered or reported dropped", |t| {
        total(t) >= 20_200
    })
    .await;
    assert!(
        t.handle.stats().dropped_lines > 10_000,
        "the flood guard still applies: {:?}",
        t.handle.stats()
    );
    t.stop().await;
}
