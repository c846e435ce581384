//! BattlEye config handling and RCon over the network, with the project's RCon client.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Fake, free_port};
use languard_battleye::{Client, ClientConfig, Message, messages};

const T: Duration = Duration::from_secs(5);

fn active_copies(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("beserver_x64_active_"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rcon_players_messages_and_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let be = dir.path().join("BattlEye");
    std::fs::create_dir_all(&be).unwrap();
    let rcon_port = free_port();
    std::fs::write(
        be.join("beserver_x64.cfg"),
        format!("RConPassword s3cret\nRConPort {rcon_port}\n"),
    )
    .unwrap();
    let port = format!("-port={}", free_port());
    let prof = format!("-profiles={}", dir.path().display());
    let args = [
        port.as_str(),
        &prof,
        "-fakePlayers=Alice",
        "-fakeJoinInterval=0.1",
        "-fakeStartDelay=0",
    ];
    let mut f = tokio::task::block_in_place(|| {
        let mut f = Fake::start(dir.path(), &args);
        assert!(f.wait_for(T, |l| l.contains("Verified GUID (")).is_some());
        f
    });
    // The active copy exists while the server runs.
    assert_eq!(active_copies(&be).len(), 1);

    let addr = format!("127.0.0.1:{rcon_port}").parse().unwrap();
    let client = Client::connect(addr, "s3cret", ClientConfig::default())
        .await
        .unwrap();
    let mut msgs = client.subscribe_messages();
    let players = client.players().await.unwrap();
    assert_eq!(players.players.len(), 1);
    let alice = &players.players[0];
    assert_eq!(
        (alice.name.as_str(), alice.ip.as_str(), alice.slot),
        ("Alice", "127.0.0.1", 0)
    );
    assert!(alice.verified && alice.guid.as_deref().is_some_and(|g| g.len() == 32));
    assert!(
        client
            .command("missions")
            .await
            .unwrap()
            .starts_with("Missions on server:\n")
    );

    // A control-file join reaches RCon as server messages.
    std::fs::write(dir.path().join("fake-control.txt"), "join Bob\n").unwrap();
    let mut seen_connect = false;
    let deadline = tokio::time::Instant::now() + T;
    while !seen_connect {
        let m = tokio::time::timeout_at(deadline, msgs.recv())
            .await
            .unwrap()
            .unwrap();
        if let Message::PlayerConnected { slot, name, ip, .. } = messages::parse(&m.text) {
            assert_eq!((slot, name.as_str(), ip.as_str()), (1, "Bob", "127.0.0.1"));
            seen_connect = true;
        }
    }
    // Kick through RCon: kick message then disconnect, and the log says so.
    client.command("kick 1 spam").await.unwrap();
    let mut kicked = false;
    while !kicked {
        let m = tokio::time::timeout_at(deadline, msgs.recv())
            .await
            .unwrap()
            .unwrap();
        if let Message::PlayerKicked { name, reason, .. } = messages::parse(&m.text) {
            assert_eq!(
                (name.as_str(), reason.as_str()),
                ("Bob", "Admin Kick (spam)")
            );
            kicked = true;
        }
    }
    assert_eq!(client.players().await.unwrap().players.len(), 1);

    client.command("#shutdown").await.unwrap();
    let status = tokio::task::block_in_place(|| f.wait_exit(T));
    assert_eq!(status.code(), Some(0));
    assert!(
        f.lines
            .iter()
            .any(|l| l.ends_with("Player Bob kicked off by BattlEye: Admin Kick (spam)"))
    );
    assert!(f.lines.last().unwrap().ends_with("(RCon #shutdown)."));
    // Clean exit removes the active copy.
    assert!(active_copies(&be).is_empty());
    client.close().await;
}

#[test]
fn stale_active_copy_wins_over_edited_config() {
    let dir = tempfile::tempdir().unwrap();
    let be = dir.path().join("be");
    std::fs::create_dir_all(&be).unwrap();
    let stale_port = free_port();
    std::fs::write(
        be.join("beserver_x64_active_0badf00d.cfg"),
        format!("RConPassword old\nRConPort {stale_port}\n"),
    )
    .unwrap();
    std::fs::write(
        be.join("BEServer_x64.cfg"),
        "RConPassword new\nRConPort 1\n",
    )
    .unwrap();
    let port = format!("-port={}", free_port());
    let bepath = format!("-bepath={}", be.display());
    let mut f = Fake::start(
        dir.path(),
        &[
            &port,
            &bepath,
            "-fakeStartDelay=0",
            "-fakeCrashAfter=1",
            "-fakeExitCode=5",
        ],
    );
    assert!(f.wait_for(T, |l| l.ends_with("Game started.")).is_some());
    // The RCon port of the stale copy is the one bound.
    assert!(std::net::UdpSocket::bind(("127.0.0.1", stale_port)).is_err());
    assert_eq!(f.wait_exit(T).code(), Some(5));
    // After a crash both the stale copy and ours are left behind.
    assert_eq!(active_copies(&be).len(), 2);
}
