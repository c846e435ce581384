//! The whole pipeline with real processes: a game server (the test double) writes its log and
//! speaks BattlEye RCon; the agent tails, parses, spools and ships; the controller stores and
//! serves. Includes exactly-once delivery when the agent or the controller is killed mid-flood.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use languard_proto::v1 as pb;
use pb::log_service_client::LogServiceClient;
use pb::player_service_client::PlayerServiceClient;
use pb::server_service_client::ServerServiceClient;
use sea_orm::{ConnectionTrait, Statement};

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

async fn create(e: &Env, mut spec: pb::Server, rcon_password: &str) -> pb::Server {
    let mut servers = ServerServiceClient::new(e.c.channel().await);
    spec.node_id = e.node_id;
    servers
        .create_server(authed(
            pb::CreateServerRequest {
                server: Some(spec),
                rcon_password: rcon_password.into(),
            },
            &e.admin,
        ))
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn logs_players_and_rcon_actions_from_a_real_server() {
    let e = env().await;
    let port = free_game_port();
    let mut spec = fake_server(
        e.node_id,
        "live",
        e.dir.path(),
        port,
        &["-fakePlayers=Alice,Bob", "-fakeJoinInterval=1"],
    );
    spec.rcon_port = port + 6;
    let s = create(&e, spec, "rcon-test-pw").await;
    let operator = e.c.user_token("otto", pb::Role::Operator).await;
    let mut servers = ServerServiceClient::new(e.c.channel().await);
    servers
        .start_server(authed(pb::StartServerRequest { id: s.id }, &operator))
        .await
        .expect("start");

    // The log arrives parsed: header entries, then the mission start, then player lines.
    let mut logs = LogServiceClient::new(e.c.channel().await);
    let entries = eventually(
        Duration::from_secs(30),
        "player_connected log entries",
        || {
            let mut logs = logs.clone();
            let admin = e.admin.clone();
            async move {
                let r = logs
                    .list_logs(authed(
                        pb::ListLogsRequest {
                            server_id: s.id,
                            kind: "player_connected".into(),
                            oldest_first: true,
                            ..Default::default()
                        },
                        &admin,
                    ))
                    .await
                    .ok()?
                    .into_inner();
                (r.entries.len() >= 2).then_some(r.entries)
            }
        },
    )
    .await;
    assert!(entries[0].text.contains("Alice"), "{entries:?}");
    let header = logs
        .list_logs(authed(
            pb::ListLogsRequest {
                server_id: s.id,
                kind: "header".into(),
                oldest_first: true,
                ..Default::default()
            },
            &e.admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert!(!header.is_empty(), "the header block is stored");
    let t = header[0].time.as_ref().unwrap().seconds;
    assert!(
        (t - chrono::Utc::now().timestamp()).abs() < 600,
        "dated from the file name, in UTC: {t}"
    );

    // RCon: both players are on, identified by GUID.
    let mut players = PlayerServiceClient::new(e.c.channel().await);
    let on = eventually(Duration::from_secs(40), "two identified players", || {
        let mut players = players.clone();
        let admin = e.admin.clone();
        async move {
            let p = players
                .list_players(authed(
                    pb::ListPlayersRequest {
                        server_id: s.id,
                        ..Default::default()
                    },
                    &admin,
                ))
                .await
                .ok()?
                .into_inner()
                .players;
            (p.len() == 2 && p.iter().all(|p| p.guid.len() == 32)).then_some(p)
        }
    })
    .await;
    let alice = on.iter().find(|p| p.name == "Alice").expect("Alice");
    // Kick Alice through the public API, as an operator.
    let r = players
        .kick_player(authed(
            pb::KickPlayerRequest {
                server_id: s.id,
                player: Some(pb::PlayerRef {
                    guid: alice.guid.clone(),
                    slot: 0,
                }),
                reason: "test kick".into(),
            },
            &operator,
        ))
        .await
        .expect("kick")
        .into_inner();
    assert!(
        r.command.starts_with(&format!("kick {} ", alice.slot)),
        "{}",
        r.command
    );
    eventually(Duration::from_secs(20), "Alice gone, one leave", || {
        let mut players = players.clone();
        let admin = e.admin.clone();
        async move {
            let p = players
                .list_players(authed(
                    pb::ListPlayersRequest {
                        server_id: s.id,
                        ..Default::default()
                    },
                    &admin,
                ))
                .await
                .ok()?
                .into_inner()
                .players;
            (p.len() == 1 && p[0].name == "Bob").then_some(())
        }
    })
    .await;
    let sessions = players
        .list_player_sessions(authed(
            pb::ListPlayerSessionsRequest {
                server_id: s.id,
                guid: alice.guid.clone(),
                ..Default::default()
            },
            &e.admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .sessions;
    assert_eq!(sessions.len(), 1, "one session, closed once: {sessions:?}");
    assert!(sessions[0].left_time.is_some());
    players
        .send_message(authed(
            pb::SendMessageRequest {
                server_id: s.id,
                text: "hello from the test".into(),
                player: None,
            },
            &operator,
        ))
        .await
        .expect("say");
    let bans = players
        .list_bans(authed(
            pb::ListBansRequest {
                server_id: s.id,
                ..Default::default()
            },
            &operator,
        ))
        .await
        .expect("bans")
        .into_inner();
    assert!(bans.bans.is_empty());
    // The RCon password never comes back.
    let g = servers
        .get_server(authed(pb::GetServerRequest { id: s.id }, &e.admin))
        .await
        .unwrap()
        .into_inner();
    assert!(g.rcon_password_set);
    // Graceful stop goes through RCon #shutdown: the double logs why it exits.
    servers
        .stop_server(authed(pb::StopServerRequest { id: s.id }, &operator))
        .await
        .expect("stop");
    let last = eventually(Duration::from_secs(20), "shutdown line", || {
        let mut logs = logs.clone();
        let admin = e.admin.clone();
        async move {
            let r = logs
                .list_logs(authed(
                    pb::ListLogsRequest {
                        server_id: s.id,
                        text_contains: "Server shut down".into(),
                        ..Default::default()
                    },
                    &admin,
                ))
                .await
                .ok()?
                .into_inner();
            r.entries.first().cloned()
        }
    })
    .await;
    assert!(
        last.text.to_lowercase().contains("shutdown"),
        "{}",
        last.text
    );
    let left = players
        .list_players(authed(
            pb::ListPlayersRequest {
                server_id: s.id,
                ..Default::default()
            },
            &e.admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .players;
    assert!(left.is_empty(), "a stopped server has no players");
}

/// Every tagged flood line of `server_id`, in storage (id) order.
async fn flood_lines(c: &Controller, server_id: i64) -> Vec<u64> {
    let db = sea_orm::Database::connect(c.db_url.clone()).await.unwrap();
    let backend = db.get_database_backend();
    let sql = format!(
        "SELECT line FROM logs WHERE server_id = {server_id} AND line LIKE 'flood #%' ORDER BY id"
    );
    let rows = db
        .query_all_raw(Statement::from_string(backend, sql))
        .await
        .unwrap();
    let out = rows
        .iter()
        .map(|r| {
            let line: String = r.try_get_by_index(0).unwrap();
            line.trim_start_matches("flood #")
                .split(' ')
                .next()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .collect();
    db.close().await.ok();
    out
}

async fn flood_then(kill_agent: bool) {
    let mut e = env().await;
    const N: u64 = 20_000;
    let spec = fake_server(
        e.node_id,
        "flood",
        e.dir.path(),
        free_game_port(),
        &[
            "-fakeFloodRate=4000",
            &format!("-fakeFloodLines={N}"),
            "-fakeFloodTagged",
        ],
    );
    let s = create(&e, spec, "").await;
    let mut servers = ServerServiceClient::new(e.c.channel().await);
    servers
        .start_server(authed(pb::StartServerRequest { id: s.id }, &e.admin))
        .await
        .expect("start");
    eventually(Duration::from_secs(30), "flood under way", || async {
        (flood_lines(&e.c, s.id).await.len() > 3000).then_some(())
    })
    .await;
    if kill_agent {
        e.agent.kill().await;
        tokio::time::sleep(Duration::from_millis(700)).await;
        e.agent.restart().await;
    } else {
        e.c.kill().await;
        tokio::time::sleep(Duration::from_millis(700)).await;
        e.c.restart().await;
    }
    let lines = eventually(
        Duration::from_secs(60),
        "every flood line stored",
        || async {
            let l = flood_lines(&e.c, s.id).await;
            (l.len() as u64 >= N).then_some(l)
        },
    )
    .await;
    // Give late duplicates a chance to show up before judging.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let lines = if flood_lines(&e.c, s.id).await.len() != lines.len() {
        flood_lines(&e.c, s.id).await
    } else {
        lines
    };
    assert_eq!(
        lines.len() as u64,
        N,
        "exactly once: no line lost, none doubled"
    );
    assert!(
        lines.iter().enumerate().all(|(i, n)| *n == i as u64),
        "in order"
    );
    let mut servers = ServerServiceClient::new(e.c.channel().await);
    let admin = e.c.admin_token().await;
    let _ = servers
        .kill_server(authed(pb::KillServerRequest { id: s.id }, &admin))
        .await;
}

#[tokio::test]
async fn agent_killed_mid_flood_loses_and_doubles_nothing() {
    flood_then(true).await;
}

#[tokio::test]
async fn controller_killed_mid_flood_loses_and_doubles_nothing() {
    flood_then(false).await;
}

#[tokio::test]
async fn a_servers_log_source_and_time_zone_are_configurable() {
    let e = env().await;
    let mut spec = fake_server(e.node_id, "custom", e.dir.path(), free_game_port(), &[]);
    let profiles = std::path::PathBuf::from(&spec.arma3.as_ref().unwrap().profiles_dir);
    if let Some(a) = spec.arma3.as_mut() {
        a.log_file_glob = "console_*.log".into();
        a.log_time_zone = "Asia/Tokyo".into();
    }
    let s = create(&e, spec, "").await;
    let mut servers = ServerServiceClient::new(e.c.channel().await);
    servers
        .start_server(authed(pb::StartServerRequest { id: s.id }, &e.admin))
        .await
        .expect("start");
    // The server's own .rpt is not followed; this file is.
    std::fs::create_dir_all(&profiles).unwrap();
    std::fs::write(
        profiles.join("console_1.log"),
        "2021/10/05, 08:38:52 hello from the custom log\n2021/10/05, 08:38:53 second line\n",
    )
    .unwrap();
    let mut logs = LogServiceClient::new(e.c.channel().await);
    let entries = eventually(Duration::from_secs(30), "custom log lines", || {
        let mut logs = logs.clone();
        let admin = e.admin.clone();
        async move {
            let r = logs
                .list_logs(authed(
                    pb::ListLogsRequest {
                        server_id: s.id,
                        oldest_first: true,
                        ..Default::default()
                    },
                    &admin,
                ))
                .await
                .ok()?
                .into_inner();
            (r.entries.len() >= 2).then_some(r.entries)
        }
    })
    .await;
    assert_eq!(entries[0].text, "hello from the custom log");
    // 08:38:52 in Tokyo (UTC+9) is 23:38:52 UTC the day before.
    let want = chrono::DateTime::parse_from_rfc3339("2021-10-04T23:38:52Z")
        .unwrap()
        .timestamp();
    assert_eq!(entries[0].time.as_ref().unwrap().seconds, want);
    assert!(
        entries.iter().all(|x| !x.text.contains("Game started")),
        "the server's own .rpt was not followed"
    );
    let _ = servers
        .kill_server(authed(pb::KillServerRequest { id: s.id }, &e.admin))
        .await;
    let _ = logs
        .list_logs(authed(
            pb::ListLogsRequest {
                server_id: s.id,
                ..Default::default()
            },
            &e.admin,
        ))
        .await;
}

#[tokio::test]
async fn a_full_spool_evicts_metrics_records_the_gap_and_keeps_every_log_line() {
    let mut c = Controller::start().await;
    let admin = c.admin_token().await;
    let (node_id, token) = c.create_node("small").await;
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::start_with_env(
        &c.url(),
        &token,
        &dir.path().join("agent"),
        &[
            ("LANGUARD_SPOOL_MAX_BYTES", "4194304"),
            ("LANGUARD_METRICS_INTERVAL_SECONDS", "1"),
        ],
    )
    .await;
    // About 7 MB of log events: more than the 4 MiB spool holds while the controller is away.
    const N: u64 = 100_000;
    let spec = fake_server(
        node_id,
        "flood",
        dir.path(),
        free_game_port(),
        &[
            "-fakeFloodRate=15000",
            &format!("-fakeFloodLines={N}"),
            "-fakeFloodTagged",
        ],
    );
    let mut servers = ServerServiceClient::new(c.channel().await);
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
    // Metrics samples are queued before the controller goes away.
    eventually(Duration::from_secs(30), "metrics stored", || async {
        let db = sea_orm::Database::connect(c.db_url.clone()).await.ok()?;
        let n = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT COUNT(*) FROM metrics".to_owned(),
            ))
            .await
            .ok()??
            .try_get_by_index::<i64>(0)
            .ok()?;
        db.close().await.ok();
        (n > 0).then_some(())
    })
    .await;
    // Start the flood, and take the controller away at once.
    start_when_online(&c, &admin, s.id).await;
    c.kill().await;
    eventually(
        Duration::from_secs(60),
        "the agent's spool filled up",
        || async { agent.log().contains("spool dropped events").then_some(()) },
    )
    .await;
    c.restart().await;

    let lines = eventually(
        Duration::from_secs(90),
        "every flood line stored",
        || async {
            let l = flood_lines(&c, s.id).await;
            (l.len() as u64 >= N).then_some(l)
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let lines = if flood_lines(&c, s.id).await.len() != lines.len() {
        flood_lines(&c, s.id).await
    } else {
        lines
    };
    assert_eq!(lines.len() as u64, N, "no log line lost or doubled");
    assert!(
        lines.iter().enumerate().all(|(i, n)| *n == i as u64),
        "in order"
    );

    // The hole is in the history: metrics samples evicted, no log line dropped.
    let gap = eventually(Duration::from_secs(30), "gap event", || async {
        let db = sea_orm::Database::connect(c.db_url.clone()).await.ok()?;
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT attributes FROM server_events WHERE event_type = 'gap'".to_owned(),
            ))
            .await
            .ok()??;
        let attrs: String = row.try_get_by_index(0).ok()?;
        db.close().await.ok();
        serde_json::from_str::<std::collections::BTreeMap<String, String>>(&attrs).ok()
    })
    .await;
    let dropped: u64 = gap["dropped_metrics"].parse().unwrap();
    assert!(dropped > 0, "{gap:?}");
    assert_eq!(gap["dropped_log_lines"], "0", "{gap:?}");
    assert!(gap["reason"].contains("spool full"), "{gap:?}");
    let admin = c.admin_token().await;
    let mut servers = ServerServiceClient::new(c.channel().await);
    let _ = servers
        .kill_server(authed(pb::KillServerRequest { id: s.id }, &admin))
        .await;
}
