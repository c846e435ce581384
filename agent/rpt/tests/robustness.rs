//! Deterministic stand-in for the fuzz target (`fuzz/`): ~200k pseudo-random and mutated fixture
//! lines through `parse_line` and the assembler, checking that nothing panics and the invariants
//! hold.
#![allow(clippy::unwrap_used)]

use std::borrow::Cow;

use chrono::TimeDelta;
use languard_rpt::{Entry, EntryAssembler, Kind, Limits, Timestamp, parse_line};

const LOG: &str = include_str!("data/arma3server_x64_2021-10-05_08-38-26.rpt");
const LINES: usize = 200_000;

/// SplitMix64: tiny, deterministic, good enough for test input.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const PIECES: &[&str] = &[
    " 9:12:14 ",
    "23:59:59 ",
    " 0:00:00",
    "2021/10/05, 08:38:52 ",
    "2021/02/29, 08:38:52 ",
    "Player ",
    " connected (id=",
    ").",
    " disconnected.",
    "Mission ",
    " read from bank.",
    "Server load: FPS ",
    ", memory used: ",
    " MB",
    "BattlEye Server: ",
    "Error in expression <",
    "  Error position: <",
    "File x.sqf..., line ",
    "Warning Message: ",
    "| Error |",
    "WARNING:",
    "=====",
    "== ",
    "Current time:  2021/10/05 08:38:26",
    "➥",
    "\u{feff}",
    "\r",
    "\t",
    "é",
    "\u{fffd}",
    ":",
    " ",
];

/// One mutated byte string, decoded lossily like the fuzz target does.
fn make_line(rng: &mut Rng, fixture: &[&str]) -> String {
    let base = fixture[rng.below(fixture.len())].as_bytes();
    let mut b: Vec<u8> = match rng.below(10) {
        // unchanged real line
        0..=2 => base.to_vec(),
        // random bytes
        3 => (0..rng.below(40)).map(|_| rng.next() as u8).collect(),
        // pieces glued together
        4 | 5 => {
            let mut v = Vec::new();
            for _ in 0..=rng.below(6) {
                v.extend_from_slice(PIECES[rng.below(PIECES.len())].as_bytes());
                if rng.below(2) == 0 {
                    v.extend_from_slice(rng.below(100_000).to_string().as_bytes());
                }
            }
            v
        }
        // real line with byte mutations
        _ => {
            let mut v = base.to_vec();
            for _ in 0..=rng.below(4) {
                let i = rng.below(v.len() + 1);
                match rng.below(5) {
                    0 if i < v.len() => v[i] = rng.next() as u8,
                    1 if i < v.len() => {
                        v.remove(i);
                    }
                    2 => v.truncate(i),
                    3 => {
                        let p = PIECES[rng.below(PIECES.len())].as_bytes();
                        v.splice(i..i, p.iter().copied());
                    }
                    _ => {
                        let d = b"0123456789/:, "[rng.below(14)];
                        v.insert(i, d);
                    }
                }
            }
            v
        }
    };
    // lines never contain '\n' (the caller splits on it)
    b.retain(|&c| c != b'\n');
    match String::from_utf8_lossy(&b) {
        Cow::Borrowed(s) => s.to_owned(),
        Cow::Owned(s) => s,
    }
}

fn is_substr(inner: &str, outer: &str) -> bool {
    let (o, i) = (outer.as_ptr() as usize, inner.as_ptr() as usize);
    i >= o && i + inner.len() <= o + outer.len()
}

fn check_line(line: &str) {
    let p = parse_line(line);
    // text is a suffix of the line without its EOL
    let body = line.strip_suffix('\n').unwrap_or(line);
    let body = body.strip_suffix('\r').unwrap_or(body);
    assert!(is_substr(p.text, line), "{line:?}");
    assert!(body.ends_with(p.text), "{line:?}");
    assert_eq!(
        p.text.as_ptr() as usize + p.text.len(),
        body.as_ptr() as usize + body.len()
    );
    let prefix = body.len() - p.text.len();
    match p.timestamp {
        Timestamp::None => assert!(prefix <= 3, "{line:?}"), // at most a BOM
        Timestamp::Short { h, m, s } => {
            assert!(h < 24 && m < 60 && s < 60);
            assert!((8..=12).contains(&prefix), "{line:?}");
        }
        Timestamp::Full { .. } => assert!((20..=24).contains(&prefix), "{line:?}"),
    }
    // borrowed kind fields point into the line
    let fields: Vec<&str> = match &p.kind {
        Kind::PlayerConnected { name, id } => {
            let mut v = vec![name.as_ref()];
            v.extend(id.as_deref());
            v
        }
        Kind::PlayerDisconnected { name } => vec![name.as_ref()],
        Kind::MissionRead { mission } => vec![mission.as_ref()],
        Kind::BattlEye { message } => vec![message.as_ref()],
        Kind::Header { .. } => panic!("parse_line never yields Header"),
        Kind::ServerLoad(l) => {
            assert!(l.fps.is_finite() && l.fps >= 0.0);
            vec![]
        }
        _ => vec![],
    };
    for f in fields {
        assert_eq!(p.kind.clone().into_owned(), p.kind);
        assert!(is_substr(f, p.text), "{f:?} in {line:?}");
    }
}

fn check_entry(e: &Entry, limits: &Limits) {
    let marker = 40;
    assert!(
        e.text.len() <= limits.max_entry_bytes + marker,
        "{}",
        e.text.len()
    );
    let lines = e.text.split('\n').count();
    assert!(lines <= limits.max_entry_lines as usize + 1, "{lines}");
    assert!(e.line_count >= 1);
    assert!(lines <= e.line_count as usize + 1);
    if lines > e.line_count as usize {
        assert!(e.truncated);
    }
}

#[test]
fn random_and_mutated_lines_never_panic() {
    let fixture: Vec<&str> = LOG.lines().collect();
    let mut rng = Rng(0x5EED_2021_1005);
    let limits = Limits {
        max_entry_lines: 20,
        max_entry_bytes: 2_000,
    };
    let mut asm = EntryAssembler::new(None)
        .with_limits(limits)
        .with_rollover_threshold(TimeDelta::hours(2));
    let mut entries = 0usize;
    let mut lines_in_entries = 0u64;
    let mut timestamped = 0usize;
    let mut take = |e: Option<Entry>| {
        if let Some(e) = e {
            check_entry(&e, &limits);
            entries += 1;
            lines_in_entries += u64::from(e.line_count);
        }
    };
    for i in 0..LINES {
        let mut line = make_line(&mut rng, &fixture);
        if i % 97 == 0 {
            line.push_str("\r\n");
        }
        check_line(&line);
        if parse_line(&line).timestamp.is_some() {
            timestamped += 1;
        }
        take(asm.push(&line));
        // a runaway block of continuation lines now and then
        if i % 10_000 == 0 {
            for _ in 0..100 {
                let e = asm.push("runaway continuation");
                assert!(e.is_none() || asm.in_header());
                take(e);
            }
        }
    }
    take(asm.flush());
    // every timestamped line starts an entry unless it was merged into an error block
    assert!(entries >= timestamped / 2, "{entries} {timestamped}");
    assert!(lines_in_entries <= (LINES + 100 * 20) as u64);
    assert!(timestamped > LINES / 4);
}

#[test]
fn tiny_limits_and_huge_lines() {
    let limits = Limits {
        max_entry_lines: 0,
        max_entry_bytes: 0,
    };
    let mut asm = EntryAssembler::new(None).with_limits(limits);
    let huge = format!(" 1:00:00 {}", "➥".repeat(100_000));
    assert!(asm.push(&huge).is_none());
    assert!(asm.push("x").is_none());
    let e = asm.push(" 1:00:01 y").unwrap();
    assert!(e.truncated);
    assert_eq!(e.text, "\n[... 1 more line truncated]");
    assert_eq!(e.line_count, 2);
    let e = asm.flush().unwrap();
    assert_eq!(e.text, " [... truncated]");

    // default limits bound a 1 MB line and a 100k-line block
    let limits = Limits::default();
    let mut asm = EntryAssembler::new(None);
    assert!(asm.push(&huge).is_none());
    let e = asm.flush().unwrap();
    assert!(e.truncated && e.text.len() <= limits.max_entry_bytes + 20);
    assert!(e.text.ends_with("➥ [... truncated]"));
    assert!(asm.push(" 1:00:02 start").is_none());
    for _ in 0..100_000 {
        assert!(asm.push("\tat something").is_none());
    }
    let e = asm.flush().unwrap();
    assert_eq!(e.line_count, 100_001);
    assert_eq!(e.text.lines().count(), limits.max_entry_lines as usize + 1);
    assert!(e.text.ends_with("[... 99001 more lines truncated]"));
}
