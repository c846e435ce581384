//! The real binary, driven like a manager drives arma3server_x64.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Fake, free_port, has_full_stamp, has_short_stamp, run_to_exit};
use fake_arma3server::FINAL_LINE;
use nix::sys::signal::Signal;

const T: Duration = Duration::from_secs(5);

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn game_started(l: &str) -> bool {
    l.ends_with(" Game started.")
}

#[test]
fn stdout_log_has_header_both_stamps_and_clean_sigterm_exit() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let port_arg = format!("-port={port}");
    let mut f = Fake::start(
        dir.path(),
        &[
            &port_arg,
            "-world=empty",
            "-autoInit",
            "-limitFPS=50",
            "-mod=@ace;@CBA_A3",
            "-fakeStartDelay=0",
        ],
    );
    assert!(f.wait_for(T, game_started).is_some(), "no Game started.");
    let t0 = Instant::now();
    f.signal(Signal::SIGTERM);
    let status = f.wait_exit(T);
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert_eq!(status.code(), Some(0));
    let l = &f.lines;
    // Header block: ===== lines, exe path, full command line, version, memory; no timestamps.
    assert!(l[0].starts_with("====="));
    assert!(l[1].starts_with("== ") && l[1].contains("fake-arma3server"));
    assert!(
        l[2].starts_with("== \"") && l[2].contains(&port_arg) && l[2].contains("-mod=@ace;@CBA_A3")
    );
    assert!(l.iter().any(|x| x.starts_with("Version: ")));
    assert!(l.iter().any(|x| x.starts_with("PhysMem: ")));
    let header_end = l
        .iter()
        .skip(1)
        .position(|x| x.starts_with("====="))
        .unwrap()
        + 1;
    assert!(
        l[..=header_end]
            .iter()
            .all(|x| !has_short_stamp(x) && !has_full_stamp(x))
    );
    // Short form first, then full form.
    let first_short = l.iter().position(|x| has_short_stamp(x)).unwrap();
    let first_full = l.iter().position(|x| has_full_stamp(x)).unwrap();
    assert!(header_end < first_short && first_short < first_full);
    assert!(
        l[first_full].contains(&format!("Game Port: {port}")),
        "{}",
        l[first_full]
    );
    assert!(
        l.iter()
            .any(|x| has_short_stamp(x) && x.ends_with("@CBA_A3"))
    );
    // Multi-line Error in expression block: continuation lines carry no timestamp.
    let e = l
        .iter()
        .position(|x| has_full_stamp(x) && x.contains("Error in expression <"))
        .unwrap();
    assert_eq!(l[e + 1], "_leader = _possibleLeaders select 0;");
    assert!(!has_full_stamp(&l[e + 2]) && has_full_stamp(&l[e + 3]));
    assert!(l.iter().any(|x| x.ends_with("read from bank.")));
    let last = l.last().unwrap();
    assert!(
        has_full_stamp(last) && last[21..].starts_with(FINAL_LINE),
        "{last}"
    );
    assert!(last.ends_with("(SIGTERM)."));
}

#[test]
fn profiles_log_file_name_header_and_exit_after() {
    let dir = tempfile::tempdir().unwrap();
    let prof = dir.path().join("prof");
    let port = format!("-port={}", free_port());
    let prof_arg = format!("-profiles={}", prof.display());
    let before = chrono::Local::now() - chrono::Duration::seconds(1);
    let mut f = Fake::start(
        dir.path(),
        &[
            &port,
            &prof_arg,
            "-fakeLogTo=profiles",
            "-fakeExitAfter=0.6",
            "-fakeStartDelay=0",
        ],
    );
    let status = f.wait_exit(T);
    let after = chrono::Local::now() + chrono::Duration::seconds(1);
    assert_eq!(status.code(), Some(0));
    assert!(
        f.lines.is_empty(),
        "nothing on stdout in profiles mode: {:?}",
        f.lines.first()
    );
    let files: Vec<String> = std::fs::read_dir(&prof)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".rpt"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = &files[0];
    let stamp = name
        .strip_prefix("arma3server_x64_")
        .and_then(|s| s.strip_suffix(".rpt"))
        .unwrap();
    let t = chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d_%H-%M-%S").unwrap();
    assert!(
        t >= before.naive_local() && t <= after.naive_local(),
        "{name}"
    );
    let text = std::fs::read_to_string(prof.join(name)).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("====="));
    assert!(lines[2].contains("-fakeLogTo=profiles"));
    assert!(lines.iter().any(|l| l.starts_with("Current time:  ")
        && l.contains(&t.format("%Y/%m/%d %H:%M:%S").to_string())));
    assert!(lines.iter().any(|l| has_short_stamp(l)));
    assert!(lines.iter().any(|l| has_full_stamp(l)));
    assert!(lines.last().unwrap().ends_with("(-fakeExitAfter)."));
}

#[test]
fn hang_ignores_sigterm_and_dies_on_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let port = format!("-port={}", free_port());
    let mut f = Fake::start(dir.path(), &[&port, "-fakeHang", "-fakeStartDelay=0"]);
    assert!(f.wait_for(T, game_started).is_some());
    f.signal(Signal::SIGTERM);
    f.signal(Signal::SIGINT);
    f.drain_for(Duration::from_millis(600));
    assert!(f.still_running(), "-fakeHang must survive SIGTERM/SIGINT");
    assert!(!f.lines.iter().any(|l| l.contains(FINAL_LINE)));
    f.signal(Signal::SIGKILL);
    let status = f.wait_exit(T);
    assert_eq!(status.signal(), Some(9));
}

#[test]
fn crash_with_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let port = format!("-port={}", free_port());
    let mut f = Fake::start(
        dir.path(),
        &[
            &port,
            "-fakeCrashAfter=0.4",
            "-fakeExitCode=42",
            "-fakeStartDelay=0",
        ],
    );
    let status = f.wait_exit(T);
    assert_eq!(status.code(), Some(42));
    assert!(f.lines.iter().any(|l| l.ends_with("Game started.")));
    assert!(!f.lines.iter().any(|l| l.contains(FINAL_LINE)));
}

#[test]
fn crash_by_signal() {
    for (name, num) in [("SEGV", 11), ("ABRT", 6), ("KILL", 9)] {
        let dir = tempfile::tempdir().unwrap();
        let port = format!("-port={}", free_port());
        let sig = format!("-fakeCrashSignal={name}");
        let mut f = Fake::start(
            dir.path(),
            &[&port, "-fakeCrashAfter=0.2", &sig, "-fakeStartDelay=0"],
        );
        let status = f.wait_exit(T);
        assert_eq!(status.signal(), Some(num), "{name}: {status:?}");
        assert!(!f.lines.iter().any(|l| l.contains(FINAL_LINE)));
    }
}

#[test]
fn flood_rate_and_total() {
    let dir = tempfile::tempdir().unwrap();
    let port = format!("-port={}", free_port());
    let mut f = Fake::start(
        dir.path(),
        &[&port, "-fakeFloodRate=2000", "-fakeStartDelay=0"],
    );
    assert!(f.wait_for(T, game_started).is_some());
    let start = f.lines.len();
    f.drain_for(Duration::from_secs(1));
    let n = f.lines.len() - start;
    // 2000/s asked; a loose lower bound only.
    assert!(n >= 500, "only {n} lines in 1 s at -fakeFloodRate=2000");
    f.signal(Signal::SIGTERM);
    assert_eq!(f.wait_exit(T).code(), Some(0));

    let dir = tempfile::tempdir().unwrap();
    let port = format!("-port={}", free_port());
    let mut f = Fake::start(
        dir.path(),
        &[
            &port,
            "-fakeFloodRate=1000",
            "-fakeFloodLines=40",
            "-fakeStartDelay=0",
        ],
    );
    assert!(f.wait_for(T, game_started).is_some());
    f.drain_for(Duration::from_millis(500));
    f.signal(Signal::SIGTERM);
    assert_eq!(f.wait_exit(T).code(), Some(0));
    let started = f.lines.iter().position(|l| game_started(l)).unwrap();
    let flood: Vec<&String> = f.lines[started + 1..]
        .iter()
        .filter(|l| !l.contains(FINAL_LINE))
        .collect();
    assert_eq!(flood.len(), 40);
    assert!(flood.iter().all(|l| has_full_stamp(l)));
}

#[test]
fn control_file_drives_players_chat_log_and_crash() {
    let dir = tempfile::tempdir().unwrap();
    let prof = dir.path().join("prof");
    std::fs::create_dir_all(&prof).unwrap();
    let ctl = prof.join("fake-control.txt");
    // Content present at start is not replayed.
    append(&ctl, "crash 3\n");
    let port = format!("-port={}", free_port());
    let prof_arg = format!("-profiles={}", prof.display());
    let mut f = Fake::start(dir.path(), &[&port, &prof_arg, "-fakeStartDelay=0"]);
    assert!(f.wait_for(T, game_started).is_some());
    append(&ctl, "join Free Style\n");
    let c = f
        .wait_for(T, |l| l.contains("Player Free Style connected (id="))
        .unwrap();
    assert!(has_full_stamp(&c) && c.ends_with(")."));
    assert!(f.wait_for(T, |l| l.contains("Verified GUID (")).is_some());
    append(
        &ctl,
        "chat Free Style: hello: all\nlog Error in expression <x>\\n  continuation\n",
    );
    assert!(
        f.wait_for(T, |l| l
            .ends_with("BattlEye Server: (Global) Free Style: hello: all"))
            .is_some()
    );
    assert!(f.wait_for(T, |l| l == "  continuation").is_some());
    append(&ctl, "leave Free Style\n");
    assert!(
        f.wait_for(T, |l| l.ends_with(" Player Free Style disconnected."))
            .is_some()
    );
    append(&ctl, "crash 7\n");
    assert_eq!(f.wait_exit(T).code(), Some(7));
}

#[test]
fn scripted_players_join_and_leave() {
    let dir = tempfile::tempdir().unwrap();
    let port = format!("-port={}", free_port());
    let mut f = Fake::start(
        dir.path(),
        &[
            &port,
            "-fakePlayers=Alice,Bob",
            "-fakeJoinInterval=0.2",
            "-fakeStay=0.6",
            "-fakeStartDelay=0",
        ],
    );
    assert!(
        f.wait_for(T, |l| l.contains("Player Bob connected (id="))
            .is_some()
    );
    assert!(
        f.wait_for(T, |l| l.ends_with("Player Bob disconnected."))
            .is_some()
    );
    let a_in = f
        .lines
        .iter()
        .position(|l| l.contains("Player Alice connected (id="))
        .unwrap();
    let a_out = f
        .lines
        .iter()
        .position(|l| l.ends_with("Player Alice disconnected."))
        .unwrap();
    assert!(a_in < a_out);
    f.signal(Signal::SIGINT);
    assert_eq!(f.wait_exit(T).code(), Some(0));
    assert!(f.lines.last().unwrap().ends_with("(SIGINT)."));
}

#[test]
fn non_loopback_addresses_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let be = dir.path().join("BattlEye");
    std::fs::create_dir_all(&be).unwrap();
    std::fs::write(
        be.join("BEServer_x64.cfg"),
        "RConPassword pw\nRConPort 2399\nRConIP 0.0.0.0\n",
    )
    .unwrap();
    let prof = format!("-profiles={}", dir.path().display());
    let port = format!("-port={}", free_port());
    let (status, _out, err) = run_to_exit(dir.path(), &[&port, &prof]);
    assert_eq!(status.code(), Some(1));
    assert!(err.contains("loopback"), "{err}");

    let (status, _out, err) = run_to_exit(dir.path(), &[&port, "-ip=192.168.1.10"]);
    assert_eq!(status.code(), Some(1));
    assert!(err.contains("loopback"), "{err}");
}

#[test]
fn bad_parameters_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    for bad in [
        "-port=abc",
        "-port=0",
        "-fakeCrashAfter=soon",
        "-fakeLogTo=nowhere",
        "-fakeTypo=1",
        "-fakeCrashSignal=SEGV",
    ] {
        let (status, out, err) = run_to_exit(dir.path(), &[bad]);
        assert_eq!(status.code(), Some(1), "{bad}");
        assert!(!err.trim().is_empty(), "{bad}: no message on stderr");
        assert!(out.is_empty(), "{bad}: no log expected");
    }
    let (status, out, _) = run_to_exit(dir.path(), &["-fakeHelp"]);
    assert_eq!(status.code(), Some(0));
    assert!(out.contains("-fakeCrashAfter=SECS"));
}

#[test]
fn library_entry_point_returns_exit_codes() {
    assert_eq!(fake_arma3server::run(vec!["-port=abc".into()]), 1);
    assert_eq!(fake_arma3server::run(vec!["-fakeHelp".into()]), 0);
}

#[test]
fn game_port_clash_is_real() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = format!("-port={}", taken.local_addr().unwrap().port());
    let (status, _out, err) = run_to_exit(dir.path(), &[&port]);
    assert_eq!(status.code(), Some(1));
    assert!(err.contains("cannot bind game port"), "{err}");
}

#[test]
fn control_hang_freezes_output_and_ignores_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let ctl = dir.path().join("ctl.txt");
    let port = format!("-port={}", free_port());
    let ctl_arg = format!("-fakeControl={}", ctl.display());
    let mut f = Fake::start(
        dir.path(),
        &[
            &port,
            &ctl_arg,
            "-fakeLoadInterval=0.1",
            "-fakeStartDelay=0",
        ],
    );
    assert!(
        f.wait_for(T, |l| l.contains(" Server load: FPS "))
            .is_some()
    );
    append(&ctl, "log before-hang\nhang\n");
    assert!(f.wait_for(T, |l| l.ends_with(" before-hang")).is_some());
    f.drain_for(Duration::from_millis(300));
    let frozen_at = f.lines.len();
    f.signal(Signal::SIGTERM);
    f.drain_for(Duration::from_millis(500));
    assert!(f.still_running(), "a hung server ignores SIGTERM");
    assert_eq!(f.lines.len(), frozen_at, "a hung server writes nothing");
    f.signal(Signal::SIGKILL);
    assert_eq!(f.wait_exit(T).signal(), Some(9));
}
