//! End-to-end log pipeline benchmark: one game server's `.rpt` → agent → controller → database,
//! with a WebSocket client attached. Real release binaries, real processes, loopback only.
//!
//! ```sh
//! cargo build --release -p languard-controller -p languard-agent
//! cargo bench -p languard-controller --bench log_pipeline
//! ```
//!
//! Prints, per database (SQLite always; PostgreSQL when `LANGUARD_BENCH_PG_URL` is set, e.g.
//! `postgres://postgres@127.0.0.1:5432`): sustained lines/s with the loss count, the p50/p99
//! latency from the line being written to its WebSocket delivery at 2,000 lines/s, and the peak
//! resident memory of the controller and the agent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use languard_proto::v1 as pb;
use sea_orm::{ConnectionTrait, Statement};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const PASSWORD: &str = "bench-admin-password";

fn authed<T>(msg: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

struct Run {
    controller: Child,
    agent: Child,
    addr: String,
    token: String,
    db_url: String,
    server_id: i64,
    _dir: tempfile::TempDir,
}

async fn start(db_url: Option<String>, flood: &[&str]) -> Run {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_languard-controller"));
    let agent_bin = bin.with_file_name("languard-agent");
    assert!(
        agent_bin.exists(),
        "build the agent first: cargo build --release -p languard-agent"
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db_url = db_url
        .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", data.join("languard.db").display()));
    let mut controller = Command::new(&bin)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .args(["--database-url", &db_url])
        .env("LANGUARD_ADMIN_PASSWORD", PASSWORD)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(controller.stdout.take().unwrap()).lines();
    let addr = loop {
        let l = lines.next_line().await.unwrap().expect("controller exited");
        if let Some(a) = l.strip_prefix("languard-controller listening on ") {
            break a.trim().to_owned();
        }
    };
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let token = pb::auth_service_client::AuthServiceClient::new(channel.clone())
        .login(pb::LoginRequest {
            username: "admin".into(),
            password: PASSWORD.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .access_token;
    let node = pb::node_service_client::NodeServiceClient::new(channel.clone())
        .create_node(authed(
            pb::CreateNodeRequest {
                name: "bench".into(),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    let agent = Command::new(&agent_bin)
        .args([
            "--controller-url",
            &format!("http://{addr}"),
            "--node-token",
            &node.token,
            "--state-dir",
        ])
        .arg(dir.path().join("agent"))
        .env("LANGUARD_LOG_MAX_LINES_PER_SEC", "0")
        .env("RUST_LOG", "warn")
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let exe = dir.path().join("arma3server_x64");
    std::os::unix::fs::symlink(&bin, &exe).unwrap();
    let mut extra: Vec<String> = vec![
        "-fakeExitAfter=600".into(),
        "-fakeFloodTagged".into(),
        "-fakeLoadInterval=3600".into(),
    ];
    extra.extend(flood.iter().map(|s| s.to_string()));
    let port = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        i32::from(s.local_addr().unwrap().port()).min(60000)
    };
    let spec = pb::Server {
        node_id: node.node.unwrap().id,
        name: "bench".into(),
        executable_path: exe.display().to_string(),
        arma3: Some(pb::Arma3Settings {
            game_port: port,
            profiles_dir: dir.path().join("profiles").display().to_string(),
            extra_args: extra,
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut servers = pb::server_service_client::ServerServiceClient::new(channel.clone());
    let server_id = servers
        .create_server(authed(
            pb::CreateServerRequest {
                server: Some(spec),
                rcon_password: String::new(),
            },
            &token,
        ))
        .await
        .unwrap()
        .into_inner()
        .id;
    Run {
        controller,
        agent,
        addr,
        token,
        db_url,
        server_id,
        _dir: dir,
    }
}

async fn start_server(r: &Run) {
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", r.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut servers = pb::server_service_client::ServerServiceClient::new(channel);
    for _ in 0..100 {
        if servers
            .start_server(authed(pb::StartServerRequest { id: r.server_id }, &r.token))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("server did not start");
}

async fn stored(db: &sea_orm::DatabaseConnection, server_id: i64) -> i64 {
    let sql =
        format!("SELECT COUNT(*) FROM logs WHERE server_id = {server_id} AND line LIKE 'flood #%'");
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

async fn stop(mut r: Run) -> (f64, f64) {
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", r.addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut servers = pb::server_service_client::ServerServiceClient::new(channel);
    let _ = servers
        .kill_server(authed(pb::KillServerRequest { id: r.server_id }, &r.token))
        .await;
    let mem = (
        peak_rss_mib(r.controller.id().unwrap_or(0)),
        peak_rss_mib(r.agent.id().unwrap_or(0)),
    );
    r.agent.kill().await.ok();
    r.controller.kill().await.ok();
    mem
}

async fn throughput(pg: Option<String>) -> (f64, i64, f64, f64) {
    const N: i64 = 300_000;
    let r = start(
        pg,
        &["-fakeFloodRate=60000", &format!("-fakeFloodLines={N}")],
    )
    .await;
    // A WebSocket client is attached for the whole run (and drains as fast as it can).
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws?token={}", r.addr, r.token))
            .await
            .unwrap();
    tokio::spawn(async move { while let Some(Ok(_)) = ws.next().await {} });
    let db = sea_orm::Database::connect(r.db_url.clone()).await.unwrap();
    start_server(&r).await;
    let mut first: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut n = 0;
    while Instant::now() < deadline {
        n = stored(&db, r.server_id).await;
        if n > 0 && first.is_none() {
            first = Some(Instant::now());
        }
        if n >= N {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let secs = first.map(|f| f.elapsed().as_secs_f64()).unwrap_or(f64::NAN);
    let (cm, am) = stop(r).await;
    (n as f64 / secs, N - n, cm, am)
}

async fn latency(pg: Option<String>) -> (f64, f64, usize) {
    let r = start(pg, &["-fakeFloodRate=2000", "-fakeFloodLines=20000"]).await;
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws?token={}", r.addr, r.token))
            .await
            .unwrap();
    start_server(&r).await;
    let mut lat = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while lat.len() < 20_000 && Instant::now() < deadline {
        let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await
        else {
            break;
        };
        let tokio_tungstenite::tungstenite::Message::Text(t) = msg else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap_or_default();
        if v["type"] != "log" {
            continue;
        }
        let text = v["data"]["text"].as_str().unwrap_or("");
        if let Some(us) = text
            .split("t=")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse::<u128>().ok())
        {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_micros();
            lat.push((now.saturating_sub(us)) as f64 / 1000.0);
        }
    }
    stop(r).await;
    lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    (pct(0.5), pct(0.99), lat.len())
}

/// A fresh PostgreSQL database on the server at `base`.
async fn create_pg(base: &str) -> String {
    let name = format!("languard_bench_{:08x}", rand::random::<u32>());
    let url = format!("{base}/{name}");
    let admin = sea_orm::Database::connect(format!("{base}/test"))
        .await
        .unwrap();
    let _ = admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name}"))
        .await;
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    url
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("log_pipeline: bench");
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut dbs: Vec<(&str, Option<String>)> = vec![("SQLite", None)];
        if let Ok(base) = std::env::var("LANGUARD_BENCH_PG_URL") {
            dbs.push(("PostgreSQL", Some(base)));
        }
        println!("{:<11} {:>14} {:>6} {:>10} {:>10} {:>16} {:>12}", "database", "lines/s", "lost", "p50 ms", "p99 ms", "controller MiB", "agent MiB");
        for (name, base) in dbs {
            let url = match &base {
                Some(b) => Some(create_pg(b).await),
                None => None,
            };
            let (rate, lost, cm, am) = throughput(url.clone()).await;
            let url2 = match &base {
                Some(b) => Some(create_pg(b).await),
                None => None,
            };
            let (p50, p99, n) = latency(url2).await;
            println!("{name:<11} {rate:>14.0} {lost:>6} {p50:>10.1} {p99:>10.1} {cm:>16.1} {am:>12.1}   ({n} latency samples)");
        }
    });
}
