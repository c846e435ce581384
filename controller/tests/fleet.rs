//! A fleet on one machine: one controller and three agents as separate processes with separate
//! state dirs, servers on each node.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use languard_proto::v1 as pb;
use pb::node_service_client::NodeServiceClient;
use pb::server_service_client::ServerServiceClient;

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
async fn three_agents_routing_offline_reattach_and_controller_restart() {
    let mut c = Controller::start_with(&[
        ("LANGUARD_HEARTBEAT_INTERVAL_SECONDS", "1"),
        ("LANGUARD_NODE_OFFLINE_AFTER_SECONDS", "3"),
    ])
    .await;
    let admin = c.admin_token().await;
    let dir = tempfile::tempdir().unwrap();
    let mut agents = Vec::new();
    let mut nodes = Vec::new();
    for i in 0..3 {
        let (id, token) = c.create_node(&format!("host-{i}")).await;
        agents.push(Agent::start(&c.url(), &token, &dir.path().join(format!("agent-{i}"))).await);
        nodes.push(id);
    }
    eventually(Duration::from_secs(30), "all three online", || async {
        online(&c, &admin)
            .await
            .iter()
            .all(|(_, o)| *o)
            .then_some(())
    })
    .await;

    // Live feed of the whole fleet.
    let mut events = pb::event_service_client::EventServiceClient::new(c.channel().await);
    let mut feed = events
        .watch_events(authed(pb::WatchEventsRequest { server_id: 0 }, &admin))
        .await
        .unwrap()
        .into_inner();

    // One server per node, same game port on every node (ports clash only within a node).
    let mut servers = ServerServiceClient::new(c.channel().await);
    let port = free_game_port();
    let mut ids = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        std::fs::create_dir_all(dir.path().join(format!("srv-{i}"))).unwrap();
        let spec = fake_server(
            *node,
            &format!("srv-{i}"),
            &dir.path().join(format!("srv-{i}")),
            port,
            &[],
        );
        let s = servers
            .create_server(authed(
                pb::CreateServerRequest {
                    server: Some(spec),
                    rcon_password: String::new(),
                },
                &admin,
            ))
            .await
            .unwrap()
            .into_inner();
        ids.push(s.id);
    }
    // The fake binds its game port on 127.0.0.1, so on one machine only one copy can run per port:
    // start node 0's and node 1's servers with distinct ports instead.
    let patch = pb::Server {
        arma3: Some(pb::Arma3Settings {
            game_port: port + 10,
            ..Default::default()
        }),
        ..Default::default()
    };
    servers
        .update_server(authed(
            pb::UpdateServerRequest {
                id: ids[1],
                server: Some(patch),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["arma3.game_port".into()],
                }),
                rcon_password: String::new(),
            },
            &admin,
        ))
        .await
        .unwrap();
    let mut pids = Vec::new();
    for id in &ids[..2] {
        let s = servers
            .start_server(authed(pb::StartServerRequest { id: *id }, &admin))
            .await
            .expect("start")
            .into_inner();
        pids.push(s.pid);
    }
    // Commands reached the right node: each process runs with its node's spec.
    for (pid, p) in pids.iter().zip([port, port + 10]) {
        let cmd = String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap())
            .replace('\0', " ");
        assert!(cmd.contains(&format!("-port={p}")), "{cmd}");
    }
    // Fleet-wide list, filtered by node and status.
    let all = servers
        .list_servers(authed(pb::ListServersRequest::default(), &admin))
        .await
        .unwrap()
        .into_inner()
        .servers;
    assert_eq!(all.len(), 3);
    let running = eventually(Duration::from_secs(10), "two running", || {
        let mut servers = servers.clone();
        let admin = admin.clone();
        async move {
            let r = servers
                .list_servers(authed(
                    pb::ListServersRequest {
                        status: pb::ServerStatus::Running as i32,
                        ..Default::default()
                    },
                    &admin,
                ))
                .await
                .unwrap()
                .into_inner()
                .servers;
            (r.len() == 2).then_some(r)
        }
    })
    .await;
    assert_eq!(
        running.iter().map(|s| s.node_id).collect::<Vec<_>>(),
        vec![nodes[0], nodes[1]]
    );
    // The feed saw status changes from both nodes.
    let mut seen_nodes = std::collections::HashSet::new();
    while seen_nodes.len() < 2 {
        let m = tokio::time::timeout(Duration::from_secs(10), feed.message())
            .await
            .expect("feed")
            .unwrap()
            .unwrap();
        if matches!(m.payload, Some(pb::live_event::Payload::Status(_))) {
            seen_nodes.insert(m.node_id);
        }
    }

    // Agent 0 is killed: its node goes offline, its server's status is stale, not "stopped".
    agents[0].kill().await;
    eventually(Duration::from_secs(20), "node 0 offline", || async {
        online(&c, &admin)
            .await
            .iter()
            .any(|(id, o)| *id == nodes[0] && !o)
            .then_some(())
    })
    .await;
    let s0 = servers
        .get_server(authed(pb::GetServerRequest { id: ids[0] }, &admin))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        s0.status,
        pb::ServerStatus::Running as i32,
        "last known status kept"
    );
    assert!(s0.status_stale);
    assert!(alive(pids[0]), "the game server kept running");
    let e = servers
        .stop_server(authed(pb::StopServerRequest { id: ids[0] }, &admin))
        .await
        .expect_err("offline");
    assert_eq!(e.code(), tonic::Code::Unavailable);
    // The other nodes are unaffected.
    let s1 = servers
        .get_server(authed(pb::GetServerRequest { id: ids[1] }, &admin))
        .await
        .unwrap()
        .into_inner();
    assert!(!s1.status_stale);

    // Back: re-attached and caught up.
    agents[0].restart().await;
    let (id0, pid0) = (ids[0], pids[0]);
    eventually(
        Duration::from_secs(30),
        "node 0 back and re-attached",
        || {
            let mut servers = servers.clone();
            let admin = admin.clone();
            async move {
                let s = servers
                    .get_server(authed(pb::GetServerRequest { id: id0 }, &admin))
                    .await
                    .unwrap()
                    .into_inner();
                (!s.status_stale && s.pid == pid0 && s.status == pb::ServerStatus::Running as i32)
                    .then_some(())
            }
        },
    )
    .await;

    // Controller restart: every agent reconnects, commands flow again.
    c.restart().await;
    let admin = c.admin_token().await;
    eventually(
        Duration::from_secs(40),
        "all online after controller restart",
        || async {
            online(&c, &admin)
                .await
                .iter()
                .all(|(_, o)| *o)
                .then_some(())
        },
    )
    .await;
    let mut servers = ServerServiceClient::new(c.channel().await);
    for id in &ids[..2] {
        let s = servers
            .stop_server(authed(pb::StopServerRequest { id: *id }, &admin))
            .await
            .expect("stop after restart")
            .into_inner();
        assert_eq!(s.status, pb::ServerStatus::Stopped as i32);
    }
    for pid in pids {
        assert!(!alive(pid));
    }
}

#[tokio::test]
async fn a_node_token_can_only_report_for_its_own_node() {
    let c = Controller::start().await;
    let admin = c.admin_token().await;
    let (node_a, token_a) = c.create_node("a").await;
    let (node_b, _) = c.create_node("b").await;
    let dir = tempfile::tempdir().unwrap();
    let mut servers = ServerServiceClient::new(c.channel().await);
    let b_server = servers
        .create_server(authed(
            pb::CreateServerRequest {
                server: Some(fake_server(node_b, "b1", dir.path(), 2302, &[])),
                rcon_password: String::new(),
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    // Node A's session claims a status change of node B's server.
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tx.send(pb::AgentMessage {
        body: Some(pb::agent_message::Body::Hello(pb::AgentHello::default())),
    })
    .await
    .unwrap();
    let mut client = pb::agent_service_client::AgentServiceClient::new(c.channel().await);
    let mut inbound = client
        .session(authed(
            tokio_stream::wrappers::ReceiverStream::new(rx),
            &token_a,
        ))
        .await
        .unwrap()
        .into_inner();
    let accepted = inbound.message().await.unwrap().unwrap();
    match accepted.body {
        Some(pb::controller_message::Body::Accepted(a)) => {
            assert_eq!(a.node_id, node_a);
            assert!(
                a.servers.is_empty(),
                "node A is not given node B's specs (or their RCon passwords)"
            );
        }
        other => panic!("expected SessionAccepted, got {other:?}"),
    }
    let forged = pb::AgentEvent {
        seq: 1,
        time: None,
        server_id: b_server.id,
        body: Some(pb::agent_event::Body::Status(pb::StatusChanged {
            status: pb::ServerStatus::Running as i32,
            pid: 4242,
            ..Default::default()
        })),
    };
    tx.send(pb::AgentMessage {
        body: Some(pb::agent_message::Body::Events(pb::EventBatch {
            events: vec![forged],
        })),
    })
    .await
    .unwrap();
    // The batch is acknowledged (its sequence number is consumed) but changes nothing.
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), inbound.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Some(pb::controller_message::Body::Ack(a)) = m.body {
            assert_eq!(a.seq, 1);
            break;
        }
    }
    let s = servers
        .get_server(authed(pb::GetServerRequest { id: b_server.id }, &admin))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((s.status, s.pid), (pb::ServerStatus::Stopped as i32, 0));
    // Node A cannot be sent node B's commands either: routing goes by the server's node.
    let e = servers
        .start_server(authed(pb::StartServerRequest { id: b_server.id }, &admin))
        .await
        .expect_err("node B offline");
    assert_eq!(e.code(), tonic::Code::Unavailable);
}
