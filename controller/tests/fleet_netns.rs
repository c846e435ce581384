//! The fleet across real network boundaries: three agents, each in its own network namespace
//! (its own loopback, reaching the controller over a veth link), so three game servers run with the
//! same ports on one machine, and a node can be cut off the network and healed.
//!
//! Needs root and `ip` (iproute2). Without them the test says so and passes; CI sets
//! `LANGUARD_REQUIRE_NETNS=1`, which makes a missing capability a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command as StdCommand;
use std::time::Duration;

use common::*;
use languard_proto::v1 as pb;
use pb::node_service_client::NodeServiceClient;
use pb::server_service_client::ServerServiceClient;

/// A network namespace with a veth link to this one: `host_ip` here, `10.213.k.2` inside.
struct Netns {
    name: String,
    veth: String,
    host_ip: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = StdCommand::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Netns {
    fn create(i: u32) -> Result<Netns, String> {
        let pid = std::process::id();
        let name = format!("lgt{pid}-{i}");
        let veth = format!("lgr{}{i}", pid % 100_000);
        let peer = format!("lgn{}{i}", pid % 100_000);
        let k = (pid % 60) * 4 + i;
        let host_ip = format!("10.213.{k}.1");
        let ns = Netns {
            name: name.clone(),
            veth: veth.clone(),
            host_ip: host_ip.clone(),
        };
        ip(&["netns", "add", &name])?;
        ip(&["link", "add", &veth, "type", "veth", "peer", "name", &peer])?;
        ip(&["link", "set", &peer, "netns", &name])?;
        ip(&["addr", "add", &format!("{host_ip}/30"), "dev", &veth])?;
        ip(&["link", "set", &veth, "up"])?;
        ip(&[
            "-n",
            &name,
            "addr",
            "add",
            &format!("10.213.{k}.2/30"),
            "dev",
            &peer,
        ])?;
        ip(&["-n", &name, "link", "set", &peer, "up"])?;
        ip(&["-n", &name, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    fn link(&self, up: bool) {
        ip(&["link", "set", &self.veth, if up { "up" } else { "down" }]).unwrap();
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Removes the namespace's end of the veth pair, and with it this end.
        let _ = ip(&["netns", "del", &self.name]);
    }
}

fn net_ns_of(pid: i32) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/net"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

async fn online(c: &Controller, admin: &str) -> Vec<(i64, bool)> {
    let mut nodes = NodeServiceClient::new(c.channel().await);
    nodes
        .list_nodes(authed(pb::ListNodesRequest::default(), admin))
        .await
        .unwrap()
        .into_inner()
        .nodes
        .iter()
        .map(|n| (n.id, n.online))
        .collect()
}

#[tokio::test]
async fn agents_in_network_namespaces_same_ports_partition_and_heal() {
    let mut spaces = Vec::new();
    for i in 0..3 {
        match Netns::create(i) {
            Ok(ns) => spaces.push(ns),
            Err(e) => {
                assert!(
                    std::env::var_os("LANGUARD_REQUIRE_NETNS").is_none(),
                    "network namespaces are required here: {e}"
                );
                eprintln!(
                    "SKIPPED: network namespaces unavailable ({e}); the loopback fleet test covers the rest"
                );
                return;
            }
        }
    }
    let c = Controller::start_on(
        "0.0.0.0:0",
        &[
            ("LANGUARD_HEARTBEAT_INTERVAL_SECONDS", "1"),
            ("LANGUARD_NODE_OFFLINE_AFTER_SECONDS", "3"),
        ],
    )
    .await;
    let port = c.addr.port();
    let admin = c.admin_token().await;
    let dir = tempfile::tempdir().unwrap();
    let mut agents = Vec::new();
    let mut nodes = Vec::new();
    for (i, ns) in spaces.iter().enumerate() {
        let (id, token) = c.create_node(&format!("ns-host-{i}")).await;
        // The controller is reachable from inside only over the link.
        let url = format!("http://{}:{port}", ns.host_ip);
        agents.push(
            Agent::start_in(
                Some(&ns.name),
                &url,
                &token,
                &dir.path().join(format!("agent-{i}")),
            )
            .await,
        );
        nodes.push(id);
    }
    eventually(Duration::from_secs(30), "all three online", || async {
        let o = online(&c, &admin).await;
        (o.len() == 3 && o.iter().all(|(_, on)| *on)).then_some(())
    })
    .await;

    // The same game port on every node: each server has its own host (namespace).
    let game_port = free_game_port();
    let mut servers = ServerServiceClient::new(c.channel().await);
    let mut ids = Vec::new();
    let mut pids = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let sdir = dir.path().join(format!("srv-{i}"));
        std::fs::create_dir_all(&sdir).unwrap();
        let s = servers
            .create_server(authed(
                pb::CreateServerRequest {
                    server: Some(fake_server(*node, "main", &sdir, game_port, &[])),
                    rcon_password: String::new(),
                },
                &admin,
            ))
            .await
            .unwrap()
            .into_inner();
        let started = start_when_online(&c, &admin, s.id).await;
        ids.push(s.id);
        pids.push(started.pid);
    }
    let mine = net_ns_of(std::process::id() as i32);
    let spaces_of: std::collections::HashSet<String> = pids.iter().map(|p| net_ns_of(*p)).collect();
    assert_eq!(spaces_of.len(), 3, "three namespaces: {spaces_of:?}");
    assert!(
        !spaces_of.contains(&mine),
        "none in the test's own namespace"
    );
    for pid in &pids {
        let cmd = String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap())
            .replace('\0', " ");
        assert!(cmd.contains(&format!("-port={game_port}")), "{cmd}");
    }

    // Node 0 is cut off the network: offline, its server's status kept but stale, commands refused.
    spaces[0].link(false);
    eventually(Duration::from_secs(20), "node 0 offline", || async {
        online(&c, &admin)
            .await
            .iter()
            .any(|(id, on)| *id == nodes[0] && !on)
            .then_some(())
    })
    .await;
    let s0 = servers
        .get_server(authed(pb::GetServerRequest { id: ids[0] }, &admin))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s0.status, pb::ServerStatus::Running as i32);
    assert!(s0.status_stale);
    let e = servers
        .stop_server(authed(pb::StopServerRequest { id: ids[0] }, &admin))
        .await
        .expect_err("partitioned");
    assert_eq!(e.code(), tonic::Code::Unavailable);
    assert!(
        alive(pids[0]),
        "the game server kept running behind the partition"
    );
    assert!(
        online(&c, &admin)
            .await
            .iter()
            .filter(|(_, on)| *on)
            .count()
            == 2,
        "the other nodes stay online"
    );

    // Healed: back online by itself, the same process, and commands work again.
    spaces[0].link(true);
    let back = eventually(Duration::from_secs(60), "node 0 back", || {
        let mut servers = servers.clone();
        let admin = admin.clone();
        let c = &c;
        let nodes = &nodes;
        let id0 = ids[0];
        async move {
            let on = online(c, &admin)
                .await
                .iter()
                .any(|(id, on)| *id == nodes[0] && *on);
            let s = servers
                .get_server(authed(pb::GetServerRequest { id: id0 }, &admin))
                .await
                .ok()?
                .into_inner();
            (on && !s.status_stale).then_some(s)
        }
    })
    .await;
    assert_eq!(back.status, pb::ServerStatus::Running as i32);
    assert_eq!(back.pid, pids[0], "the same process, not a restart");
    let stopped = servers
        .stop_server(authed(pb::StopServerRequest { id: ids[0] }, &admin))
        .await
        .expect("stop after healing")
        .into_inner();
    assert_eq!(stopped.status, pb::ServerStatus::Stopped as i32);
    for id in &ids[1..] {
        let _ = servers
            .kill_server(authed(pb::KillServerRequest { id: *id }, &admin))
            .await;
    }
    drop(agents);
}
