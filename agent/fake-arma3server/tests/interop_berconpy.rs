//! Proves that the test double speaks the real BattlEye RCon protocol: an independent third-party
//! client from PyPI (`berconpy`) logs in, reads a multi-part `players` answer, receives a server
//! message, and is refused with a wrong password. `berconpy` is installed into `target/tools`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn berconpy() -> PathBuf {
    let tools = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/tools");
    let dir = tools.join("berconpy");
    if !dir.join("berconpy").exists() {
        std::fs::create_dir_all(&tools).unwrap();
        let staging = tools.join(format!("berconpy.{}", std::process::id()));
        let ok = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "--target"])
            .arg(&staging)
            .arg("berconpy==3.1.4")
            .status()
            .expect("python3 -m pip");
        assert!(ok.success(), "installing berconpy from PyPI failed");
        let _ = std::fs::rename(&staging, &dir);
        let _ = std::fs::remove_dir_all(&staging);
    }
    dir
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run_script(port: u16, password: &str, control: Option<&Path>) -> serde_json::Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/berconpy_check.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .arg(port.to_string())
        .arg(password)
        .args(control.map(|_| "wait"))
        .env("PYTHONPATH", berconpy())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(control) = control {
        // Once logged in and the players answer is read, make a player join.
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        while err.read_line(&mut line).unwrap() > 0 && !line.contains("READY") {
            line.clear();
        }
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(control)
            .unwrap();
        writeln!(f, "join Zed").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn berconpy_logs_in_reads_a_multipart_answer_and_gets_server_messages() {
    let dir = tempfile::tempdir().unwrap();
    let profiles = dir.path().join("profiles");
    let be = profiles.join("BattlEye");
    std::fs::create_dir_all(&be).unwrap();
    let rcon_port = free_udp_port();
    std::fs::write(
        be.join("beserver_x64.cfg"),
        format!("RConPassword interop-pw\nRConPort {rcon_port}\nRConIP 127.0.0.1\n"),
    )
    .unwrap();
    let control = profiles.join("fake-control.txt");
    std::fs::write(&control, "").unwrap();
    let names: Vec<String> = (1..=20).map(|i| format!("Player{i:02}")).collect();
    let log = dir.path().join("server.log");
    let mut server = Command::new(env!("CARGO_BIN_EXE_fake-arma3server"))
        .arg(format!("-port={}", free_udp_port()))
        .arg(format!("-profiles={}", profiles.display()))
        .arg(format!("-fakePlayers={}", names.join(",")))
        .args([
            "-fakeJoinInterval=0.05",
            "-fakeExitAfter=60",
            "-fakeStartDelay=0",
        ])
        .arg(format!("-fakeControl={}", control.display()))
        .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until every scripted player is on (the RCon answer is then above the multi-part size).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("Player Player20 connected")
    {
        assert!(
            Instant::now() < deadline,
            "the scripted players did not join"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = run_script(rcon_port, "interop-pw", None);
    let players = out["players"].as_str().unwrap();
    assert!(players.contains("(20 players in total)"), "{players}");
    assert!(
        players.len() > 1024,
        "the answer needed several parts: {} bytes",
        players.len()
    );
    for n in &names {
        assert!(players.contains(n.as_str()), "{n} missing");
    }
    assert!(
        out["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m.as_str().unwrap_or("").contains("RCon admin")),
        "{out}"
    );
    // A server message arrives while connected.
    let out = run_script(rcon_port, "interop-pw", Some(&control));
    let msgs: Vec<&str> = out["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m.as_str())
        .collect();
    assert!(
        msgs.iter()
            .any(|m| m.contains("Zed") && m.ends_with("connected")),
        "{msgs:?}"
    );
    // A wrong password is refused.
    let out = run_script(rcon_port, "wrong", None);
    assert!(
        out["login"].as_str().unwrap().starts_with("failed"),
        "{out}"
    );
    server.kill().unwrap();
    server.wait().unwrap();
}
