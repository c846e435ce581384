#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use languard_spool::procid::{
    ExitObserved, ExitReason, ProcError, ProcessIdentity, is_alive, wait_exit, wait_exit_every,
};
use tokio_util::sync::CancellationToken;

fn sleep_bin() -> std::path::PathBuf {
    std::fs::canonicalize(
        ["/bin/sleep", "/usr/bin/sleep"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn identity_of_a_real_process_matches_until_it_is_killed() {
    let mut child = Command::new(sleep_bin()).arg("30").spawn().unwrap();
    let pid = i32::try_from(child.id()).unwrap();
    let id = ProcessIdentity::of(pid).unwrap();
    assert_eq!(id.pid, pid);
    assert!(id.start_time_ticks > 0);
    assert_eq!(id.exe, sleep_bin());
    assert!(is_alive(pid));
    assert!(id.is_running());
    let again = ProcessIdentity::of(pid).unwrap();
    assert!(again.matches(&id));
    // Serialisable, to be stored in the state dir.
    let json = serde_json::to_string(&id).unwrap();
    assert_eq!(serde_json::from_str::<ProcessIdentity>(&json).unwrap(), id);

    // A recorded identity with another start time (a recycled pid) or exe never matches.
    let recycled = ProcessIdentity {
        start_time_ticks: id.start_time_ticks + 1,
        ..id.clone()
    };
    assert!(!again.matches(&recycled));
    let other_exe = ProcessIdentity {
        exe: "/usr/bin/arma3server_x64".into(),
        ..id.clone()
    };
    assert!(!again.matches(&other_exe));

    // Kill it without reaping: it becomes a zombie, which counts as exited.
    let cancel = CancellationToken::new();
    let started = Instant::now();
    let waiter = {
        let id = id.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move { wait_exit(&id, &cancel).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    child.kill().unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(2), waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen, ExitObserved::Exited(ExitReason::Zombie));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert!(!is_alive(pid), "a zombie is not alive");
    assert!(!id.is_running());
    assert!(matches!(
        ProcessIdentity::of(pid),
        Err(ProcError::Exited(_))
    ));

    // Reaped: gone from /proc entirely.
    child.wait().unwrap();
    assert!(matches!(
        ProcessIdentity::of(pid),
        Err(ProcError::NoSuchProcess(_))
    ));
    let seen = wait_exit(&id, &CancellationToken::new()).await;
    assert_eq!(seen, ExitObserved::Exited(ExitReason::Gone));
}

#[tokio::test]
async fn different_processes_do_not_match() {
    let mut a = Command::new(sleep_bin()).arg("30").spawn().unwrap();
    // Make sure the second one starts at a later clock tick (ticks are 10 ms).
    std::thread::sleep(Duration::from_millis(30));
    let mut b = Command::new(sleep_bin()).arg("30").spawn().unwrap();
    let ia = ProcessIdentity::of(i32::try_from(a.id()).unwrap()).unwrap();
    let ib = ProcessIdentity::of(i32::try_from(b.id()).unwrap()).unwrap();
    assert_ne!(ia.start_time_ticks, ib.start_time_ticks);
    assert_eq!(ia.exe, ib.exe);
    assert!(!ia.matches(&ib));
    // Even the same pid with b's start time (what a recycled pid looks like) does not match.
    let forged = ProcessIdentity {
        pid: ia.pid,
        ..ib.clone()
    };
    assert!(!ia.matches(&forged));
    // And the poller treats a start-time mismatch as "our process is gone".
    let seen = wait_exit_every(
        &forged,
        &CancellationToken::new(),
        Duration::from_millis(10),
    )
    .await;
    assert_eq!(seen, ExitObserved::Exited(ExitReason::PidReused));
    a.kill().unwrap();
    b.kill().unwrap();
    a.wait().unwrap();
    b.wait().unwrap();
}

#[tokio::test]
async fn wait_exit_is_cancellable() {
    let mut child = Command::new(sleep_bin()).arg("30").spawn().unwrap();
    let id = ProcessIdentity::of(i32::try_from(child.id()).unwrap()).unwrap();
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        c2.cancel();
    });
    let seen = tokio::time::timeout(Duration::from_secs(2), wait_exit(&id, &cancel))
        .await
        .unwrap();
    assert_eq!(seen, ExitObserved::Cancelled);
    assert!(id.is_running());
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn non_child_exit_is_detected() {
    // sh starts sleep in the background and exits: sleep is re-parented, not our child.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} 0.6 >/dev/null 2>&1 & echo $!",
            sleep_bin().display()
        ))
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    let pid: i32 = String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let id = ProcessIdentity::of(pid).unwrap();
    assert!(is_alive(pid));
    let started = Instant::now();
    let seen = tokio::time::timeout(
        Duration::from_secs(3),
        wait_exit(&id, &CancellationToken::new()),
    )
    .await
    .unwrap();
    // Reaped by init (Gone) or left as a zombie by a non-reaping pid 1 (Zombie): both are exits.
    assert!(
        matches!(
            seen,
            ExitObserved::Exited(ExitReason::Gone | ExitReason::Zombie)
        ),
        "{seen:?}"
    );
    let t = started.elapsed();
    assert!(
        t >= Duration::from_millis(300) && t < Duration::from_millis(1500),
        "{t:?}"
    );
    assert!(!is_alive(pid));
}

#[tokio::test]
async fn deleted_executable_keeps_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("arma3server_x64");
    std::fs::copy(sleep_bin(), &exe).unwrap();
    let exe = std::fs::canonicalize(&exe).unwrap();
    let mut child = Command::new(&exe).arg("30").spawn().unwrap();
    let pid = i32::try_from(child.id()).unwrap();
    let before = ProcessIdentity::of(pid).unwrap();
    assert_eq!(before.exe, exe);
    // A game update replaces the binary while the server runs.
    std::fs::remove_file(&exe).unwrap();
    let link = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(link.to_string_lossy().ends_with(" (deleted)"), "{link:?}");
    let after = ProcessIdentity::of(pid).unwrap();
    assert_eq!(after.exe, exe);
    assert!(after.matches(&before));
    child.kill().unwrap();
    child.wait().unwrap();
}
