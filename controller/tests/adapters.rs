//! Game adapters: the controller loads declared adapters from its adapters directory (a broken
//! file is reported and skipped), lists them with their capabilities, refuses unknown game types
//! and bad settings, and a server of a declared type runs as a real process on a real agent, its
//! log parsed with the adapter's regex and its graceful stop done with the adapter's signal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::*;
use languard_proto::v1 as pb;
use pb::log_service_client::LogServiceClient;
use pb::server_service_client::ServerServiceClient;
use tonic::Code;

/// The example shipped in deploy/ is the one tested.
const EXAMPLE: &str = include_str!("../../deploy/adapters/generic-process.toml");

/// A small game server: logs in the adapter's format, stops cleanly on SIGINT only.
const GAME: &str = r#"#!/usr/bin/env python3
import datetime, signal, sys, time

def log(level, text):
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    print(f"{now} [{level}] {text}", flush=True)

def stop(*_):
    log("INFO", "stopping on SIGINT")
    sys.exit(0)

signal.signal(signal.SIGINT, stop)
args = sys.argv[1:]
port = args[args.index("--port") + 1]
name = args[args.index("--name") + 1]
log("INFO", f"{name} listening on port {port}")
print("2020-01-02 03:04:05 [ERROR] disk almost full", flush=True)
print("    at storage.check (line 7)", flush=True)
log("WARN", "slow tick")
deadline = time.time() + 120
while time.time() < deadline:
    time.sleep(0.1)
"#;

#[tokio::test]
async fn a_declared_adapter_runs_a_real_process_with_its_log_regex_and_stop_signal() {
    let dir = tempfile::tempdir().unwrap();
    let adapters = dir.path().join("adapters");
    std::fs::create_dir_all(&adapters).unwrap();
    std::fs::write(adapters.join("generic-process.toml"), EXAMPLE).unwrap();
    std::fs::write(
        adapters.join("broken.toml"),
        "name = \"broken\"\n[process]\nargs = [\"{settings.missing}\"]\n",
    )
    .unwrap();
    let c = Controller::start_with(&[("LANGUARD_ADAPTERS_DIR", adapters.to_str().unwrap())]).await;
    let admin = c.admin_token().await;
    let viewer = c.user_token("vera", pb::Role::Viewer).await;
    let mut servers = ServerServiceClient::new(c.channel().await);

    // Listed with capabilities; the broken file is reported and skipped.
    let types = servers
        .list_game_types(authed(pb::ListGameTypesRequest::default(), &viewer))
        .await
        .expect("list")
        .into_inner()
        .game_types;
    let names: Vec<&str> = types.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, vec!["arma3", "generic-process"]);
    let arma = &types[0];
    assert!(arma.has_rcon && arma.rcon_protocol == "battleye" && arma.log_format == "rpt");
    let generic = &types[1];
    assert_eq!(generic.display_name, "Generic process");
    assert!(generic.source.ends_with("generic-process.toml"));
    assert!(!generic.has_rcon);
    assert_eq!(generic.log_format, "regex");
    assert_eq!(generic.required_settings, vec!["port"]);
    assert_eq!(generic.stop_sequence, vec!["signal SIGINT"]);
    eventually(
        Duration::from_secs(5),
        "the broken file reported",
        || async {
            let log = c.log();
            (log.contains("broken.toml") && log.contains("settings.missing")).then_some(())
        },
    )
    .await;

    let (node_id, token) = c.create_node("host").await;
    let game = dir.path().join("game");
    std::fs::create_dir_all(&game).unwrap();
    let exe = game.join("gameserver.py");
    std::fs::write(&exe, GAME).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let spec = |settings: &[(&str, &str)]| pb::Server {
        node_id,
        name: "alpha".into(),
        game_type: "generic-process".into(),
        executable_path: exe.display().to_string(),
        settings: settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    };
    let create = |server: pb::Server| {
        let mut servers = servers.clone();
        let admin = admin.clone();
        async move {
            servers
                .create_server(authed(
                    pb::CreateServerRequest {
                        server: Some(server),
                        rcon_password: String::new(),
                    },
                    &admin,
                ))
                .await
        }
    };
    // Refused: unknown type, missing or unknown settings, RCon on a game without it.
    let e = create(pb::Server {
        game_type: "quake".into(),
        ..spec(&[("port", "1")])
    })
    .await
    .expect_err("unknown type");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("server.game_type") && e.message().contains("generic-process"));
    let e = create(spec(&[])).await.expect_err("missing setting");
    assert!(
        e.message().contains("server.settings") && e.message().contains("\"port\" is required"),
        "{}",
        e.message()
    );
    let e = create(spec(&[("port", "1"), ("colour", "red")]))
        .await
        .expect_err("unknown setting");
    assert!(e.message().contains("colour"), "{}", e.message());
    let e = create(pb::Server {
        rcon_port: 2400,
        ..spec(&[("port", "27015")])
    })
    .await
    .expect_err("no rcon");
    assert!(e.message().contains("server.rcon_port"), "{}", e.message());
    let s = create(spec(&[("port", "27015")]))
        .await
        .expect("create")
        .into_inner();
    assert_eq!(s.settings.get("port").map(String::as_str), Some("27015"));
    // The adapter's [ports] settings are ports: checked, and no two servers of a node share one.
    let e = create(pb::Server {
        name: "beta".into(),
        ..spec(&[("port", "27015")])
    })
    .await
    .expect_err("port clash");
    assert!(
        e.message().contains("server.settings.port") && e.message().contains("clash"),
        "{}",
        e.message()
    );
    let e = create(pb::Server {
        name: "gamma".into(),
        ..spec(&[("port", "80")])
    })
    .await
    .expect_err("privileged port");
    assert!(
        e.message().contains("server.settings.port"),
        "{}",
        e.message()
    );

    // Run it on a real agent.
    let _agent = Agent::start(&c.url(), &token, &dir.path().join("agent")).await;
    let started = start_when_online(&c, &admin, s.id).await;
    assert!(alive(started.pid));
    let logs = LogServiceClient::new(c.channel().await);
    let entries = eventually(Duration::from_secs(30), "the game's log lines", || {
        let mut logs = logs.clone();
        let admin = admin.clone();
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
            (r.entries.len() >= 3).then_some(r.entries)
        }
    })
    .await;
    // The argument template was filled in from the settings and the server's name.
    assert_eq!(entries[0].text, "alpha listening on port 27015");
    assert_eq!(entries[0].level, pb::LogLevel::Info as i32);
    assert!(
        (entries[0].time.as_ref().unwrap().seconds - chrono::Utc::now().timestamp()).abs() < 600
    );
    // Time and level come from the regex groups; the unmatched line continues the entry before.
    assert_eq!(
        entries[1].text,
        "disk almost full\n    at storage.check (line 7)"
    );
    assert_eq!(entries[1].level, pb::LogLevel::Error as i32);
    let want = chrono::DateTime::parse_from_rfc3339("2020-01-02T03:04:05Z")
        .unwrap()
        .timestamp();
    assert_eq!(entries[1].time.as_ref().unwrap().seconds, want);
    assert_eq!(entries[1].kind, "line");
    assert_eq!(entries[2].text, "slow tick");
    assert_eq!(entries[2].level, pb::LogLevel::Warning as i32);
    // stdout went to the adapter's file name in the working dir.
    assert!(
        std::fs::read_dir(&game)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("console_")),
        "console_<date>.log written"
    );

    // A graceful stop uses SIGINT: the game says so and exits by itself.
    let stopped = servers
        .stop_server(authed(pb::StopServerRequest { id: s.id }, &admin))
        .await
        .expect("stop")
        .into_inner();
    assert_eq!(stopped.status, pb::ServerStatus::Stopped as i32);
    assert!(!alive(started.pid));
    eventually(Duration::from_secs(20), "the SIGINT handler's line", || {
        let mut logs = logs.clone();
        let admin = admin.clone();
        async move {
            let r = logs
                .list_logs(authed(
                    pb::ListLogsRequest {
                        server_id: s.id,
                        text_contains: "stopping on SIGINT".into(),
                        ..Default::default()
                    },
                    &admin,
                ))
                .await
                .ok()?
                .into_inner();
            (!r.entries.is_empty()).then_some(())
        }
    })
    .await;
}
