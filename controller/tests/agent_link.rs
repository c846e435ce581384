//! The agent link end to end: real controller and agent processes, real game-server processes
//! (the Arma 3 test double), real signals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use languard_proto::v1 as pb;
use pb::event_service_client::EventServiceClient;
use pb::node_service_client::NodeServiceClient;
use pb::server_service_client::ServerServiceClient;
use tonic::Code;

async fn node_online(c: &Controller, token: &str, id: i64) -> pb::Node {
    let mut nodes = NodeServiceClient::new(c.channel().await);
    nodes
        .get_node(authed(pb::GetNodeRequest { id }, token))
        .await
        .unwrap()
        .into_inner()
}

async fn wait_online(c: &Controller, token: &str, id: i64, want: bool) -> pb::Node {
    eventually(
        Duration::from_secs(30),
        &format!("node {id} online == {want}"),
        || async {
            let n = node_online(c, token, id).await;
            (n.online == want).then_some(n)
        },
    )
    .await
}

#[tokio::test]
async fn agent_connects_and_power_actions_are_routed() {
    let c = Controller::start().await;
    let admin = c.admin_token().await;
    let operator = c.user_token("otto", pb::Role::Operator).await;
    let (node_id, token) = c.create_node("host-a").await;
    let dir = tempfile::tempdir().unwrap();
    let _agent = Agent::start(&c.url(), &token, &dir.path().join("agent")).await;
    let node = wait_online(&c, &admin, node_id, true).await;
    assert!(
        !node.hostname.is_empty() && !node.agent_version.is_empty() && !node.os.is_empty(),
        "{node:?}"
    );
    assert!(node.last_seen_time.is_some());

    let mut servers = ServerServiceClient::new(c.channel().await);
    let port = free_game_port();
    let s = servers
        .create_server(authed(
            pb::CreateServerRequest {
                server: Some(fake_server(node_id, "main", dir.path(), port, &[])),
                rcon_password: String::new(),
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!s.status_stale);

    // Start: the agent's answer comes back with the real pid.
    let started = servers
        .start_server(authed(pb::StartServerRequest { id: s.id }, &operator))
        .await
        .expect("start")
        .into_inner();
    assert_eq!(started.status, pb::ServerStatus::Running as i32);
    assert!(
        started.pid > 0 && alive(started.pid),
        "pid {} alive",
        started.pid
    );
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", started.pid)).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(cmdline.contains(&format!("-port={port}")), "{cmdline}");
    // A second start is refused by the agent with a clear reason.
    let e = servers
        .start_server(authed(pb::StartServerRequest { id: s.id }, &operator))
        .await
        .expect_err("already running");
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("already running"), "{}", e.message());
    // The status reaches the database through the event path.
    eventually(Duration::from_secs(10), "status running stored", || {
        let mut servers = servers.clone();
        let admin = admin.clone();
        async move {
            let g = servers
                .get_server(authed(pb::GetServerRequest { id: s.id }, &admin))
                .await
                .unwrap()
                .into_inner();
            (g.status == pb::ServerStatus::Running as i32 && g.pid == started.pid).then_some(())
        }
    })
    .await;

    // Stop: graceful (the double exits on SIGTERM).
    let stopped = servers
        .stop_server(authed(pb::StopServerRequest { id: s.id }, &operator))
        .await
        .expect("stop")
        .into_inner();
    assert_eq!(stopped.status, pb::ServerStatus::Stopped as i32);
    assert!(!alive(started.pid));
    let mut events = EventServiceClient::new(c.channel().await);
    let history = eventually(Duration::from_secs(10), "status history", || {
        let mut events = events.clone();
        let admin = admin.clone();
        async move {
            let ev = events
                .list_events(authed(
                    pb::ListEventsRequest {
                        server_id: s.id,
                        r#type: "status".into(),
                        ..Default::default()
                    },
                    &admin,
                ))
                .await
                .unwrap()
                .into_inner()
                .events;
            (ev.len() >= 4).then_some(ev)
        }
    })
    .await;
    let transitions: Vec<String> = history
        .iter()
        .rev()
        .map(|e| format!("{}>{}", e.attributes["from"], e.attributes["to"]))
        .collect();
    assert_eq!(
        transitions,
        vec![
            "stopped>starting",
            "starting>running",
            "running>stopping",
            "stopping>stopped"
        ]
    );
    assert_eq!(
        history[0].attributes.get("exit_code").map(String::as_str),
        Some("0")
    );
    assert_eq!(history[0].actor, "otto", "who asked is recorded");
    let power = events
        .list_events(authed(
            pb::ListEventsRequest {
                server_id: s.id,
                r#type: "power".into(),
                ..Default::default()
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(
        power.len(),
        3,
        "start, refused start, stop requests recorded"
    );
    let _ = events
        .list_events(authed(pb::ListEventsRequest::default(), &admin))
        .await
        .unwrap();
}

#[tokio::test]
async fn stop_escalates_to_sigkill_and_kill_gets_through_during_a_stop() {
    let c = Controller::start().await;
    let admin = c.admin_token().await;
    let (node_id, token) = c.create_node("host-b").await;
    let dir = tempfile::tempdir().unwrap();
    let _agent = Agent::start(&c.url(), &token, &dir.path().join("agent")).await;
    wait_online(&c, &admin, node_id, true).await;
    let mut servers = ServerServiceClient::new(c.channel().await);
    let s = servers
        .create_server(authed(
            pb::CreateServerRequest {
                server: Some(fake_server(
                    node_id,
                    "stubborn",
                    dir.path(),
                    free_game_port(),
                    &["-fakeHang"],
                )),
                rcon_password: String::new(),
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    // Ignores SIGTERM: the stop escalates to SIGKILL after the agent's stop timeout (2 s in tests).
    let started = servers
        .start_server(authed(pb::StartServerRequest { id: s.id }, &admin))
        .await
        .unwrap()
        .into_inner();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = std::time::Instant::now();
    let stopped = servers
        .stop_server(authed(pb::StopServerRequest { id: s.id }, &admin))
        .await
        .expect("stop")
        .into_inner();
    assert_eq!(stopped.status, pb::ServerStatus::Stopped as i32);
    assert!(
        t.elapsed() >= Duration::from_secs(2),
        "waited for the stop timeout before SIGKILL"
    );
    assert!(!alive(started.pid));
    let events = EventServiceClient::new(c.channel().await);
    let last = eventually(Duration::from_secs(10), "stopped event", || {
        let mut events = events.clone();
        let admin = admin.clone();
        async move {
            let ev = events
                .list_events(authed(
                    pb::ListEventsRequest {
                        server_id: s.id,
                        r#type: "status".into(),
                        ..Default::default()
                    },
                    &admin,
                ))
                .await
                .unwrap()
                .into_inner()
                .events;
            ev.first()
                .filter(|e| e.attributes["to"] == "stopped")
                .cloned()
        }
    })
    .await;
    assert_eq!(
        last.attributes.get("signal").map(String::as_str),
        Some("9"),
        "{last:?}"
    );

    // Kill while a stop is in progress.
    let started = servers
        .start_server(authed(pb::StartServerRequest { id: s.id }, &admin))
        .await
        .unwrap()
        .into_inner();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut stopper = servers.clone();
    let admin2 = admin.clone();
    let stop = tokio::spawn(async move {
        stopper
            .stop_server(authed(pb::StopServerRequest { id: s.id }, &admin2))
            .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t = std::time::Instant::now();
    let killed = servers
        .kill_server(authed(pb::KillServerRequest { id: s.id }, &admin))
        .await
        .expect("kill")
        .into_inner();
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "kill did not wait for the stop's timeout: {:?}",
        t.elapsed()
    );
    assert_eq!(killed.status, pb::ServerStatus::Stopped as i32);
    assert!(!alive(started.pid));
    // The stop then finds the server already gone and completes.
    let _ = stop.await.unwrap();
    // And the server is not locked: it starts again.
    let again = servers
        .start_server(authed(pb::StartServerRequest { id: s.id }, &admin))
        .await
        .expect("start after kill")
        .into_inner();
    servers
        .kill_server(authed(pb::KillServerRequest { id: s.id }, &admin))
        .await
        .unwrap();
    assert!(!alive(again.pid));
}

#[tokio::test]
async fn a_wrong_token_is_refused() {
    let c = Controller::start().await;
    let admin = c.admin_token().await;
    let (node_id, _token) = c.create_node("host-c").await;
    // A raw session with a bad token.
    let mut client = pb::agent_service_client::AgentServiceClient::new(c.channel().await);
    let hello = pb::AgentMessage {
        body: Some(pb::agent_message::Body::Hello(pb::AgentHello::default())),
    };
    let e = client
        .session(authed(
            tokio_stream::iter(vec![hello]),
            "lgn_not-a-real-token",
        ))
        .await
        .expect_err("refused");
    assert_eq!(e.code(), Code::Unauthenticated);
    // The agent process with a bad token keeps retrying, never comes online, never exits.
    let dir = tempfile::tempdir().unwrap();
    let mut agent = Agent::start(&c.url(), "lgn_wrong", &dir.path().join("agent")).await;
    assert!(
        agent.wait_exit(Duration::from_secs(2)).await.is_none(),
        "agent must not exit"
    );
    assert!(!node_online(&c, &admin, node_id).await.online);
    // On a busy machine the first attempt may come later than the 2 s above.
    eventually(Duration::from_secs(20), "the refusal logged", || async {
        agent.log().contains("refused the node token").then_some(())
    })
    .await;
    assert!(
        agent.wait_exit(Duration::from_millis(100)).await.is_none(),
        "agent must not exit after the refusal"
    );
}

#[tokio::test]
async fn offline_node_is_detected_and_comes_back() {
    let c = Controller::start_with(&[
        ("LANGUARD_HEARTBEAT_INTERVAL_SECONDS", "1"),
        ("LANGUARD_NODE_OFFLINE_AFTER_SECONDS", "3"),
    ])
    .await;
    let admin = c.admin_token().await;
    let (node_id, token) = c.create_node("host-d").await;
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::start(&c.url(), &token, &dir.path().join("agent")).await;
    wait_online(&c, &admin, node_id, true).await;
    // Freeze the agent: the connection stays open, heartbeats stop.
    let pid = nix::unistd::Pid::from_raw(agent_pid(&agent));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    let t = std::time::Instant::now();
    wait_online(&c, &admin, node_id, false).await;
    assert!(
        t.elapsed() >= Duration::from_secs(2),
        "not before the timeout"
    );
    let mut events = EventServiceClient::new(c.channel().await);
    let ev = events
        .list_events(authed(
            pb::ListEventsRequest {
                node_id,
                r#type: "node_offline".into(),
                ..Default::default()
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ev.events.len(), 1);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    wait_online(&c, &admin, node_id, true).await;
    let ev = events
        .list_events(authed(
            pb::ListEventsRequest {
                node_id,
                r#type: "node_online".into(),
                ..Default::default()
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ev.events.len(), 2, "connected twice");
}

fn agent_pid(agent: &Agent) -> i32 {
    // The agent's pid, found through its unique state dir on the command line.
    let want = agent.state_dir.display().to_string();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd);
            if cmd.contains("languard-agent") && cmd.contains(&want) {
                return pid;
            }
        }
    }
    panic!("agent process not found");
}

#[tokio::test]
async fn agent_survives_controller_restart_and_starts_while_it_is_down() {
    let mut c = Controller::start().await;
    let admin = c.admin_token().await;
    let (node_id, token) = c.create_node("host-e").await;
    let dir = tempfile::tempdir().unwrap();
    let mut agent = Agent::start(&c.url(), &token, &dir.path().join("agent")).await;
    wait_online(&c, &admin, node_id, true).await;
    let mut servers = ServerServiceClient::new(c.channel().await);
    let mut spec = fake_server(node_id, "keep", dir.path(), free_game_port(), &[]);
    spec.auto_restart = true;
    spec.max_restarts = 3;
    let s = create_spec(&c, &admin, spec).await;
    let started = servers
        .start_server(authed(pb::StartServerRequest { id: s.id }, &admin))
        .await
        .unwrap()
        .into_inner();

    // Controller crashes; the agent and the game server keep running.
    c.kill().await;
    assert!(
        agent.wait_exit(Duration::from_secs(2)).await.is_none(),
        "agent keeps running without a controller"
    );
    assert!(alive(started.pid));
    // The agent also restarts while the controller is down, from its cached specs, and re-attaches.
    agent.restart().await;
    eventually(Duration::from_secs(20), "re-attached offline", || async {
        agent.log().contains("re-attached").then_some(())
    })
    .await;
    // The server crashes while the controller is still down: the agent applies the restart policy
    // on its own, from the specs it cached.
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(started.pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    eventually(
        Duration::from_secs(20),
        "auto-restarted offline",
        || async {
            agent
                .log()
                .lines()
                .any(|l| l.contains("auto-restart") && l.contains("Running"))
                .then_some(())
        },
    )
    .await;
    let back_at = chrono::Utc::now();
    assert!(
        agent.wait_exit(Duration::from_millis(200)).await.is_none(),
        "agent runs without a controller"
    );

    c.restart().await;
    let admin = c.admin_token().await;
    wait_online(&c, &admin, node_id, true).await;
    // What happened while the controller was away is caught up: the crash and the agent's restart,
    // stamped with the time they happened, and the server runs under a new pid.
    let status: Vec<pb::ServerEvent> = eventually(Duration::from_secs(30), "caught up", || async {
        let ev = server_events(&c, &admin, s.id, "status").await.ok()?;
        ev.iter()
            .any(|e| e.actor == "agent (auto-restart)" && e.attributes["to"] == "running")
            .then_some(ev)
    })
    .await;
    let crash = status
        .iter()
        .find(|e| e.attributes["to"] == "crashed")
        .expect("the crash was recorded");
    let crash_time = crash.time.as_ref().map(|t| t.seconds).unwrap_or_default();
    assert!(
        crash_time <= back_at.timestamp(),
        "the crash is stamped when it happened, not when it arrived"
    );
    let mut servers = ServerServiceClient::new(c.channel().await);
    let now = servers
        .get_server(authed(pb::GetServerRequest { id: s.id }, &admin))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(now.status, pb::ServerStatus::Running as i32);
    assert_ne!(now.pid, started.pid);
    assert!(alive(now.pid));
    // Commands are routed again, and a start of the running server is refused: no second copy.
    let e = servers
        .start_server(authed(pb::StartServerRequest { id: s.id }, &admin))
        .await
        .expect_err("already running");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    // Clean up every game server process this test started.
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(started.pid),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(now.pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

#[tokio::test]
async fn a_second_session_replaces_the_first_and_a_rotated_token_ends_both() {
    let c = Controller::start().await;
    let admin = c.admin_token().await;
    let (node_id, token) = c.create_node("host-r").await;
    let dir = tempfile::tempdir().unwrap();
    let sid = create_server(&c, &admin, node_id, "main", dir.path()).await;

    let mut first = FakeAgent::connect(&c, &token).await;
    first.send(vec![(sid, gap_event("first session"))]).await;
    // The same token connects again (an agent restarted on a flaky link): the new session wins,
    // the old one is ended by the controller, and the new one carries on from the old one's mark.
    let mut second = FakeAgent::connect(&c, &token).await;
    assert!(
        first.wait_closed(Duration::from_secs(10)).await,
        "the first session must be ended"
    );
    assert_eq!(second.accepted.acked_seq, first.seq);
    let acked = second.send(vec![(sid, gap_event("second session"))]).await;
    assert_eq!(acked, first.seq + 1);
    assert!(wait_online(&c, &admin, node_id, true).await.online);

    // Rotating the token ends the live session, refuses the old token and admits the new one.
    let mut nodes = NodeServiceClient::new(c.channel().await);
    let rotated = nodes
        .rotate_node_token(authed(pb::RotateNodeTokenRequest { id: node_id }, &admin))
        .await
        .unwrap()
        .into_inner()
        .token;
    assert_ne!(rotated, token);
    assert!(
        second.wait_closed(Duration::from_secs(10)).await,
        "rotation must end the session of the old token"
    );
    let mut client = pb::agent_service_client::AgentServiceClient::new(c.channel().await);
    let hello = pb::AgentMessage {
        body: Some(pb::agent_message::Body::Hello(pb::AgentHello::default())),
    };
    let e = client
        .session(authed(tokio_stream::iter(vec![hello]), &token))
        .await
        .expect_err("the old token is refused");
    assert_eq!(e.code(), Code::Unauthenticated);
    let mut third = FakeAgent::connect(&c, &rotated).await;
    assert_eq!(third.accepted.acked_seq, acked);
    third.send(vec![(sid, gap_event("rotated token"))]).await;
    // Every event arrived once.
    let listed = server_events(&c, &admin, sid, "gap").await.unwrap();
    for reason in ["first session", "second session", "rotated token"] {
        let n = listed.iter().filter(|e| e.message.contains(reason)).count();
        assert_eq!(n, 1, "{reason}: {listed:?}");
    }
}

#[tokio::test]
async fn the_agents_report_at_connect_corrects_the_stored_state_of_its_own_servers_only() {
    let c = Controller::start().await;
    let admin = c.admin_token().await;
    let (node_id, token) = c.create_node("host-h").await;
    let (other_node, _) = c.create_node("host-other").await;
    let dir = tempfile::tempdir().unwrap();
    let mine = create_server(&c, &admin, node_id, "mine", dir.path()).await;
    let theirs = create_server(&c, &admin, other_node, "theirs", dir.path()).await;
    // The database says both are stopped (as after restoring a backup); the agent says its server
    // runs, and also claims the other node's server.
    let started = chrono::Utc::now() - chrono::Duration::minutes(5);
    let report = |server_id| pb::ServerState {
        server_id,
        status: pb::ServerStatus::Running as i32,
        pid: 4242,
        started_time: Some(ts(started)),
        restart_count: 1,
    };
    let mut agent =
        FakeAgent::connect_reporting(&c, &token, vec![report(mine), report(theirs)]).await;
    // Whatever the agent sends next is applied after the report.
    agent.send(vec![(mine, gap_event("after the hello"))]).await;
    let servers = ServerServiceClient::new(c.channel().await);
    let get = |id| {
        let mut servers = servers.clone();
        let admin = admin.clone();
        async move {
            servers
                .get_server(authed(pb::GetServerRequest { id }, &admin))
                .await
                .unwrap()
                .into_inner()
        }
    };
    let m = get(mine).await;
    assert_eq!(
        (m.status, m.pid, m.restart_count, m.status_stale),
        (pb::ServerStatus::Running as i32, 4242, 1, false)
    );
    assert_eq!(m.started_time.map(|t| t.seconds), Some(started.timestamp()));
    let t = get(theirs).await;
    assert_eq!((t.status, t.pid), (pb::ServerStatus::Stopped as i32, 0));
    // A report that matches the database changes nothing; a later status event still wins.
    drop(agent);
    let mut agent = FakeAgent::connect_reporting(&c, &token, vec![report(mine)]).await;
    agent
        .send(vec![(
            mine,
            pb::agent_event::Body::Status(pb::StatusChanged {
                status: pb::ServerStatus::Stopped as i32,
                previous: pb::ServerStatus::Running as i32,
                reason: "stopped by a person".into(),
                actor: "admin".into(),
                ..Default::default()
            }),
        )])
        .await;
    let m = get(mine).await;
    assert_eq!((m.status, m.pid), (pb::ServerStatus::Stopped as i32, 0));
}
