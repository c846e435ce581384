//! Scheduled server tasks: `ScheduleService` CRUD, validation and roles; schedules travel to the
//! agent inside specs; results reported by the agent are stored; and, with real processes, a
//! scheduled restart warns the players over RCon and then restarts the server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use languard_proto::v1 as pb;
use pb::event_service_client::EventServiceClient;
use pb::schedule_service_client::ScheduleServiceClient;
use pb::server_service_client::ServerServiceClient;
use tonic::Code;

fn restart_schedule(server_id: i64, cron: &str, warnings: Vec<i32>, message: &str) -> pb::Schedule {
    pb::Schedule {
        server_id,
        name: "nightly restart".into(),
        cron: cron.into(),
        time_zone: "Europe/Berlin".into(),
        enabled: true,
        action: Some(pb::schedule::Action::Restart(pb::RestartAction {
            warning_seconds: warnings,
            warning_message: message.into(),
        })),
        ..Default::default()
    }
}

fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: paths.iter().map(|p| p.to_string()).collect(),
    })
}

#[tokio::test]
async fn schedules_are_validated_stored_and_shipped_to_the_agent() {
    let c = Controller::start().await;
    let mut rig = Rig::new(&c, "host").await;
    let operator = c.user_token("otto", pb::Role::Operator).await;
    let viewer = c.user_token("vera", pb::Role::Viewer).await;
    let mut sched = ScheduleServiceClient::new(c.channel().await);

    // Viewers cannot create; operators can.
    let e = sched
        .create_schedule(authed(
            pb::CreateScheduleRequest {
                schedule: Some(restart_schedule(
                    rig.server_id,
                    "0 4 * * *",
                    vec![900, 300, 60],
                    "",
                )),
            },
            &viewer,
        ))
        .await
        .expect_err("viewer");
    assert_eq!(e.code(), Code::PermissionDenied);
    let created = sched
        .create_schedule(authed(
            pb::CreateScheduleRequest {
                schedule: Some(restart_schedule(
                    rig.server_id,
                    "0 4 * * *",
                    vec![60, 900, 300],
                    "",
                )),
            },
            &operator,
        ))
        .await
        .expect("create")
        .into_inner();
    assert!(created.id > 0);
    match &created.action {
        Some(pb::schedule::Action::Restart(r)) => {
            assert_eq!(r.warning_seconds, vec![900, 300, 60], "stored in order")
        }
        other => panic!("{other:?}"),
    }
    let next = created.next_run_time.as_ref().expect("next run");
    let next = chrono::DateTime::from_timestamp(next.seconds, 0).unwrap();
    let berlin = next.with_timezone(&chrono_tz::Europe::Berlin);
    assert_eq!(
        berlin.format("%H:%M").to_string(),
        "04:00",
        "04:00 in Berlin"
    );
    assert!(next > chrono::Utc::now());

    // Bad input names the field.
    for (bad, field) in [
        (
            restart_schedule(rig.server_id, "every night", vec![], ""),
            "schedule.cron",
        ),
        (
            pb::Schedule {
                time_zone: "Mars/Olympus".into(),
                ..restart_schedule(rig.server_id, "0 4 * * *", vec![], "")
            },
            "schedule.time_zone",
        ),
        (
            restart_schedule(rig.server_id, "0 4 * * *", vec![60, 60], ""),
            "schedule.restart.warning_seconds",
        ),
        (
            pb::Schedule {
                action: None,
                ..restart_schedule(rig.server_id, "0 4 * * *", vec![], "")
            },
            "schedule.action",
        ),
        (
            restart_schedule(999_999, "0 4 * * *", vec![], ""),
            "schedule.server_id",
        ),
    ] {
        let e = sched
            .create_schedule(authed(
                pb::CreateScheduleRequest {
                    schedule: Some(bad),
                },
                &operator,
            ))
            .await
            .expect_err(field);
        assert_eq!(e.code(), Code::InvalidArgument, "{field}: {e:?}");
        assert!(e.message().contains(field), "{field}: {}", e.message());
    }

    // Raw commands need admin.
    let command = pb::Schedule {
        name: "lock at night".into(),
        action: Some(pb::schedule::Action::Command(pb::CommandAction {
            command: "#lock".into(),
        })),
        ..restart_schedule(rig.server_id, "0 1 * * *", vec![], "")
    };
    let e = sched
        .create_schedule(authed(
            pb::CreateScheduleRequest {
                schedule: Some(command.clone()),
            },
            &operator,
        ))
        .await
        .expect_err("operator command");
    assert_eq!(e.code(), Code::PermissionDenied);
    let cmd = sched
        .create_schedule(authed(
            pb::CreateScheduleRequest {
                schedule: Some(command),
            },
            &rig.admin,
        ))
        .await
        .expect("admin command")
        .into_inner();

    // Listing by server, with pages.
    let page1 = sched
        .list_schedules(authed(
            pb::ListSchedulesRequest {
                server_id: rig.server_id,
                page_size: 1,
                ..Default::default()
            },
            &viewer,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page1.schedules.len(), 1);
    assert_eq!(page1.schedules[0].id, created.id);
    let page2 = sched
        .list_schedules(authed(
            pb::ListSchedulesRequest {
                server_id: rig.server_id,
                page_size: 1,
                page_token: page1.next_page_token.clone(),
            },
            &viewer,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page2.schedules.len(), 1);
    assert_eq!(page2.schedules[0].id, cmd.id);

    // Disabling: no next run, and the agent's spec no longer carries it.
    let disabled = sched
        .update_schedule(authed(
            pb::UpdateScheduleRequest {
                id: created.id,
                schedule: Some(pb::Schedule {
                    enabled: false,
                    ..Default::default()
                }),
                update_mask: mask(&["enabled"]),
            },
            &operator,
        ))
        .await
        .expect("disable")
        .into_inner();
    assert!(!disabled.enabled);
    assert!(disabled.next_run_time.is_none());
    let e = sched
        .update_schedule(authed(
            pb::UpdateScheduleRequest {
                id: created.id,
                schedule: Some(pb::Schedule::default()),
                update_mask: mask(&["server_id"]),
            },
            &operator,
        ))
        .await
        .expect_err("server_id is fixed");
    assert_eq!(e.code(), Code::InvalidArgument);
    let token = {
        let mut nodes = pb::node_service_client::NodeServiceClient::new(c.channel().await);
        nodes
            .rotate_node_token(authed(
                pb::RotateNodeTokenRequest { id: rig.node_id },
                &rig.admin,
            ))
            .await
            .unwrap()
            .into_inner()
            .token
    };
    let again = FakeAgent::connect(&c, &token).await;
    let spec = again
        .accepted
        .servers
        .iter()
        .find(|s| s.server_id == rig.server_id)
        .expect("spec");
    let ids: Vec<i64> = spec.schedules.iter().map(|s| s.id).collect();
    assert_eq!(
        ids,
        vec![cmd.id],
        "only enabled schedules travel to the agent"
    );
    rig.agent = again;

    // What the agent reports is stored: an event, and the schedule's last run.
    rig.agent
        .send(vec![(
            rig.server_id,
            pb::agent_event::Body::ScheduleRun(pb::ScheduleRun {
                schedule_id: cmd.id,
                occurrence_time: Some(now_ts()),
                step: "command".into(),
                ok: true,
                detail: "#lock: Server locked".into(),
            }),
        )])
        .await;
    let got = eventually(Duration::from_secs(10), "last run stored", || {
        let mut sched = sched.clone();
        let viewer = viewer.clone();
        async move {
            let s = sched
                .get_schedule(authed(pb::GetScheduleRequest { id: cmd.id }, &viewer))
                .await
                .ok()?
                .into_inner();
            s.last_run_time.is_some().then_some(s)
        }
    })
    .await;
    assert_eq!(got.last_result, "command ok: #lock: Server locked");
    let mut events = EventServiceClient::new(c.channel().await);
    let list = events
        .list_events(authed(
            pb::ListEventsRequest {
                server_id: rig.server_id,
                ..Default::default()
            },
            &viewer,
        ))
        .await
        .unwrap()
        .into_inner();
    let ev = list
        .events
        .iter()
        .find(|e| e.r#type == "schedule" && e.actor == "agent")
        .expect("schedule event");
    assert_eq!(
        ev.attributes.get("step").map(String::as_str),
        Some("command")
    );
    assert_eq!(ev.attributes.get("ok").map(String::as_str), Some("true"));
    // Changes by people are in the history too.
    assert!(
        list.events
            .iter()
            .any(|e| e.r#type == "schedule" && e.actor == "otto" && e.message.contains("created")),
        "{:?}",
        list.events
    );

    // Deleting: gone; and deleting the server deletes its schedules.
    sched
        .delete_schedule(authed(
            pb::DeleteScheduleRequest { id: created.id },
            &operator,
        ))
        .await
        .expect("delete");
    let e = sched
        .get_schedule(authed(pb::GetScheduleRequest { id: created.id }, &viewer))
        .await
        .expect_err("gone");
    assert_eq!(e.code(), Code::NotFound);
    let e = sched
        .delete_schedule(authed(pb::DeleteScheduleRequest { id: cmd.id }, &operator))
        .await
        .expect_err("operator cannot delete a command schedule");
    assert_eq!(e.code(), Code::PermissionDenied);
    let mut servers = ServerServiceClient::new(c.channel().await);
    servers
        .delete_server(authed(
            pb::DeleteServerRequest { id: rig.server_id },
            &rig.admin,
        ))
        .await
        .expect("delete server");
    let e = sched
        .get_schedule(authed(pb::GetScheduleRequest { id: cmd.id }, &viewer))
        .await
        .expect_err("cascaded");
    assert_eq!(e.code(), Code::NotFound);
}

#[tokio::test]
async fn a_scheduled_restart_warns_the_players_then_restarts_the_server() {
    let c = Controller::start().await;
    let admin = c.admin_token().await;
    let (node_id, token) = c.create_node("host").await;
    let dir = tempfile::tempdir().unwrap();
    let _agent = Agent::start(&c.url(), &token, &dir.path().join("agent")).await;
    let port = free_game_port();
    let mut spec = fake_server(node_id, "sched", dir.path(), port, &[]);
    spec.rcon_port = port + 6;
    let mut servers = ServerServiceClient::new(c.channel().await);
    let s = servers
        .create_server(authed(
            pb::CreateServerRequest {
                server: Some(spec),
                rcon_password: "sched-pw".into(),
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    let started = start_when_online(&c, &admin, s.id).await;
    // RCon is up (the warnings go over it).
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
    // Every 12 seconds, warnings 6 and 3 seconds before.
    let mut sched = ScheduleServiceClient::new(c.channel().await);
    let created = sched
        .create_schedule(authed(
            pb::CreateScheduleRequest {
                schedule: Some(pb::Schedule {
                    time_zone: String::new(),
                    ..restart_schedule(s.id, "*/12 * * * * *", vec![3, 6], "restart in {seconds}s")
                }),
            },
            &admin,
        ))
        .await
        .expect("create")
        .into_inner();

    let events = EventServiceClient::new(c.channel().await);
    let history = eventually(
        Duration::from_secs(90),
        "two warnings, then a restart, reported by the agent",
        || {
            let mut events = events.clone();
            let admin = admin.clone();
            async move {
                let list = events
                    .list_events(authed(
                        pb::ListEventsRequest {
                            server_id: s.id,
                            page_size: 500,
                            ..Default::default()
                        },
                        &admin,
                    ))
                    .await
                    .ok()?
                    .into_inner()
                    .events;
                let steps: Vec<(String, String)> = list
                    .iter()
                    .filter(|e| e.r#type == "schedule" && e.actor == "agent")
                    .map(|e| {
                        (
                            e.attributes.get("step").cloned().unwrap_or_default(),
                            e.attributes.get("detail").cloned().unwrap_or_default(),
                        )
                    })
                    .collect();
                // One occurrence with both warnings and the restart.
                let of = |e: &pb::ServerEvent| e.attributes.get("occurrence").cloned();
                let restart = list.iter().find(|e| {
                    e.r#type == "schedule"
                        && e.attributes.get("step").map(String::as_str) == Some("restart")
                })?;
                let same: Vec<&pb::ServerEvent> = list
                    .iter()
                    .filter(|e| {
                        e.r#type == "schedule" && e.actor == "agent" && of(e) == of(restart)
                    })
                    .collect();
                let warned = |d: &str| {
                    same.iter()
                        .any(|e| e.attributes.get("detail").map(String::as_str) == Some(d))
                };
                (!steps.is_empty() && warned("restart in 6s") && warned("restart in 3s"))
                    .then_some((list.clone(), same.into_iter().cloned().collect::<Vec<_>>()))
            }
        },
    )
    .await;
    let (history, occurrence) = history;
    // Every step of that occurrence succeeded.
    assert_eq!(occurrence.len(), 3, "{occurrence:?}");
    for e in &occurrence {
        assert_eq!(
            e.attributes.get("ok").map(String::as_str),
            Some("true"),
            "{e:?}"
        );
    }
    // The warnings reached the game: BattlEye echoes admin messages to RCon clients, which the
    // agent records as chat.
    assert!(
        history
            .iter()
            .any(|e| e.r#type == "chat" && e.message.contains("restart in 6s")),
        "{history:?}"
    );
    // The restart was the schedule's, and the server runs a new process.
    assert!(
        history
            .iter()
            .any(|e| e.r#type == "status" && e.actor == format!("schedule:{}", created.id)),
        "{history:?}"
    );
    let now = eventually(Duration::from_secs(30), "running again", || {
        let mut servers = servers.clone();
        let admin = admin.clone();
        async move {
            let r = servers
                .get_server(authed(pb::GetServerRequest { id: s.id }, &admin))
                .await
                .ok()?
                .into_inner();
            (r.status == pb::ServerStatus::Running as i32 && r.pid > 0 && r.pid != started.pid)
                .then_some(r)
        }
    })
    .await;
    assert!(alive(now.pid));
    let last = sched
        .get_schedule(authed(pb::GetScheduleRequest { id: created.id }, &admin))
        .await
        .unwrap()
        .into_inner();
    assert!(last.last_run_time.is_some());
    sched
        .delete_schedule(authed(pb::DeleteScheduleRequest { id: created.id }, &admin))
        .await
        .unwrap();
    let _ = servers
        .kill_server(authed(pb::KillServerRequest { id: s.id }, &admin))
        .await;
}

#[tokio::test]
async fn schedules_run_while_the_controller_is_down_and_their_results_arrive_later() {
    let mut c = Controller::start().await;
    let admin = c.admin_token().await;
    let (node_id, token) = c.create_node("host-away").await;
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::start(&c.url(), &token, &dir.path().join("agent")).await;
    let spec = fake_server(node_id, "away", dir.path(), free_game_port(), &[]);
    let s = create_spec(&c, &admin, spec).await;
    let started = start_when_online(&c, &admin, s.id).await;
    // A restart every 10 seconds, without warnings (this server has no RCon).
    let mut sched = ScheduleServiceClient::new(c.channel().await);
    let created = sched
        .create_schedule(authed(
            pb::CreateScheduleRequest {
                schedule: Some(pb::Schedule {
                    time_zone: String::new(),
                    ..restart_schedule(s.id, "*/10 * * * * *", vec![], "")
                }),
            },
            &admin,
        ))
        .await
        .expect("create")
        .into_inner();

    // The controller goes away; the agent runs the schedule on its own: the old process ends and
    // a new one is started.
    c.kill().await;
    eventually(
        Duration::from_secs(40),
        "restarted by the schedule",
        || async {
            (!alive(started.pid)
                && agent.log().lines().any(|l| {
                    l.contains(&format!("schedule:{}", created.id)) && l.contains("Running")
                }))
            .then_some(())
        },
    )
    .await;
    let back_at = chrono::Utc::now();

    // Back: the run's results and the restart reach the database, stamped when they happened.
    c.restart().await;
    let admin = c.admin_token().await;
    let before_back = |e: &pb::ServerEvent| {
        e.time.as_ref().map(|t| t.seconds).unwrap_or(i64::MAX) <= back_at.timestamp()
    };
    // The schedule keeps running after the controller is back; what matters is a successful run
    // from the time it was away.
    let ran_away = |e: &pb::ServerEvent| {
        e.r#type == "schedule"
            && e.attributes.get("step").map(String::as_str) == Some("restart")
            && e.attributes.get("ok").map(String::as_str) == Some("true")
            && before_back(e)
    };
    let list = eventually(Duration::from_secs(30), "caught up", || async {
        let list = server_events(&c, &admin, s.id, "").await.ok()?;
        list.iter().any(ran_away).then_some(list)
    })
    .await;
    assert!(
        list.iter().any(|e| e.r#type == "status"
            && e.actor == format!("schedule:{}", created.id)
            && before_back(e)),
        "{list:?}"
    );
    let last = last_run_of(&c, created.id, &admin).await;
    assert!(last.last_run_time.is_some(), "{last:?}");
    let mut servers = ServerServiceClient::new(c.channel().await);
    let now = servers
        .get_server(authed(pb::GetServerRequest { id: s.id }, &admin))
        .await
        .unwrap()
        .into_inner();
    assert_ne!(now.pid, started.pid);
    let mut sched = ScheduleServiceClient::new(c.channel().await);
    sched
        .delete_schedule(authed(pb::DeleteScheduleRequest { id: created.id }, &admin))
        .await
        .unwrap();
    let _ = servers
        .kill_server(authed(pb::KillServerRequest { id: s.id }, &admin))
        .await;
}

async fn last_run_of(c: &Controller, id: i64, admin: &str) -> pb::Schedule {
    let mut sched = ScheduleServiceClient::new(c.channel().await);
    eventually(Duration::from_secs(20), "last run recorded", || {
        let mut sched = sched.clone();
        async move {
            let s = sched
                .get_schedule(authed(pb::GetScheduleRequest { id }, admin))
                .await
                .ok()?
                .into_inner();
            s.last_run_time.is_some().then_some(s)
        }
    })
    .await;
    sched
        .get_schedule(authed(pb::GetScheduleRequest { id }, admin))
        .await
        .unwrap()
        .into_inner()
}
