//! The `languard-agent` binary's command line: configuration errors are reported clearly, with
//! exit code 2, before anything starts. (This test also makes `cargo nextest run --workspace` build
//! the agent binary that the controller's integration tests start.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn agent() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_languard-agent"));
    // Only what the test sets: no LANGUARD_* from the environment of whoever runs the tests.
    for (k, _) in std::env::vars() {
        if k.starts_with("LANGUARD_") {
            c.env_remove(k);
        }
    }
    c
}

#[test]
fn version_and_help_work() {
    let out = agent().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
    let out = agent().arg("--help").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("--controller-url"));
}

#[test]
fn a_missing_token_or_bad_url_exits_2_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let out = agent().arg("--state-dir").arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("node_token"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = agent()
        .args([
            "--node-token",
            "lgn_x",
            "--controller-url",
            "ftp://controller",
        ])
        .arg("--state-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("controller_url"));
    // A typo in the config file is an error, not silently ignored.
    let cfg = dir.path().join("agent.toml");
    std::fs::write(&cfg, "node_tokn = \"lgn_x\"\n").unwrap();
    let out = agent().arg("--config").arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("node_tokn"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
