//! Fleet load generator: simulates N agents (no game processes: synthetic events over real gRPC
//! sessions) against a real release controller, each node with S servers sending 10-second metrics,
//! 5 players per server and steady log traffic, and reports what the controller carries.
//!
//! ```sh
//! cargo build --release -p languard-controller
//! cargo bench -p languard-controller --bench fleet_load -- 100 300 1000
//! ```
//!
//! Arguments are node counts (default `100 300`); `LANGUARD_LOAD_SECONDS` (default 40) is the measured
//! time per run, `LANGUARD_LOAD_SERVERS` (default 10) the servers per node, `LANGUARD_LOAD_LOG_LINES`
//! (default 1) log lines per server per second. Set `LANGUARD_BENCH_PG_URL` to also run on PostgreSQL.
//! Reported: controller CPU (% of one core) and peak RSS, acknowledgement latency of event batches
//! (p50/p99: the write path, agent send → durable → ack), stored rows per second, and failures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use languard_proto::v1 as pb;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::Mutex;

const PASSWORD: &str = "load-admin-password";

fn authed<T>(msg: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(") ").next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 (index 11 and 12 after the comm).
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn ts(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: 0,
    }
}

#[derive(Default)]
struct Stats {
    acked_batches: AtomicU64,
    events: AtomicU64,
    lines: AtomicU64,
    failures: AtomicU64,
    latencies_us: Mutex<Vec<u64>>,
}

/// One simulated agent: a session, heartbeats, and every second a batch of events.
async fn agent(
    url: String,
    token: String,
    servers: Vec<i64>,
    log_lines: u32,
    stats: Arc<Stats>,
    until: Instant,
) {
    let channel = match tonic::transport::Channel::from_shared(url)
        .unwrap()
        .connect()
        .await
    {
        Ok(c) => c,
        Err(_) => {
            stats.failures.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let hello = pb::AgentHello {
        agent_version: "load".into(),
        hostname: "sim".into(),
        os: "linux".into(),
        servers: vec![],
    };
    tx.send(pb::AgentMessage {
        body: Some(pb::agent_message::Body::Hello(hello)),
    })
    .await
    .unwrap();
    let mut client = pb::agent_service_client::AgentServiceClient::new(channel);
    let Ok(resp) = client
        .session(authed(
            tokio_stream::wrappers::ReceiverStream::new(rx),
            &token,
        ))
        .await
    else {
        stats.failures.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let mut inbound = resp.into_inner();
    let acked = match inbound.message().await {
        Ok(Some(pb::ControllerMessage {
            body: Some(pb::controller_message::Body::Accepted(a)),
        })) => a.acked_seq,
        _ => {
            stats.failures.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    let sent_at: Arc<Mutex<std::collections::VecDeque<(u64, Instant)>>> = Arc::default();
    let reader = {
        let (sent_at, stats) = (sent_at.clone(), stats.clone());
        tokio::spawn(async move {
            while let Ok(Some(m)) = inbound.message().await {
                if let Some(pb::controller_message::Body::Ack(a)) = m.body {
                    let mut q = sent_at.lock().await;
                    while q.front().is_some_and(|(s, _)| *s <= a.seq) {
                        if let Some((_, t)) = q.pop_front() {
                            stats
                                .latencies_us
                                .lock()
                                .await
                                .push(t.elapsed().as_micros() as u64);
                            stats.acked_batches.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        })
    };
    let mut seq = acked;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut second: u64 = rand::random_range(0..10);
    while Instant::now() < until {
        tick.tick().await;
        second += 1;
        let now = chrono::Utc::now();
        let mut events = Vec::new();
        let mut push = |server_id: i64, body: pb::agent_event::Body, seq: &mut u64| {
            *seq += 1;
            events.push(pb::AgentEvent {
                seq: *seq,
                time: Some(ts(now)),
                server_id,
                body: Some(body),
            });
        };
        for &s in &servers {
            let entries = (0..log_lines)
                .map(|i| pb::AgentLogEntry {
                    time: Some(ts(now)),
                    level: pb::LogLevel::Info as i32,
                    kind: "other".into(),
                    text: format!("load line {second}.{i} of server {s}"),
                })
                .collect();
            push(
                s,
                pb::agent_event::Body::Logs(pb::LogBatch {
                    entries,
                    resume_token: String::new(),
                }),
                &mut seq,
            );
        }
        if second.is_multiple_of(10) {
            let sample = pb::MetricsSample {
                node: Some(pb::NodeMetrics {
                    cpu_percent: 30.0,
                    memory_used_bytes: 8 << 30,
                    memory_total_bytes: 32 << 30,
                    ..Default::default()
                }),
                servers: servers
                    .iter()
                    .map(|s| pb::ServerMetrics {
                        server_id: *s,
                        cpu_percent: 80.0,
                        rss_bytes: 3 << 30,
                        virtual_bytes: 6 << 30,
                        threads: 60,
                        uptime_seconds: second,
                    })
                    .collect(),
            };
            push(0, pb::agent_event::Body::Metrics(sample), &mut seq);
            for &s in &servers {
                let players = (0..5)
                    .map(|i| pb::Player {
                        slot: i,
                        name: format!("p{i}"),
                        guid: format!("{:032x}", (s as u128) << 8 | i as u128),
                        verified: true,
                        address: "10.0.0.1:2304".into(),
                        ping: 40 + i,
                        ..Default::default()
                    })
                    .collect();
                push(
                    s,
                    pb::agent_event::Body::Players(pb::PlayerSnapshot { players }),
                    &mut seq,
                );
            }
        }
        stats
            .events
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        stats.lines.fetch_add(
            servers.len() as u64 * u64::from(log_lines),
            Ordering::Relaxed,
        );
        sent_at.lock().await.push_back((seq, Instant::now()));
        let batch = pb::AgentMessage {
            body: Some(pb::agent_message::Body::Events(pb::EventBatch { events })),
        };
        if tx.send(batch).await.is_err() {
            stats.failures.fetch_add(1, Ordering::Relaxed);
            break;
        }
        if second % 10 == 5 {
            let hb = pb::Heartbeat {
                time: Some(ts(now)),
                spool_bytes: 0,
            };
            let _ = tx
                .send(pb::AgentMessage {
                    body: Some(pb::agent_message::Body::Heartbeat(hb)),
                })
                .await;
        }
    }
    drop(tx);
    reader.abort();
}

async fn run(
    nodes: usize,
    servers_per_node: usize,
    log_lines: u32,
    seconds: u64,
    db_url: Option<String>,
) -> String {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_languard-controller"));
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db_url = db_url
        .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", data.join("languard.db").display()));
    let mut controller = Command::new(&bin)
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .args(["--database-url", &db_url])
        .env("LANGUARD_ADMIN_PASSWORD", PASSWORD)
        .env("LANGUARD_LOGIN_ATTEMPTS_PER_MINUTE", "100000")
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut out = BufReader::new(controller.stdout.take().unwrap()).lines();
    let addr = loop {
        let l = out.next_line().await.unwrap().expect("controller exited");
        if let Some(a) = l.strip_prefix("languard-controller listening on ") {
            break a.trim().to_owned();
        }
    };
    let url = format!("http://{addr}");
    let channel = tonic::transport::Channel::from_shared(url.clone())
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
    let mut node_api = pb::node_service_client::NodeServiceClient::new(channel.clone());
    let mut server_api = pb::server_service_client::ServerServiceClient::new(channel.clone());
    let mut fleet = Vec::new();
    for n in 0..nodes {
        let node = node_api
            .create_node(authed(
                pb::CreateNodeRequest {
                    name: format!("node-{n}"),
                },
                &token,
            ))
            .await
            .unwrap()
            .into_inner();
        let node_id = node.node.unwrap().id;
        let mut ids = Vec::new();
        for s in 0..servers_per_node {
            let spec = pb::Server {
                node_id,
                name: format!("s{s}"),
                executable_path: "/srv/arma3/arma3server_x64".into(),
                arma3: Some(pb::Arma3Settings {
                    game_port: 2302 + 10 * s as i32,
                    ..Default::default()
                }),
                ..Default::default()
            };
            ids.push(
                server_api
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
                    .id,
            );
        }
        fleet.push((node.token, ids));
    }
    let stats = Arc::new(Stats::default());
    let pid = controller.id().unwrap();
    let warmup = Duration::from_secs(10);
    let until = Instant::now() + warmup + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for (tok, ids) in fleet {
        tasks.push(tokio::spawn(agent(
            url.clone(),
            tok,
            ids,
            log_lines,
            stats.clone(),
            until,
        )));
    }
    tokio::time::sleep(warmup).await;
    stats.latencies_us.lock().await.clear();
    let (cpu0, t0, ev0, l0) = (
        cpu_ticks(pid),
        Instant::now(),
        stats.events.load(Ordering::Relaxed),
        stats.lines.load(Ordering::Relaxed),
    );
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = (cpu_ticks(pid) - cpu0) as f64 / 100.0 / elapsed * 100.0;
    let events = (stats.events.load(Ordering::Relaxed) - ev0) as f64 / elapsed;
    let lines = (stats.lines.load(Ordering::Relaxed) - l0) as f64 / elapsed;
    let mut lat = stats.latencies_us.lock().await.clone();
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p) as usize)
            .map(|v| *v as f64 / 1000.0)
            .unwrap_or(f64::NAN)
    };
    let rss = peak_rss_mib(pid);
    controller.kill().await.ok();
    format!(
        "{nodes:>6} {:>8} {events:>10.0} {lines:>9.0} {cpu:>8.0} {rss:>9.1} {:>9.1} {:>9.1} {:>8}",
        nodes * servers_per_node,
        pct(0.5),
        pct(0.99),
        stats.failures.load(Ordering::Relaxed)
    )
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if std::env::args().any(|a| a == "--list") {
        println!("fleet_load: bench");
        return;
    }
    let counts = if args.is_empty() {
        vec![100, 300]
    } else {
        args
    };
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (seconds, servers, lines) = (
        env("LANGUARD_LOAD_SECONDS", 40),
        env("LANGUARD_LOAD_SERVERS", 10) as usize,
        env("LANGUARD_LOAD_LOG_LINES", 1) as u32,
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut dbs: Vec<(&str, Option<String>)> = vec![("SQLite", None)];
        if let Ok(base) = std::env::var("LANGUARD_BENCH_PG_URL") {
            dbs.push(("PostgreSQL", Some(base)));
        }
        for (name, base) in dbs {
            println!("{name}: {servers} servers/node, {lines} log line/s per server, 5 players/server, metrics every 10 s, {seconds} s measured");
            println!("{:>6} {:>8} {:>10} {:>9} {:>8} {:>9} {:>9} {:>9} {:>8}", "nodes", "servers", "events/s", "lines/s", "cpu %", "rss MiB", "p50 ms", "p99 ms", "failed");
            for &n in &counts {
                let url = match &base {
                    Some(b) => {
                        let name = format!("languard_load_{:08x}", rand::random::<u32>());
                        let admin = sea_orm::Database::connect(format!("{b}/test")).await.unwrap();
                        use sea_orm::ConnectionTrait;
                        admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
                        Some(format!("{b}/{name}"))
                    }
                    None => None,
                };
                println!("{}", run(n, servers, lines, seconds, url).await);
            }
        }
    });
}
