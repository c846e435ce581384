//! Players and RCon end to end: a scripted agent session reports joins, GUIDs, leaves and `players`
//! snapshots; `PlayerService` lists who is on and the session history, and routes RCon actions to
//! the agent (the test answers as the agent and checks the exact command text).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use chrono::{TimeZone, Utc};
use common::*;
use futures::StreamExt;
use languard_proto::v1 as pb;
use pb::event_service_client::EventServiceClient;
use pb::player_service_client::PlayerServiceClient;
use tonic::Code;
use tonic::transport::Channel;

const GA: &str = "0123456789abcdef0123456789abcdef";
const GB: &str = "fedcba9876543210fedcba9876543210";

fn player_ev(change: pb::PlayerChange, slot: i32, name: &str, guid: &str) -> pb::agent_event::Body {
    pb::agent_event::Body::Player(pb::PlayerEvent {
        change: change as i32,
        slot,
        name: name.into(),
        guid: guid.into(),
        verified: !guid.is_empty(),
        address: format!("10.0.0.{slot}:2304"),
        reason: String::new(),
    })
}

fn snap_player(slot: i32, name: &str, guid: &str, ping: i32) -> pb::Player {
    pb::Player {
        slot,
        name: name.into(),
        guid: guid.into(),
        verified: !guid.is_empty(),
        address: format!("10.0.0.{slot}:2304"),
        ping,
        ..Default::default()
    }
}

fn snapshot(players: Vec<pb::Player>) -> pb::agent_event::Body {
    pb::agent_event::Body::Players(pb::PlayerSnapshot { players })
}

fn chat(text: &str) -> pb::agent_event::Body {
    pb::agent_event::Body::Chat(pb::ChatMessage {
        channel: "Global".into(),
        name: "Ann".into(),
        text: text.into(),
        admin: false,
    })
}

/// A timed event (so joined/left times are exact).
fn at(
    seq: &mut u64,
    server_id: i64,
    t: chrono::DateTime<Utc>,
    body: pb::agent_event::Body,
) -> pb::AgentEvent {
    *seq += 1;
    pb::AgentEvent {
        seq: *seq,
        time: Some(ts(t)),
        server_id,
        body: Some(body),
    }
}

type Watch = tonic::Streaming<pb::LiveEvent>;

async fn watch(c: &Controller, token: &str, server_id: i64) -> Watch {
    let mut events = EventServiceClient::new(c.channel().await);
    events
        .watch_events(authed(pb::WatchEventsRequest { server_id }, token))
        .await
        .unwrap()
        .into_inner()
}

/// Player changes seen on the live feed until the chat message `marker`.
async fn changes_until(w: &mut Watch, marker: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(10), w.next())
            .await
            .expect("live event")
            .expect("stream open")
            .expect("event");
        match ev.payload {
            Some(pb::live_event::Payload::Players(u)) => {
                out.push((u.change, u.player.map(|p| p.name).unwrap_or_default()))
            }
            Some(pb::live_event::Payload::Event(e))
                if e.r#type == "chat"
                    && e.attributes.get("text").map(String::as_str) == Some(marker) =>
            {
                return out;
            }
            _ => {}
        }
    }
}

async fn players_on(
    p: &mut PlayerServiceClient<Channel>,
    token: &str,
    server_id: i64,
) -> Vec<pb::Player> {
    p.list_players(authed(
        pb::ListPlayersRequest {
            server_id,
            ..Default::default()
        },
        token,
    ))
    .await
    .unwrap()
    .into_inner()
    .players
}

async fn sessions(
    p: &mut PlayerServiceClient<Channel>,
    token: &str,
    r: pb::ListPlayerSessionsRequest,
) -> Vec<pb::PlayerSession> {
    p.list_player_sessions(authed(r, token))
        .await
        .unwrap()
        .into_inner()
        .sessions
}

#[tokio::test]
async fn join_identify_leave_kick_and_stop_keep_players_and_history_right() {
    let c = Controller::start().await;
    let mut rig = Rig::new(&c, "host-players").await;
    let viewer = c.user_token("vic", pb::Role::Viewer).await;
    let sid = rig.server_id;
    let mut live = watch(&c, &viewer, sid).await;
    let t0 = Utc
        .with_ymd_and_hms(2026, 12, 3, 20, 0, 0)
        .single()
        .unwrap();
    let m = chrono::Duration::minutes;
    let mut seq = rig.agent.seq;
    use pb::PlayerChange::{Identified, Joined, Left};
    let mut kicked = pb::PlayerEvent {
        change: Left as i32,
        slot: 0,
        name: "Ann".into(),
        guid: GA.into(),
        reason: "kicked by BattlEye: Admin Kick".into(),
        ..Default::default()
    };
    let events = vec![
        at(&mut seq, sid, t0, player_ev(Joined, 0, "Ann", "")),
        // A repeated join (e.g. the same message seen twice) changes nothing.
        at(&mut seq, sid, t0 + m(1), player_ev(Joined, 0, "Ann", "")),
        at(
            &mut seq,
            sid,
            t0 + m(1),
            player_ev(Identified, 0, "Ann", &GA.to_uppercase()),
        ),
        at(&mut seq, sid, t0 + m(2), player_ev(Joined, 1, "Bob", "")),
        at(
            &mut seq,
            sid,
            t0 + m(3),
            pb::agent_event::Body::Player(kicked.clone()),
        ),
    ];
    rig.agent.seq = seq;
    rig.agent.send_raw(events).await;
    kicked.reason = "disconnected".into();
    kicked.guid = String::new();
    let events = vec![
        // The disconnect that follows a kick: no second leave.
        at(
            &mut seq,
            sid,
            t0 + m(4),
            pb::agent_event::Body::Player(kicked),
        ),
        at(&mut seq, sid, t0 + m(4), chat("marker-1")),
    ];
    rig.agent.seq = seq;
    rig.agent.send_raw(events).await;
    assert_eq!(
        changes_until(&mut live, "marker-1").await,
        vec![
            ("joined".into(), "Ann".into()),
            ("identified".into(), "Ann".into()),
            ("joined".into(), "Bob".into()),
            ("left".into(), "Ann".into()),
        ]
    );
    let mut p = PlayerServiceClient::new(c.channel().await);
    let on = players_on(&mut p, &viewer, sid).await;
    assert_eq!(on.len(), 1);
    assert_eq!(on[0].name, "Bob");
    assert_eq!(on[0].slot, 1);
    assert_eq!(on[0].address, "10.0.0.1:2304");
    assert_eq!(
        on[0].joined_time.as_ref().unwrap().seconds,
        (t0 + m(2)).timestamp()
    );
    let all = sessions(
        &mut p,
        &viewer,
        pb::ListPlayerSessionsRequest {
            server_id: sid,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(all.len(), 2, "one session each: {all:?}");
    assert_eq!(all[0].name, "Bob", "newest first");
    assert!(all[0].left_time.is_none());
    assert_eq!(all[1].name, "Ann");
    assert_eq!(all[1].guid, GA, "GUID recorded on the session, lower case");
    assert_eq!(all[1].joined_time.as_ref().unwrap().seconds, t0.timestamp());
    assert_eq!(
        all[1].left_time.as_ref().unwrap().seconds,
        (t0 + m(3)).timestamp(),
        "left at the kick, not at the disconnect"
    );
    let by_guid = sessions(
        &mut p,
        &viewer,
        pb::ListPlayerSessionsRequest {
            guid: GA.to_uppercase(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        by_guid.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        vec!["Ann"]
    );
    let by_name = sessions(
        &mut p,
        &viewer,
        pb::ListPlayerSessionsRequest {
            name_contains: "bO".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        by_name.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        vec!["Bob"]
    );
    let in_range = sessions(
        &mut p,
        &viewer,
        pb::ListPlayerSessionsRequest {
            start_time: Some(ts(t0 + m(1))),
            end_time: Some(ts(t0 + m(10))),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        in_range.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        vec!["Bob"]
    );
    let page = p
        .list_player_sessions(authed(
            pb::ListPlayerSessionsRequest {
                page_size: 1,
                ..Default::default()
            },
            &viewer,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.sessions[0].name, "Bob");
    let page2 = p
        .list_player_sessions(authed(
            pb::ListPlayerSessionsRequest {
                page_size: 1,
                page_token: page.next_page_token,
                ..Default::default()
            },
            &viewer,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page2.sessions[0].name, "Ann");

    // The server stops: everyone left at that moment.
    let stop = pb::agent_event::Body::Status(pb::StatusChanged {
        status: pb::ServerStatus::Stopped as i32,
        previous: pb::ServerStatus::Running as i32,
        reason: "exited".into(),
        exit_code: Some(0),
        ..Default::default()
    });
    let gap = pb::agent_event::Body::Gap(pb::Gap {
        dropped_metrics: 2,
        dropped_log_lines: 1234,
        reason: "spool full".into(),
    });
    let events = vec![
        at(&mut seq, sid, t0 + m(30), stop),
        at(&mut seq, sid, t0 + m(30), gap),
        at(&mut seq, sid, t0 + m(30), chat("marker-2")),
    ];
    rig.agent.seq = seq;
    rig.agent.send_raw(events).await;
    assert_eq!(
        changes_until(&mut live, "marker-2").await,
        vec![("left".into(), "Bob".into())]
    );
    assert!(players_on(&mut p, &viewer, sid).await.is_empty());
    let all = sessions(
        &mut p,
        &viewer,
        pb::ListPlayerSessionsRequest {
            server_id: sid,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        all[0].left_time.as_ref().unwrap().seconds,
        (t0 + m(30)).timestamp()
    );

    // Chat and gaps are searchable events.
    let mut ev = EventServiceClient::new(c.channel().await);
    let chats = ev
        .list_events(authed(
            pb::ListEventsRequest {
                server_id: sid,
                r#type: "chat".into(),
                ..Default::default()
            },
            &viewer,
        ))
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(chats.len(), 2);
    assert_eq!(chats[0].attributes["channel"], "Global");
    assert_eq!(chats[0].attributes["name"], "Ann");
    assert_eq!(chats[0].attributes["admin"], "false");
    assert_eq!(chats[0].message, "(Global) Ann: marker-2");
    let gaps = ev
        .list_events(authed(
            pb::ListEventsRequest {
                server_id: sid,
                r#type: "gap".into(),
                ..Default::default()
            },
            &viewer,
        ))
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(gaps.len(), 1);
    assert_eq!(gaps[0].attributes["dropped_log_lines"], "1234");
    assert_eq!(gaps[0].attributes["reason"], "spool full");
}

#[tokio::test]
async fn snapshots_reconcile_without_fake_joins_or_leaves() {
    let c = Controller::start().await;
    let mut rig = Rig::new(&c, "host-snap").await;
    let sid = rig.server_id;
    let mut live = watch(&c, &rig.admin, sid).await;
    let a = snap_player(0, "Ann", GA, 40);
    let b = snap_player(1, "Bob Two Words", "", -1);
    rig.agent
        .send(vec![
            (sid, snapshot(vec![a.clone(), b.clone()])),
            (sid, chat("m1")),
        ])
        .await;
    assert_eq!(
        changes_until(&mut live, "m1").await,
        vec![
            ("joined".into(), "Ann".into()),
            ("joined".into(), "Bob Two Words".into())
        ]
    );
    let mut p = PlayerServiceClient::new(c.channel().await);
    let before = players_on(&mut p, &rig.admin, sid).await;
    // Paged one at a time, the same list in the same order.
    let mut paged = Vec::new();
    let mut token = String::new();
    loop {
        let r = p
            .list_players(authed(
                pb::ListPlayersRequest {
                    server_id: sid,
                    page_size: 1,
                    page_token: token,
                },
                &rig.admin,
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(r.players.len() <= 1);
        paged.extend(r.players);
        if r.next_page_token.is_empty() {
            break;
        }
        token = r.next_page_token;
    }
    assert_eq!(paged, before);
    // The same snapshot again (an RCon reconnect, an agent restart): nothing happens.
    rig.agent
        .send(vec![
            (sid, snapshot(vec![b.clone(), a.clone()])),
            (sid, chat("m2")),
        ])
        .await;
    assert_eq!(changes_until(&mut live, "m2").await, vec![]);
    assert_eq!(players_on(&mut p, &rig.admin, sid).await, before);
    // Ping, lobby and a newly reported GUID are updates, not joins.
    let mut a2 = a.clone();
    a2.ping = 80;
    a2.in_lobby = true;
    let mut b2 = b.clone();
    b2.guid = GB.into();
    b2.verified = true;
    rig.agent
        .send(vec![
            (sid, snapshot(vec![a2.clone(), b2.clone()])),
            (sid, chat("m3")),
        ])
        .await;
    assert_eq!(
        changes_until(&mut live, "m3").await,
        vec![("reconciled".into(), String::new())]
    );
    let now = players_on(&mut p, &rig.admin, sid).await;
    assert_eq!(now[0].ping, 80);
    assert!(now[0].in_lobby);
    assert_eq!(now[1].guid, GB);
    assert_eq!(now[0].joined_time, before[0].joined_time, "same session");
    // Bob gone, Cid new.
    let cid = snap_player(1, "Cid", "", 20);
    rig.agent
        .send(vec![
            (sid, snapshot(vec![a2.clone(), cid])),
            (sid, chat("m4")),
        ])
        .await;
    assert_eq!(
        changes_until(&mut live, "m4").await,
        vec![
            ("left".into(), "Bob Two Words".into()),
            ("joined".into(), "Cid".into())
        ]
    );
    let hist = sessions(
        &mut p,
        &rig.admin,
        pb::ListPlayerSessionsRequest {
            server_id: sid,
            ..Default::default()
        },
    )
    .await;
    let names: Vec<(&str, bool)> = hist
        .iter()
        .map(|s| (s.name.as_str(), s.left_time.is_some()))
        .collect();
    assert_eq!(
        names,
        vec![("Cid", false), ("Bob Two Words", true), ("Ann", false)]
    );
    assert_eq!(
        hist[1].guid, GB,
        "the GUID learned from the snapshot is on the session"
    );
}

/// Spawns an RPC, receives the command the agent gets, answers it and returns (command, RPC result).
async fn act<T, F>(
    agent: &mut FakeAgent,
    answer: pb::CommandResult,
    rpc: F,
) -> (String, Result<T, tonic::Status>)
where
    T: Send + 'static,
    F: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>> + Send + 'static,
{
    let call = tokio::spawn(rpc);
    let cmd = agent.next_command().await;
    let command = match cmd.action {
        Some(pb::agent_command::Action::Rcon(r)) => r.command,
        other => panic!("expected an rcon command, got {other:?}"),
    };
    agent
        .answer(pb::CommandResult {
            request_id: cmd.request_id,
            ..answer
        })
        .await;
    (command, call.await.unwrap().map(|r| r.into_inner()))
}

/// An RPC future that owns its client (for `act`).
macro_rules! rpc {
    ($ch:expr, $method:ident, $req:expr) => {{
        let mut cl = PlayerServiceClient::new($ch.clone());
        let req = $req;
        async move { cl.$method(req).await }
    }};
}

fn ok(output: &str) -> pb::CommandResult {
    pb::CommandResult {
        ok: true,
        output: output.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn rcon_actions_send_the_right_commands_and_are_recorded() {
    let c = Controller::start().await;
    let mut rig = Rig::new(&c, "host-rcon").await;
    let sid = rig.server_id;
    let op = c.user_token("otto", pb::Role::Operator).await;
    let viewer = c.user_token("vic", pb::Role::Viewer).await;
    rig.agent
        .send(vec![(sid, snapshot(vec![snap_player(3, "Ann", GA, 30)]))])
        .await;
    let ch = c.channel().await;
    let client = {
        let ch = ch.clone();
        move || PlayerServiceClient::new(ch.clone())
    };
    let by_guid = |g: &str| {
        Some(pb::PlayerRef {
            guid: g.into(),
            slot: 0,
        })
    };
    let by_slot = |s: i32| {
        Some(pb::PlayerRef {
            guid: String::new(),
            slot: s,
        })
    };

    let mut cases: Vec<(String, &str)> = Vec::new();
    let (cmd, r) = act(
        &mut rig.agent,
        ok(""),
        rpc!(
            ch,
            kick_player,
            authed(
                pb::KickPlayerRequest {
                    server_id: sid,
                    player: by_guid(GA),
                    reason: "bye now".into()
                },
                &op
            )
        ),
    )
    .await;
    assert_eq!(r.unwrap().command, "kick 3 bye now");
    cases.push((cmd, "kick 3 bye now"));
    let (cmd, _) = act(
        &mut rig.agent,
        ok(""),
        rpc!(
            ch,
            kick_player,
            authed(
                pb::KickPlayerRequest {
                    server_id: sid,
                    player: by_slot(5),
                    reason: String::new()
                },
                &op
            )
        ),
    )
    .await;
    cases.push((cmd, "kick 5"));
    let (cmd, _) = act(
        &mut rig.agent,
        ok(""),
        rpc!(
            ch,
            ban_player,
            authed(
                pb::BanPlayerRequest {
                    server_id: sid,
                    player: by_guid(GA),
                    minutes: 60,
                    reason: "cheating".into()
                },
                &op
            )
        ),
    )
    .await;
    cases.push((cmd, "ban 3 60 cheating"));
    let (cmd, _) = act(
        &mut rig.agent,
        ok(""),
        rpc!(
            ch,
            ban_player,
            authed(
                pb::BanPlayerRequest {
                    server_id: sid,
                    player: by_guid(&GB.to_uppercase()),
                    minutes: 0,
                    reason: "perm ban".into()
                },
                &op
            )
        ),
    )
    .await;
    cases.push((cmd, "addBan fedcba9876543210fedcba9876543210 0 perm ban"));
    let (cmd, _) = act(
        &mut rig.agent,
        ok(""),
        rpc!(
            ch,
            send_message,
            authed(
                pb::SendMessageRequest {
                    server_id: sid,
                    text: "restart in 5 minutes".into(),
                    player: None
                },
                &op
            )
        ),
    )
    .await;
    cases.push((cmd, "say -1 restart in 5 minutes"));
    let (cmd, _) = act(
        &mut rig.agent,
        ok(""),
        rpc!(
            ch,
            send_message,
            authed(
                pb::SendMessageRequest {
                    server_id: sid,
                    text: "hi Ann".into(),
                    player: by_guid(GA)
                },
                &op
            )
        ),
    )
    .await;
    cases.push((cmd, "say 3 hi Ann"));
    let (cmd, _) = act(
        &mut rig.agent,
        ok(""),
        rpc!(
            ch,
            lock_server,
            authed(pb::LockServerRequest { server_id: sid }, &op)
        ),
    )
    .await;
    cases.push((cmd, "#lock"));
    let (cmd, _) = act(
        &mut rig.agent,
        ok(""),
        rpc!(
            ch,
            unlock_server,
            authed(pb::UnlockServerRequest { server_id: sid }, &op)
        ),
    )
    .await;
    cases.push((cmd, "#unlock"));
    let (cmd, _) = act(
        &mut rig.agent,
        ok(""),
        rpc!(
            ch,
            remove_ban,
            authed(
                pb::RemoveBanRequest {
                    server_id: sid,
                    number: 2
                },
                &op
            )
        ),
    )
    .await;
    cases.push((cmd, "removeBan 2"));
    for (got, want) in &cases {
        assert_eq!(got, want);
    }
    let bans_answer = "GUID Bans:\n[#] [GUID] [Minutes left] [Reason]\n----------------------------------------\n0  11111111111122222222222223333333 163901 cheater\n1  331e64806b30277076963283eea16438 perm TeamKill. Ban perm\n2  11111111111122222222222223333333 -      test\n\nIP Bans:\n[#] [IP Address] [Minutes left] [Reason]\n----------------------------------------------\n3 127.0.0.1       perm      local connections disabled\n";
    let (cmd, r) = act(
        &mut rig.agent,
        ok(bans_answer),
        rpc!(
            ch,
            list_bans,
            authed(
                pb::ListBansRequest {
                    server_id: sid,
                    ..Default::default()
                },
                &op
            )
        ),
    )
    .await;
    assert_eq!(cmd, "bans");
    let bans = r.unwrap().bans;
    let got: Vec<(i32, &str, bool, i64)> = bans
        .iter()
        .map(|b| (b.number, b.target.as_str(), b.ip_ban, b.minutes_left))
        .collect();
    assert_eq!(
        got,
        vec![
            (0, "11111111111122222222222223333333", false, 163901),
            (1, "331e64806b30277076963283eea16438", false, -1),
            (2, "11111111111122222222222223333333", false, 0),
            (3, "127.0.0.1", true, -1),
        ]
    );
    assert_eq!(bans[1].reason, "TeamKill. Ban perm");

    // Every action (not the bans listing) is recorded with the acting user and the command.
    let mut ev = EventServiceClient::new(c.channel().await);
    let recorded = ev
        .list_events(authed(
            pb::ListEventsRequest {
                server_id: sid,
                r#type: "rcon".into(),
                ..Default::default()
            },
            &viewer,
        ))
        .await
        .unwrap()
        .into_inner()
        .events;
    let mut commands: Vec<&str> = recorded
        .iter()
        .map(|e| e.attributes["command"].as_str())
        .collect();
    commands.reverse();
    let want: Vec<&str> = cases.iter().map(|c| c.1).collect();
    assert_eq!(commands, want);
    assert!(
        recorded
            .iter()
            .all(|e| e.actor == "otto" && e.attributes["outcome"] == "ok")
    );

    // Admins send raw commands and get the answer; operators may not.
    let (cmd, r) = act(
        &mut rig.agent,
        ok("Players on server:\n(0 players in total)"),
        rpc!(
            ch,
            send_rcon_command,
            authed(
                pb::SendRconCommandRequest {
                    server_id: sid,
                    command: "players".into()
                },
                &rig.admin
            )
        ),
    )
    .await;
    assert_eq!(cmd, "players");
    assert_eq!(
        r.unwrap().output,
        "Players on server:\n(0 players in total)"
    );
    let e = client()
        .send_rcon_command(authed(
            pb::SendRconCommandRequest {
                server_id: sid,
                command: "players".into(),
            },
            &op,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = client()
        .kick_player(authed(
            pb::KickPlayerRequest {
                server_id: sid,
                player: by_slot(3),
                reason: String::new(),
            },
            &viewer,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = client()
        .lock_server(authed(pb::LockServerRequest { server_id: sid }, &viewer))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);

    // Validation names the field; nothing reaches the agent.
    let e = client()
        .kick_player(authed(
            pb::KickPlayerRequest {
                server_id: sid,
                player: by_slot(3),
                reason: "x\n#shutdown".into(),
            },
            &op,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().starts_with("reason"), "{}", e.message());
    let e = client()
        .send_message(authed(
            pb::SendMessageRequest {
                server_id: sid,
                text: " ".into(),
                player: None,
            },
            &op,
        ))
        .await
        .unwrap_err();
    assert!(e.message().starts_with("text"), "{}", e.message());
    let e = client()
        .kick_player(authed(
            pb::KickPlayerRequest {
                server_id: sid,
                player: by_guid(GB),
                reason: String::new(),
            },
            &op,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        e.code(),
        Code::NotFound,
        "a GUID that is not on the server cannot be kicked"
    );
    let e = client()
        .ban_player(authed(
            pb::BanPlayerRequest {
                server_id: sid,
                player: by_guid("nope"),
                minutes: 0,
                reason: String::new(),
            },
            &op,
        ))
        .await
        .unwrap_err();
    assert!(e.message().starts_with("player.guid"), "{}", e.message());
    let e = client()
        .ban_player(authed(
            pb::BanPlayerRequest {
                server_id: sid,
                player: by_slot(1),
                minutes: -5,
                reason: String::new(),
            },
            &op,
        ))
        .await
        .unwrap_err();
    assert!(e.message().starts_with("minutes"), "{}", e.message());

    // The agent says RCon is down: UNAVAILABLE with its reason.
    let down = pb::CommandResult {
        ok: false,
        error: "RCon of server 1 is not connected (login refused)".into(),
        error_kind: pb::CommandErrorKind::Unavailable as i32,
        ..Default::default()
    };
    let (_, r) = act(
        &mut rig.agent,
        down,
        rpc!(
            ch,
            lock_server,
            authed(pb::LockServerRequest { server_id: sid }, &op)
        ),
    )
    .await;
    let e = r.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
    assert!(e.message().contains("not connected"), "{}", e.message());

    // A server whose node is offline: UNAVAILABLE at once.
    let (offline_node, _) = c.create_node("host-off").await;
    let other = create_server(&c, &rig.admin, offline_node, "dark", rig.dir.path()).await;
    let e = client()
        .lock_server(authed(pb::LockServerRequest { server_id: other }, &op))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
    assert!(e.message().contains("offline"), "{}", e.message());
}
