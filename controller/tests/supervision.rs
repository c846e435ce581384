//! Supervision with real processes and real signals: crash detection and the restart policy,
//! re-attaching after the agent is killed, a server that died while the agent was down, and a
//! recycled pid that must not be adopted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use languard_proto::v1 as pb;
use pb::event_service_client::EventServiceClient;
use pb::server_service_client::ServerServiceClient;
use tonic::Code;

struct Env {
    c: Controller,
    admin: String,
    node_id: i64,
    agent: Agent,
    dir: tempfile::TempDir,
}

async fn env() -> Env {
    let c = Controller::start().await;
    let admin = c.admin_token().await;
    let (node_id, token) = c.create_node("host").await;
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::start(&c.url(), &token, &dir.path().join("agent")).await;
    eventually(Duration::from_secs(30), "agent online", || {
        let mut nodes = pb::node_service_client::NodeServiceClient::new(
            tonic::transport::Channel::from_shared(c.url())
                .unwrap()
                .connect_lazy(),
        );
        let admin = admin.clone();
        async move {
            nodes
                .get_node(authed(pb::GetNodeRequest { id: node_id }, &admin))
                .await
                .ok()?
                .into_inner()
                .online
                .then_some(())
        }
    })
    .await;
    Env {
        c,
        admin,
        node_id,
        agent,
        dir,
    }
}

async fn status_events(c: &Controller, admin: &str, server_id: i64) -> Vec<pb::ServerEvent> {
    let mut events = EventServiceClient::new(c.channel().await);
    let mut ev = events
        .list_events(authed(
            pb::ListEventsRequest {
                server_id,
                r#type: "status".into(),
                page_size: 500,
                ..Default::default()
            },
            admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .events;
    ev.reverse();
    ev
}

async fn get(c: &Controller, admin: &str, id: i64) -> pb::Server {
    let mut servers = ServerServiceClient::new(c.channel().await);
    servers
        .get_server(authed(pb::GetServerRequest { id }, admin))
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn a_crash_loop_restarts_with_backoff_and_stops_at_max_restarts() {
    let e = env().await;
    let mut servers = ServerServiceClient::new(e.c.channel().await);
    let mut spec = fake_server(
        e.node_id,
        "crashy",
        e.dir.path(),
        free_game_port(),
        &["-fakeCrashAfter=1", "-fakeExitCode=3"],
    );
    spec.auto_restart = true;
    spec.max_restarts = 2;
    spec.restart_window_seconds = 600;
    let s = servers
        .create_server(authed(
            pb::CreateServerRequest {
                server: Some(spec),
                rcon_password: String::new(),
            },
            &e.admin,
        ))
        .await
        .unwrap()
        .into_inner();
    servers
        .start_server(authed(pb::StartServerRequest { id: s.id }, &e.admin))
        .await
        .expect("start");
    // Three crashes: two restarts, then the limit.
    let events = eventually(Duration::from_secs(40), "restart limit reached", || async {
        let ev = status_events(&e.c, &e.admin, s.id).await;
        ev.iter()
            .any(|x| x.message.contains("restart limit reached"))
            .then_some(ev)
    })
    .await;
    let crashes: Vec<&pb::ServerEvent> = events
        .iter()
        .filter(|x| x.attributes["to"] == "crashed")
        .collect();
    assert_eq!(crashes.len(), 3, "{events:#?}");
    for c in &crashes {
        assert_eq!(c.attributes.get("exit_code").map(String::as_str), Some("3"));
        assert!(
            !c.attributes
                .get("last_log_lines")
                .map(String::is_empty)
                .unwrap_or(true),
            "crash carries the last log lines"
        );
        assert_eq!(c.actor, "agent");
    }
    let autostarts = events
        .iter()
        .filter(|x| x.attributes["to"] == "starting" && x.actor == "agent (auto-restart)")
        .count();
    assert_eq!(autostarts, 2);
    assert!(
        crashes[0].message.contains("restarting in"),
        "{}",
        crashes[0].message
    );
    // It stays crashed: no further start happens.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = status_events(&e.c, &e.admin, s.id).await;
    assert_eq!(after.len(), events.len(), "no restart after the limit");
    let g = get(&e.c, &e.admin, s.id).await;
    assert_eq!(g.status, pb::ServerStatus::Crashed as i32);
    assert_eq!(g.restart_count, 2);
    // A person's start clears it.
    let started = servers
        .start_server(authed(pb::StartServerRequest { id: s.id }, &e.admin))
        .await
        .expect("manual start")
        .into_inner();
    assert_eq!(started.restart_count, 0);
    let _ = servers
        .kill_server(authed(pb::KillServerRequest { id: s.id }, &e.admin))
        .await;
}

#[tokio::test]
async fn no_restart_without_auto_restart_and_clean_exit_counts_as_crash() {
    let e = env().await;
    let mut servers = ServerServiceClient::new(e.c.channel().await);
    let spec = fake_server(
        e.node_id,
        "once",
        e.dir.path(),
        free_game_port(),
        &["-fakeExitAfter=1"],
    );
    let s = servers
        .create_server(authed(
            pb::CreateServerRequest {
                server: Some(spec),
                rcon_password: String::new(),
            },
            &e.admin,
        ))
        .await
        .unwrap()
        .into_inner();
    servers
        .start_server(authed(pb::StartServerRequest { id: s.id }, &e.admin))
        .await
        .expect("start");
    let crash = eventually(Duration::from_secs(20), "crashed", || async {
        status_events(&e.c, &e.admin, s.id)
            .await
            .into_iter()
            .find(|x| x.attributes["to"] == "crashed")
    })
    .await;
    assert_eq!(
        crash.attributes.get("exit_code").map(String::as_str),
        Some("0"),
        "an exit nobody asked for is a crash"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        get(&e.c, &e.admin, s.id).await.status,
        pb::ServerStatus::Crashed as i32,
        "no auto restart"
    );
}

#[tokio::test]
async fn a_server_configured_so_treats_a_clean_exit_as_a_stop_but_still_restarts_after_a_crash() {
    let e = env().await;
    let mut servers = ServerServiceClient::new(e.c.channel().await);
    let create = |name: &str, extra: &[&str]| {
        let mut spec = fake_server(e.node_id, name, e.dir.path(), free_game_port(), extra);
        spec.auto_restart = true;
        spec
    };
    // Created with the default, then switched by UpdateServer (the setting travels to the agent).
    let quits = create_spec(&e.c, &e.admin, create("quits", &["-fakeExitAfter=1"])).await;
    assert!(
        !quits.clean_exit_stops,
        "a clean exit is a crash by default"
    );
    let updated = servers
        .update_server(authed(
            pb::UpdateServerRequest {
                id: quits.id,
                server: Some(pb::Server {
                    clean_exit_stops: true,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["clean_exit_stops".into()],
                }),
                rcon_password: String::new(),
            },
            &e.admin,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(updated.clean_exit_stops);
    let mut crashy_spec = create("crashes", &["-fakeCrashAfter=1", "-fakeExitCode=3"]);
    crashy_spec.clean_exit_stops = true;
    let crashes = create_spec(&e.c, &e.admin, crashy_spec).await;
    for id in [quits.id, crashes.id] {
        servers
            .start_server(authed(pb::StartServerRequest { id }, &e.admin))
            .await
            .expect("start");
    }
    // Exit 0: stopped, by the server itself, and never restarted.
    let stop = eventually(Duration::from_secs(20), "stopped on its own", || async {
        status_events(&e.c, &e.admin, quits.id)
            .await
            .into_iter()
            .find(|x| x.attributes["to"] == "stopped")
    })
    .await;
    assert_eq!(stop.actor, "server");
    assert_eq!(
        stop.attributes.get("exit_code").map(String::as_str),
        Some("0")
    );
    // Exit 3 on the other: still a crash, and the restart policy applies.
    eventually(Duration::from_secs(20), "crash restarted", || async {
        status_events(&e.c, &e.admin, crashes.id)
            .await
            .iter()
            .any(|x| x.actor == "agent (auto-restart)")
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let events = status_events(&e.c, &e.admin, quits.id).await;
    assert!(
        events
            .iter()
            .all(|x| x.attributes["to"] != "crashed" && x.actor != "agent (auto-restart)"),
        "{events:#?}"
    );
    let g = get(&e.c, &e.admin, quits.id).await;
    assert_eq!(g.status, pb::ServerStatus::Stopped as i32);
    let _ = servers
        .kill_server(authed(pb::KillServerRequest { id: crashes.id }, &e.admin))
        .await;
}

#[tokio::test]
async fn agent_killed_and_restarted_reattaches_without_a_second_copy() {
    let mut e = env().await;
    let mut servers = ServerServiceClient::new(e.c.channel().await);
    let port = free_game_port();
    let s = servers
        .create_server(authed(
            pb::CreateServerRequest {
                server: Some(fake_server(e.node_id, "steady", e.dir.path(), port, &[])),
                rcon_password: String::new(),
            },
            &e.admin,
        ))
        .await
        .unwrap()
        .into_inner();
    // The victim has a restart policy: dying while the agent is down is a crash like any other.
    let mut victim_spec = fake_server(e.node_id, "victim", e.dir.path(), port + 10, &[]);
    victim_spec.auto_restart = true;
    victim_spec.max_restarts = 3;
    let victim = servers
        .create_server(authed(
            pb::CreateServerRequest {
                server: Some(victim_spec),
                rcon_password: String::new(),
            },
            &e.admin,
        ))
        .await
        .unwrap()
        .into_inner();
    let started = servers
        .start_server(authed(pb::StartServerRequest { id: s.id }, &e.admin))
        .await
        .unwrap()
        .into_inner();
    let victim_pid = servers
        .start_server(authed(pb::StartServerRequest { id: victim.id }, &e.admin))
        .await
        .unwrap()
        .into_inner()
        .pid;

    e.agent.kill().await;
    assert!(alive(started.pid), "the game server outlives the agent");
    // One server dies while the agent is down.
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(victim_pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    eventually(Duration::from_secs(5), "victim gone", || async {
        (!alive(victim_pid)).then_some(())
    })
    .await;
    e.agent.restart().await;

    let ev = eventually(Duration::from_secs(30), "re-attached", || async {
        status_events(&e.c, &e.admin, s.id)
            .await
            .into_iter()
            .find(|x| x.message.contains("re-attached"))
    })
    .await;
    assert_eq!(ev.attributes["pid"], started.pid.to_string());
    let g = get(&e.c, &e.admin, s.id).await;
    assert_eq!(
        (g.status, g.pid),
        (pb::ServerStatus::Running as i32, started.pid)
    );
    // No second copy: a start is refused while the re-attached process runs.
    let err = servers
        .start_server(authed(pb::StartServerRequest { id: s.id }, &e.admin))
        .await
        .expect_err("already running");
    assert_eq!(err.code(), Code::FailedPrecondition);
    // The one that died while the agent was down is a crash.
    let crash = eventually(Duration::from_secs(10), "victim crashed", || async {
        status_events(&e.c, &e.admin, victim.id)
            .await
            .into_iter()
            .find(|x| x.attributes["to"] == "crashed")
    })
    .await;
    assert!(
        crash.message.contains("while the agent was down"),
        "{}",
        crash.message
    );
    // ... and gets the restart policy: the agent starts it again, a new process.
    let restarted = eventually(Duration::from_secs(20), "victim auto-restarted", || async {
        let g = get(&e.c, &e.admin, victim.id).await;
        (g.status == pb::ServerStatus::Running as i32 && g.pid != victim_pid && g.pid > 0)
            .then_some(g)
    })
    .await;
    assert!(alive(restarted.pid));
    assert!(
        status_events(&e.c, &e.admin, victim.id)
            .await
            .iter()
            .any(|x| x.actor == "agent (auto-restart)" && x.attributes["to"] == "starting"),
        "the restart is the policy's"
    );
    let _ = servers
        .kill_server(authed(pb::KillServerRequest { id: victim.id }, &e.admin))
        .await;
    // The re-attached server is still supervised: a stop works and its exit is seen.
    let stopped = match servers
        .stop_server(authed(pb::StopServerRequest { id: s.id }, &e.admin))
        .await
    {
        Ok(r) => r.into_inner(),
        Err(err) => panic!(
            "stop re-attached: {err:?}\nagent log:\n{}\ncontroller log:\n{}",
            e.agent.log(),
            e.c.log()
        ),
    };
    assert_eq!(stopped.status, pb::ServerStatus::Stopped as i32);
    assert!(!alive(started.pid));
}

#[tokio::test]
async fn a_recycled_pid_is_not_adopted() {
    let mut e = env().await;
    let mut servers = ServerServiceClient::new(e.c.channel().await);
    let s = servers
        .create_server(authed(
            pb::CreateServerRequest {
                server: Some(fake_server(
                    e.node_id,
                    "r",
                    e.dir.path(),
                    free_game_port(),
                    &[],
                )),
                rcon_password: String::new(),
            },
            &e.admin,
        ))
        .await
        .unwrap()
        .into_inner();
    let started = servers
        .start_server(authed(pb::StartServerRequest { id: s.id }, &e.admin))
        .await
        .unwrap()
        .into_inner();
    e.agent.kill().await;
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(started.pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // Another process now has the pid the agent recorded (simulated by pointing the record at it).
    let mut other = tokio::process::Command::new("sleep")
        .arg("60")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let other_pid = other.id().unwrap() as i32;
    let runs_path = e.agent.state_dir.join("runs.json");
    let mut runs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&runs_path).unwrap()).unwrap();
    runs[s.id.to_string()]["identity"]["pid"] = serde_json::json!(other_pid);
    std::fs::write(&runs_path, serde_json::to_vec(&runs).unwrap()).unwrap();
    e.agent.restart().await;
    let crash = eventually(Duration::from_secs(30), "handled as a crash", || async {
        status_events(&e.c, &e.admin, s.id)
            .await
            .into_iter()
            .find(|x| x.attributes["to"] == "crashed")
    })
    .await;
    assert!(
        crash.message.contains("while the agent was down"),
        "{}",
        crash.message
    );
    assert!(alive(other_pid), "the unrelated process was left alone");
    assert_ne!(get(&e.c, &e.admin, s.id).await.pid, other_pid);
    other.kill().await.ok();
}

#[tokio::test]
async fn an_agent_told_to_stop_servers_on_shutdown_stops_them_gracefully() {
    let c = Controller::start().await;
    let admin = c.admin_token().await;
    let (node_id, token) = c.create_node("host").await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("agent");
    let mut agent = Agent::start_with_env(
        &c.url(),
        &token,
        &state,
        &[("LANGUARD_STOP_SERVERS_ON_SHUTDOWN", "true")],
    )
    .await;
    let port = free_game_port();
    let mut spec = fake_server(node_id, "bye", dir.path(), port, &[]);
    spec.rcon_port = port + 6;
    let mut servers = ServerServiceClient::new(c.channel().await);
    let s = servers
        .create_server(authed(
            pb::CreateServerRequest {
                server: Some(spec),
                rcon_password: "bye-pw".into(),
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    let started = start_when_online(&c, &admin, s.id).await;
    // RCon up, so the stop can be a clean #shutdown.
    let players = pb::player_service_client::PlayerServiceClient::new(c.channel().await);
    eventually(Duration::from_secs(30), "RCon connected", || {
        let mut players = players.clone();
        let admin = admin.clone();
        async move {
            players
                .send_rcon_command(authed(
                    pb::SendRconCommandRequest {
                        server_id: s.id,
                        command: "players".into(),
                    },
                    &admin,
                ))
                .await
                .ok()
                .map(|_| ())
        }
    })
    .await;

    agent.terminate();
    let exit = agent
        .wait_exit(Duration::from_secs(30))
        .await
        .expect("the agent exits after stopping its servers");
    assert!(exit.success(), "{exit:?}");
    assert!(!alive(started.pid), "the game server was stopped");
    assert!(agent.log().contains("stopping game servers"));

    // Back (without the setting): the stop was reported, the server is stopped, not crashed.
    let _agent = Agent::start(&c.url(), &token, &state).await;
    let got = eventually(Duration::from_secs(30), "stopped reported", || {
        let mut servers = servers.clone();
        let admin = admin.clone();
        async move {
            let r = servers
                .get_server(authed(pb::GetServerRequest { id: s.id }, &admin))
                .await
                .ok()?
                .into_inner();
            (!r.status_stale && r.status == pb::ServerStatus::Stopped as i32).then_some(r)
        }
    })
    .await;
    assert_eq!(got.pid, 0);
    let events = status_events(&c, &admin, s.id).await;
    assert!(
        events
            .iter()
            .any(|e| e.actor == "agent shutdown" && e.message.contains("stopping")),
        "{events:?}"
    );
    assert!(
        !events.iter().any(|e| e.message.contains("crashed")),
        "{events:?}"
    );
}
