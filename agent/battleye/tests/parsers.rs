//! Parsers against the real-data fixtures in `tests/data/` (copied from the shared fixtures).
#![allow(clippy::unwrap_used)]

use languard_battleye::messages::{ChatTarget, Message, parse};
use languard_battleye::{BanDuration, parse_admins, parse_bans, parse_missions, parse_players};

const RESPONSES: &str = include_str!("data/rcon_responses.txt");
const MESSAGES: &str = include_str!("data/server_messages.txt");

/// The `### SOURCE:` blocks of `rcon_responses.txt`, as the server would send them (LF-joined).
fn blocks() -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in RESPONSES.lines() {
        if line.starts_with("### ") {
            if let Some(b) = current.take() {
                blocks.push(b.join("\n").trim_end().to_owned());
            }
            current = Some(Vec::new());
        } else if let Some(b) = current.as_mut() {
            b.push(line);
        }
    }
    if let Some(b) = current {
        blocks.push(b.join("\n").trim_end().to_owned());
    }
    blocks
}

#[test]
fn fixture_has_expected_blocks() {
    assert_eq!(blocks().len(), 8);
}

#[test]
fn players_sixteen_with_unicode_names() {
    let list = parse_players(&blocks()[0]);
    assert_eq!(list.skipped, 0);
    assert_eq!(list.reported_total, Some(16));
    assert_eq!(list.players.len(), 16);
    let first = &list.players[0];
    assert_eq!(first.slot, 0);
    assert_eq!(first.ip, "46.149.73.255");
    assert_eq!(first.port, 2304);
    assert_eq!(first.ping, 140);
    assert_eq!(
        first.guid.as_deref(),
        Some("2c65319280ac51b220aef667552a7f06")
    );
    assert!(first.verified);
    assert_eq!(first.name, "0dmin");
    assert!(!first.in_lobby);

    let by_slot = |s: u32| list.players.iter().find(|p| p.slot == s).unwrap();
    assert_eq!(by_slot(6).name, "Free Style");
    assert_eq!(by_slot(10).name, "Максим");
    assert_eq!(by_slot(11).name, "ГНК");
    assert_eq!(by_slot(12).name, "Cheeki Breeki");
    assert_eq!(by_slot(17).port, 11069);
    assert!(list.players.iter().all(|p| p.verified && !p.in_lobby));
    // Slots 13 and 16 are absent in the capture: slots are not contiguous.
    assert!(list.players.iter().all(|p| p.slot != 13 && p.slot != 16));
}

#[test]
fn players_unverified_lobby_negative_ping() {
    let list = parse_players(&blocks()[1]);
    assert_eq!(list.skipped, 0);
    assert_eq!(list.players.len(), 1);
    let p = &list.players[0];
    assert_eq!(p.slot, 8);
    assert_eq!(p.ping, -1);
    assert_eq!(p.guid.as_deref(), Some("73c5e50a7860475f49db400000000000"));
    assert!(!p.verified);
    assert_eq!(p.name, "Max");
    assert!(p.in_lobby);

    let list = parse_players(&blocks()[2]);
    let p = &list.players[0];
    assert_eq!(p.ping, 62);
    assert!(p.verified);
    assert!(p.in_lobby);
    assert_eq!(p.name, "Max");
}

#[test]
fn players_empty_server() {
    let list = parse_players(&blocks()[3]);
    assert!(list.players.is_empty());
    assert_eq!(list.skipped, 0);
    assert_eq!(list.reported_total, Some(0));
}

#[test]
fn players_junk_rows_skipped_not_fatal() {
    let mut text = blocks()[0].clone();
    text = text.replace("7   83.149.44.204", "garbage line here\n7   83.149.44.204");
    text.push_str("\n99 not-an-ip:1 5 - x\n\u{0}\u{1}\n5 1.2.3.4:5 notaping - y\n");
    let list = parse_players(&text);
    assert_eq!(list.players.len(), 16);
    assert_eq!(list.skipped, 4);
    // CRLF line endings are accepted too.
    let crlf = blocks()[1].replace('\n', "\r\n");
    let list = parse_players(&crlf);
    assert_eq!(list.players.len(), 1);
    assert_eq!(list.players[0].name, "Max");
    assert_eq!(list.skipped, 0);
}

#[test]
fn bans_guid_table_only() {
    let bans = parse_bans(&blocks()[4]);
    assert_eq!(bans.skipped, 0);
    assert_eq!(bans.guid_bans.len(), 5);
    assert!(bans.ip_bans.is_empty());
    let b = &bans.guid_bans[0];
    assert_eq!(b.id, 0);
    assert_eq!(b.target, "331e64806b30277076963283eea16438");
    assert_eq!(b.duration, BanDuration::Permanent);
    assert_eq!(b.reason, "destruction of equipment, TeamKill. Ban perm");
    assert_eq!(bans.guid_bans[4].reason, "Teamkill. Ban perm");
}

#[test]
fn bans_minutes_expired_and_ip() {
    let bans = parse_bans(&blocks()[5]);
    assert_eq!(bans.skipped, 0);
    assert_eq!(bans.guid_bans.len(), 2);
    assert_eq!(bans.guid_bans[0].duration, BanDuration::Minutes(163_901));
    assert_eq!(bans.guid_bans[0].reason, "cheater");
    assert_eq!(bans.guid_bans[1].duration, BanDuration::Expired);
    assert_eq!(bans.guid_bans[1].reason, "test");
    assert_eq!(bans.ip_bans.len(), 2);
    assert_eq!(bans.ip_bans[0].id, 3);
    assert_eq!(bans.ip_bans[0].target, "127.0.0.1");
    assert_eq!(bans.ip_bans[0].duration, BanDuration::Permanent);
    assert_eq!(bans.ip_bans[0].reason, "local connections disabled");
    assert_eq!(bans.ip_bans[1].target, "8.8.8.8");
    assert_eq!(bans.ip_bans[1].duration, BanDuration::Minutes(163_901));
    assert_eq!(bans.ip_bans[1].reason, "");

    let junk = format!("{}\nthis is junk\n", blocks()[5]);
    assert_eq!(parse_bans(&junk).skipped, 1);
}

#[test]
fn admins_table() {
    let admins = parse_admins(&blocks()[6]);
    assert_eq!(admins.skipped, 0);
    assert_eq!(admins.admins.len(), 4);
    assert_eq!(admins.admins[0].id, 0);
    assert_eq!(admins.admins[0].ip, "46.149.73.255");
    assert_eq!(admins.admins[0].port, 58606);
    assert_eq!(admins.admins[3].id, 3);
    assert_eq!(admins.admins[3].port, 49701);
}

#[test]
fn missions_list() {
    let missions = parse_missions(&blocks()[7]);
    assert_eq!(
        missions,
        [
            "RF_Liberators_0_0_7.Sara.pbo",
            "RF_partisan_rhs_0_8_5.Takistan.pbo",
            "RF_Liberators_0_0_6.Sara.pbo",
            "RF_SC_VTN_0_4_2.Catalina.pbo",
        ]
    );
}

/// Message lines of the fixture. Trailing `   # note` annotations are fixture comments, not
/// server output.
fn message_lines() -> Vec<&'static str> {
    MESSAGES
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split_once("   # ").map_or(l, |(msg, _)| msg))
        .collect()
}

fn s(x: &str) -> String {
    x.to_owned()
}

#[test]
fn every_fixture_message_parses_as_expected() {
    use Message::*;
    let expected = vec![
        RconAdminLogin {
            id: 0,
            ip: s("127.0.0.1"),
            port: 39951,
        },
        RconAdminLogin {
            id: 4,
            ip: s("99.99.99.99"),
            port: 9999,
        },
        PlayerConnected {
            slot: 11,
            name: s("Iteron"),
            ip: s("46.98.121.255"),
            port: 2304,
        },
        PlayerConnected {
            slot: 8,
            name: s("Max"),
            ip: s("111.222.200.50"),
            port: 2304,
        },
        PlayerConnected {
            slot: 0,
            name: s("dzotester"),
            ip: s("10.125.0.3"),
            port: 41939,
        },
        PlayerGuid {
            slot: 21,
            name: s("TipsyOstrich"),
            guid: s("c7679b5ec67c557e479a2a5057083a26"),
            verified: false,
        },
        PlayerGuid {
            slot: 8,
            name: s("Max"),
            guid: s("73c5e50a7860475f0000000000000000"),
            verified: false,
        },
        PlayerGuid {
            slot: 0,
            name: s("dzotester"),
            guid: s("907725ff524e1026154b5ac3cccb0258"),
            verified: true,
        },
        GuidVerified {
            slot: 11,
            name: s("Iteron"),
            guid: s("e3807f6355d182b3ecb7eb7cf1540d40"),
        },
        GuidVerified {
            slot: 8,
            name: s("Max"),
            guid: s("73c5e50a7860475f0000000000000000"),
        },
        PlayerDisconnected {
            slot: 12,
            name: s("sanya"),
        },
        PlayerDisconnected {
            slot: 0,
            name: s("dzotester"),
        },
        PlayerKicked {
            slot: 1,
            name: s("Baz"),
            guid: Some(s("be1a6a29ee0eb0851b586b2ed97ad110")),
            reason: s("Client not responding"),
        },
        PlayerKicked {
            slot: 19,
            name: s("Gektor"),
            guid: Some(s("23d1b17ce5e26ce5f69f2bddbe781d9e")),
            reason: s("Admin Ban ([vosur][15.09.15 15:14:56] Sabotage)"),
        },
        PlayerKicked {
            slot: 6,
            name: s("Atamur"),
            guid: Some(s("002da0e59f61916bc13ef5ef9bfee7e7")),
            reason: s("Admin Kick ([tim][22.11.15 15:19:44] Flud)"),
        },
        PlayerKicked {
            slot: 0,
            name: s("dzotester"),
            guid: Some(s("907725ff524e1026154b5ac3cccb0258")),
            reason: s("Admin Kick (dzo test kick)"),
        },
        PlayerKicked {
            slot: 2,
            name: s("Bob (the builder)"),
            guid: Some(s("907725ff524e1026154b5ac3cccb0258")),
            reason: s("Admin Kick ()"),
        },
        Chat {
            channel: s("Global"),
            name: s("dzotester"),
            text: s("dzo-be-test second: with a colon"),
        },
        Chat {
            channel: s("Side"),
            name: s("Survivor123"),
            text: s("hello there"),
        },
        Chat {
            channel: s("Unknown"),
            name: s("ToxaBes"),
            text: s("тест для тима"),
        },
        Chat {
            channel: s("Global"),
            name: s("bot"),
            text: s("Текущее время 01.01.2020 12:00:00"),
        },
        AdminChat {
            admin_id: 0,
            target: ChatTarget::Channel(s("Global")),
            text: s("Server restarting in 5 minutes"),
        },
        AdminChat {
            admin_id: 0,
            target: ChatTarget::Player(s("dzotester")),
            text: s("private note"),
        },
        Other(s("Connected to BE Master")),
        Other(s("Disconnected from BE Master")),
        Other(s("Ban check timed out, no response from BE Master")),
        Other(s("Master query timed out, no response from BE Master")),
        Other(s("Failed to resolve BE Master DNS name(s)")),
        Other(s("Failed to receive from BE Master (...)")),
        Other(s("Config entry: ...")),
    ];
    let lines = message_lines();
    assert_eq!(lines.len(), expected.len(), "fixture line count changed");
    for (line, want) in lines.iter().zip(expected) {
        assert_eq!(parse(line), want, "line: {line}");
    }
}

#[test]
fn dash_guid_kick_and_odd_names() {
    assert_eq!(
        parse("Player #3 No Guid (-) has been kicked by BattlEye: Client not responding"),
        Message::PlayerKicked {
            slot: 3,
            name: s("No Guid"),
            guid: None,
            reason: s("Client not responding"),
        }
    );
    assert_eq!(
        parse("Player #4 Mr (1.2.3.4:5) Jones (9.8.7.6:2304) connected"),
        Message::PlayerConnected {
            slot: 4,
            name: s("Mr (1.2.3.4:5) Jones"),
            ip: s("9.8.7.6"),
            port: 2304,
        }
    );
    // Near misses stay Other, never panic.
    for text in [
        "",
        "Player #",
        "Player #x Foo disconnected",
        "Player #1 Foo - GUID: nothex",
        "Verified GUID (abc) of player #1 x",
        "RCon admin #: hi",
        "RCon admin #1 (nope) logged in",
        "(Global)",
        "(Bad)Channel) x: y",
        "(Global) NoColonHere",
    ] {
        assert_eq!(parse(text), Message::Other(s(text)), "{text:?}");
    }
}
