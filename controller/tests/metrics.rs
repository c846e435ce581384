//! Metrics end to end: samples stored by the writer (owned servers only), `ListMetrics`
//! downsampled by the database (counts and avg/max values for synthetic samples with known
//! timestamps, argument checks), live `metrics` messages on the WebSocket, the Prometheus text at
//! `/metrics`, the retention jobs for metrics and events (fixed and moved clocks, real database),
//! and a real agent sampling a real (test double) server process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use common::*;
use futures::StreamExt;
use languard_proto::v1 as pb;
use pb::metric_service_client::MetricServiceClient;
use tokio_tungstenite::tungstenite::Message;

fn server_sample(server_id: i64, cpu: f64, rss: u64) -> pb::ServerMetrics {
    pb::ServerMetrics {
        server_id,
        cpu_percent: cpu,
        rss_bytes: rss,
        virtual_bytes: rss * 4,
        threads: 12,
        uptime_seconds: 3600,
    }
}

fn node_sample(cpu: f64, used: u64) -> pb::NodeMetrics {
    pb::NodeMetrics {
        cpu_percent: cpu,
        memory_used_bytes: used,
        memory_total_bytes: 64 << 30,
        load1: 0.5,
        load5: 0.25,
        load15: 0.125,
        disks: vec![pb::DiskUsage {
            mount_point: "/srv".into(),
            total_bytes: 1 << 40,
            available_bytes: 1 << 39,
        }],
        net_rx_bytes_per_second: 1000,
        net_tx_bytes_per_second: 2000,
        spool_bytes: 77,
    }
}

fn metrics_event(
    agent: &mut FakeAgent,
    at: DateTime<Utc>,
    node: Option<pb::NodeMetrics>,
    servers: Vec<pb::ServerMetrics>,
) -> pb::AgentEvent {
    agent.seq += 1;
    pb::AgentEvent {
        seq: agent.seq,
        time: Some(ts(at)),
        server_id: 0,
        body: Some(pb::agent_event::Body::Metrics(pb::MetricsSample {
            node,
            servers,
        })),
    }
}

async fn list(
    c: &Controller,
    token: &str,
    req: pb::ListMetricsRequest,
) -> Result<pb::ListMetricsResponse, tonic::Status> {
    MetricServiceClient::new(c.channel().await)
        .list_metrics(authed(req, token))
        .await
        .map(|r| r.into_inner())
}

fn range(start: DateTime<Utc>, end: DateTime<Utc>) -> pb::ListMetricsRequest {
    pb::ListMetricsRequest {
        start_time: Some(ts(start)),
        end_time: Some(ts(end)),
        ..Default::default()
    }
}

#[tokio::test]
async fn samples_are_stored_for_owned_servers_only() {
    let c = Controller::start().await;
    let mut rig = Rig::new(&c, "host-a").await;
    let viewer = c.user_token("vera", pb::Role::Viewer).await;
    // Another node's server: host-a's agent may not write metrics for it.
    let (other_node, _) = c.create_node("host-b").await;
    let other_dir = tempfile::tempdir().unwrap();
    let foreign = create_server(&c, &rig.admin, other_node, "theirs", other_dir.path()).await;
    let t = Utc::now() - chrono::Duration::minutes(5);
    let ev = metrics_event(
        &mut rig.agent,
        t,
        Some(node_sample(37.5, 8 << 30)),
        vec![
            server_sample(rig.server_id, 150.0, 3 << 30),
            server_sample(foreign, 99.0, 1 << 30),
            server_sample(987_654, 99.0, 1 << 30),
        ],
    );
    let seq = ev.seq;
    assert_eq!(rig.agent.send_raw(vec![ev]).await, seq);

    let window = range(
        t - chrono::Duration::minutes(1),
        t + chrono::Duration::minutes(1),
    );
    let mine = list(
        &c,
        &viewer,
        pb::ListMetricsRequest {
            server_id: rig.server_id,
            ..window
        },
    )
    .await
    .expect("list own server");
    assert_eq!(mine.step_seconds, 10, "2 minutes / 500 rounds up to 10 s");
    assert_eq!(mine.points.len(), 1, "{mine:?}");
    let p = &mine.points[0];
    assert_eq!(p.samples, 1);
    assert_eq!(p.cpu_percent_avg, 150.0);
    assert_eq!(p.cpu_percent_max, 150.0);
    assert_eq!(p.memory_bytes_avg, (3u64 << 30) as f64);
    let theirs = list(
        &c,
        &viewer,
        pb::ListMetricsRequest {
            server_id: foreign,
            ..window
        },
    )
    .await
    .expect("list foreign server");
    assert!(theirs.points.is_empty(), "{theirs:?}");
    let node = list(
        &c,
        &viewer,
        pb::ListMetricsRequest {
            node_id: rig.node_id,
            ..window
        },
    )
    .await
    .expect("list node");
    assert_eq!(node.points.len(), 1);
    assert_eq!(node.points[0].cpu_percent_avg, 37.5);
    assert_eq!(node.points[0].memory_bytes_max, (8u64 << 30) as f64);
    assert!(
        list(
            &c,
            &viewer,
            pb::ListMetricsRequest {
                node_id: other_node,
                ..window
            }
        )
        .await
        .unwrap()
        .points
        .is_empty()
    );

    // Exactly two rows: the owned server's and the node's, with the details in `extra`.
    use languard_controller::db::entities::metrics;
    use sea_orm::{EntityTrait, QueryOrder};
    let db = sea_orm::Database::connect(&c.db_url).await.unwrap();
    let rows = metrics::Entity::find()
        .order_by_asc(metrics::Column::Id)
        .all(&db)
        .await
        .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let node_row = rows
        .iter()
        .find(|r| r.server_id.is_none())
        .expect("node row");
    assert_eq!(node_row.node_id, rig.node_id);
    assert_eq!(node_row.mem_rss_bytes, 8 << 30);
    let extra: serde_json::Value = serde_json::from_str(&node_row.extra).unwrap();
    assert_eq!(extra["memory_total_bytes"], 64u64 << 30);
    assert_eq!(extra["load5"], 0.25);
    assert_eq!(extra["disks"][0]["mount_point"], "/srv");
    assert_eq!(extra["net_tx_bytes_per_second"], 2000);
    assert_eq!(extra["spool_bytes"], 77);
    let server_row = rows
        .iter()
        .find(|r| r.server_id == Some(rig.server_id))
        .expect("server row");
    assert_eq!(server_row.threads, 12);
    assert_eq!(server_row.mem_virtual_bytes, 12 << 30);
    let extra: serde_json::Value = serde_json::from_str(&server_row.extra).unwrap();
    assert_eq!(extra["uptime_seconds"], 3600);
    db.close().await.ok();

    // A resend of the same sequence number is not stored twice.
    let again = pb::AgentEvent {
        seq,
        time: Some(ts(t)),
        server_id: 0,
        body: Some(pb::agent_event::Body::Metrics(pb::MetricsSample {
            node: Some(node_sample(1.0, 1)),
            servers: vec![server_sample(rig.server_id, 1.0, 1)],
        })),
    };
    rig.agent.send_raw(vec![again]).await;
    let mine = list(
        &c,
        &viewer,
        pb::ListMetricsRequest {
            server_id: rig.server_id,
            ..window
        },
    )
    .await
    .unwrap();
    assert_eq!(mine.points[0].samples, 1);
}

/// A week of 10-second samples (60,480 per series) comes back as 2,016 five-minute points, each
/// with the exact average and maximum of its 30 samples.
#[tokio::test]
async fn a_week_is_downsampled_in_the_database() {
    let c = Controller::start().await;
    let mut rig = Rig::new(&c, "host-w").await;
    let viewer = c.user_token("vera", pb::Role::Viewer).await;
    // Aligned to 5 minutes, ending a few minutes ago.
    let end_secs = (Utc::now().timestamp() / 300) * 300 - 600;
    let end = Utc.timestamp_opt(end_secs, 0).single().unwrap();
    let start = end - chrono::Duration::days(7);
    let n: i64 = 7 * 86400 / 10;
    assert_eq!(n, 60_480);
    // Sample i: bucket k = i / 30, position j = i % 30.
    let cpu = |k: i64, j: i64| (k % 50) as f64 + j as f64;
    let mem = |k: i64, j: i64| 1_000_000_000 + k as u64 * 1000 + j as u64 * 10;
    let node_cpu = |k: i64, j: i64| ((k % 7) * 10 + j % 3) as f64;
    let t_ingest = Instant::now();
    let mut i = 0i64;
    while i < n {
        let mut batch = Vec::with_capacity(2000);
        while i < n && batch.len() < 2000 {
            let (k, j) = (i / 30, i % 30);
            let at = start + chrono::Duration::seconds(i * 10);
            // Values that change within a step, so averages and maxima differ.
            let mut node = node_sample(node_cpu(k, j), 4 << 30);
            node.load1 = j as f64 / 10.0;
            node.net_rx_bytes_per_second = 1000 + 2 * j as u64;
            let mut server = server_sample(rig.server_id, cpu(k, j), mem(k, j));
            server.uptime_seconds = 3600 + j as u64;
            server.threads = 10 + (j % 3) as u32;
            let ev = metrics_event(&mut rig.agent, at, Some(node), vec![server]);
            batch.push(ev);
            i += 1;
        }
        let last = batch.last().unwrap().seq;
        assert_eq!(rig.agent.send_raw(batch).await, last);
    }
    let ingest = t_ingest.elapsed();

    let week_at_300 = pb::ListMetricsRequest {
        server_id: rig.server_id,
        step_seconds: 300,
        ..range(start, end)
    };
    let t_cold = Instant::now();
    list(&c, &viewer, week_at_300).await.expect("cold");
    let cold = t_cold.elapsed();
    let t_query = Instant::now();
    let r = list(
        &c,
        &viewer,
        pb::ListMetricsRequest {
            server_id: rig.server_id,
            step_seconds: 300,
            ..range(start, end)
        },
    )
    .await
    .expect("list a week at 5 minutes");
    let query = t_query.elapsed();
    eprintln!(
        "ingested {n} samples ({} rows) in {ingest:?} ({:.0} rows/s); ListMetrics of a week at 300 s: {} points in {query:?} (first call {cold:?})",
        n * 2,
        (n * 2) as f64 / ingest.as_secs_f64(),
        r.points.len()
    );
    assert_eq!(r.step_seconds, 300);
    assert_eq!(r.points.len(), 2016);
    for (k, p) in r.points.iter().enumerate() {
        let k = k as i64;
        let t = p.time.as_ref().unwrap();
        assert_eq!(t.seconds, start.timestamp() + k * 300, "point {k} time");
        assert_eq!(p.samples, 30, "point {k}");
        assert!(
            (p.cpu_percent_avg - ((k % 50) as f64 + 14.5)).abs() < 1e-9,
            "point {k}: {p:?}"
        );
        assert_eq!(p.cpu_percent_max, (k % 50) as f64 + 29.0, "point {k}");
        let mem_avg = 1_000_000_000.0 + k as f64 * 1000.0 + 145.0;
        assert!(
            (p.memory_bytes_avg - mem_avg).abs() < 1e-6,
            "point {k}: {p:?}"
        );
        assert_eq!(p.memory_bytes_max, mem(k, 29) as f64, "point {k}");
        assert!(
            (p.virtual_memory_bytes_avg - 4.0 * mem_avg).abs() < 1e-3,
            "point {k}: {p:?}"
        );
        assert_eq!(p.virtual_memory_bytes_max, 4.0 * mem(k, 29) as f64);
        assert_eq!(p.threads_max, 12);
        assert_eq!(p.uptime_seconds_max, 3629.0);
        assert_eq!((p.load1_avg, p.net_rx_bytes_per_second_avg), (0.0, 0.0));
    }

    // The node's own series, same buckets.
    let r = list(
        &c,
        &viewer,
        pb::ListMetricsRequest {
            node_id: rig.node_id,
            step_seconds: 300,
            ..range(start, end)
        },
    )
    .await
    .unwrap();
    assert_eq!(r.points.len(), 2016);
    for (k, p) in r.points.iter().enumerate() {
        let k = k as i64;
        assert_eq!(p.samples, 30);
        // j % 3 over 30 samples: ten each of 0, 1, 2 → average 1, maximum 2.
        assert!((p.cpu_percent_avg - ((k % 7) * 10 + 1) as f64).abs() < 1e-9);
        assert_eq!(p.cpu_percent_max, ((k % 7) * 10 + 2) as f64);
        assert_eq!(p.memory_bytes_avg, (4u64 << 30) as f64);
        // j / 10 for j in 0..30: average 1.45, maximum 2.9; 1000 + 2j: average 1029.
        assert!((p.load1_avg - 1.45).abs() < 1e-9, "{p:?}");
        assert!((p.load1_max - 2.9).abs() < 1e-9, "{p:?}");
        assert!(
            (p.net_rx_bytes_per_second_avg - 1029.0).abs() < 1e-9,
            "{p:?}"
        );
        assert_eq!(p.net_tx_bytes_per_second_avg, 2000.0);
        assert_eq!((p.threads_max, p.virtual_memory_bytes_max), (0, 0.0));
    }

    // The default step for a week: 604800 / 500 rounded up to 1210 s, about 500 points, every
    // sample counted once.
    let r = list(
        &c,
        &viewer,
        pb::ListMetricsRequest {
            server_id: rig.server_id,
            ..range(start, end)
        },
    )
    .await
    .unwrap();
    assert_eq!(r.step_seconds, 1210);
    assert!((500..=501).contains(&r.points.len()), "{}", r.points.len());
    assert_eq!(
        r.points.iter().map(|p| i64::from(p.samples)).sum::<i64>(),
        n
    );
    let times: Vec<i64> = r
        .points
        .iter()
        .map(|p| p.time.as_ref().unwrap().seconds)
        .collect();
    assert!(times.windows(2).all(|w| w[1] - w[0] == 1210), "time order");
    assert!(times.iter().all(|t| t % 1210 == 0), "aligned to the step");

    // A sub-range holds only its own samples: one hour at 60 s is 60 points of 6.
    let h0 = start + chrono::Duration::days(3);
    let r = list(
        &c,
        &viewer,
        pb::ListMetricsRequest {
            server_id: rig.server_id,
            step_seconds: 60,
            ..range(h0, h0 + chrono::Duration::hours(1))
        },
    )
    .await
    .unwrap();
    assert_eq!(r.points.len(), 60);
    assert!(r.points.iter().all(|p| p.samples == 6));

    // A week at 10 s would be 60,480 points: refused, naming the field.
    let e = list(
        &c,
        &viewer,
        pb::ListMetricsRequest {
            server_id: rig.server_id,
            step_seconds: 10,
            ..range(start, end)
        },
    )
    .await
    .expect_err("too many points");
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().contains("step_seconds"), "{}", e.message());
}

#[tokio::test]
async fn list_metrics_validates_its_arguments() {
    let c = Controller::start().await;
    let rig = Rig::new(&c, "host-v").await;
    let viewer = c.user_token("vera", pb::Role::Viewer).await;
    let now = Utc::now();
    let cases: Vec<(pb::ListMetricsRequest, tonic::Code, &str)> = vec![
        (
            pb::ListMetricsRequest::default(),
            tonic::Code::InvalidArgument,
            "server_id",
        ),
        (
            pb::ListMetricsRequest {
                server_id: rig.server_id,
                node_id: rig.node_id,
                ..Default::default()
            },
            tonic::Code::InvalidArgument,
            "node_id",
        ),
        (
            pb::ListMetricsRequest {
                server_id: rig.server_id,
                step_seconds: 5,
                ..Default::default()
            },
            tonic::Code::InvalidArgument,
            "step_seconds",
        ),
        (
            pb::ListMetricsRequest {
                server_id: rig.server_id,
                ..range(now, now - chrono::Duration::hours(1))
            },
            tonic::Code::InvalidArgument,
            "start_time",
        ),
        (
            pb::ListMetricsRequest {
                server_id: 424_242,
                ..Default::default()
            },
            tonic::Code::NotFound,
            "424242",
        ),
        (
            pb::ListMetricsRequest {
                node_id: 434_343,
                ..Default::default()
            },
            tonic::Code::NotFound,
            "434343",
        ),
    ];
    for (req, code, needle) in cases {
        let e = list(&c, &viewer, req).await.expect_err(&format!("{req:?}"));
        assert_eq!(e.code(), code, "{req:?}: {e:?}");
        assert!(e.message().contains(needle), "{req:?}: {}", e.message());
    }
    // Defaults: the last hour at 10 s; no samples, no points.
    let r = list(
        &c,
        &viewer,
        pb::ListMetricsRequest {
            server_id: rig.server_id,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(r.step_seconds, 10);
    assert!(r.points.is_empty());
    // No token: refused.
    let e = MetricServiceClient::new(c.channel().await)
        .list_metrics(pb::ListMetricsRequest {
            server_id: rig.server_id,
            ..Default::default()
        })
        .await
        .expect_err("no token");
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_json(ws: &mut Ws) -> Option<serde_json::Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .ok()??
        {
            Ok(Message::Text(t)) => return Some(serde_json::from_str(t.as_str()).unwrap()),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// Live `metrics` messages: one per server and one for the node (server_id 0), carrying the
/// newest sample of the batch only.
#[tokio::test]
async fn metrics_messages_arrive_on_the_websocket() {
    let c = Controller::start().await;
    let mut rig = Rig::new(&c, "host-ws").await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!(
        "ws://{}/ws?token={}",
        c.addr,
        c.admin_token().await
    ))
    .await
    .expect("ws connect");
    assert_eq!(next_json(&mut ws).await.unwrap()["type"], "hello");
    let t = Utc::now();
    // Three samples in one batch: only the newest of each series is published.
    let batch: Vec<pb::AgentEvent> = (0..3)
        .map(|i| {
            metrics_event(
                &mut rig.agent,
                t - chrono::Duration::seconds(20 - i * 10),
                Some(node_sample(10.0 + i as f64, 2 << 30)),
                vec![server_sample(rig.server_id, 100.0 + i as f64, 1 << 30)],
            )
        })
        .collect();
    rig.agent.send_raw(batch).await;
    let mut got: HashMap<i64, Vec<serde_json::Value>> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && (got.len() < 2) {
        let Some(m) = next_json(&mut ws).await else {
            break;
        };
        if m["type"] == "metrics" {
            got.entry(m["server_id"].as_i64().unwrap())
                .or_default()
                .push(m);
        }
    }
    // Anything else published for this batch has arrived by now.
    while let Ok(Some(m)) =
        tokio::time::timeout(Duration::from_millis(500), next_json(&mut ws)).await
    {
        if m["type"] == "metrics" {
            got.entry(m["server_id"].as_i64().unwrap())
                .or_default()
                .push(m);
        }
    }
    let server = got.get(&rig.server_id).expect("server metrics message");
    assert_eq!(server.len(), 1, "{server:?}");
    let d = &server[0]["data"];
    assert_eq!(d["cpu_percent"], 102.0);
    assert_eq!(d["rss_bytes"], 1u64 << 30);
    assert_eq!(d["virtual_bytes"], 4u64 << 30);
    assert_eq!(d["threads"], 12);
    assert_eq!(d["uptime_seconds"], 3600);
    assert_eq!(server[0]["node_id"], rig.node_id);
    let node = got.get(&0).expect("node metrics message");
    assert_eq!(node.len(), 1, "{node:?}");
    assert_eq!(node[0]["data"]["cpu_percent"], 12.0);
    assert_eq!(node[0]["data"]["rss_bytes"], 2u64 << 30);
    assert_eq!(node[0]["data"]["memory_total_bytes"], 64u64 << 30);
    assert_eq!(node[0]["node_id"], rig.node_id);
}

/// A strict parser of the Prometheus text format (0.0.4) for what `/metrics` may contain:
/// `# HELP` and `# TYPE` once per family and before its samples, valid metric and label names,
/// quoted and escaped label values, numeric values, no duplicate series, families not interleaved.
/// Returns `{"name{labels}" => value}`.
fn parse_prometheus(text: &str) -> BTreeMap<String, f64> {
    fn valid_name(s: &str) -> bool {
        let mut chars = s.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }
    assert!(text.ends_with('\n'), "must end with a newline");
    let mut types: HashMap<String, String> = HashMap::new();
    let mut helps: HashSet<String> = HashSet::new();
    let mut done: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    let mut out = BTreeMap::new();
    for (no, line) in text.lines().enumerate() {
        let ctx = format!("line {}: {line:?}", no + 1);
        assert!(!line.is_empty(), "{ctx}: empty line");
        if let Some(rest) = line.strip_prefix("# ") {
            let (kw, rest) = rest.split_once(' ').expect(&ctx);
            let (name, arg) = rest.split_once(' ').expect(&ctx);
            assert!(valid_name(name), "{ctx}: metric name");
            match kw {
                "HELP" => {
                    assert!(helps.insert(name.to_owned()), "{ctx}: second HELP");
                    assert!(!arg.is_empty(), "{ctx}: empty HELP");
                }
                "TYPE" => {
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&arg),
                        "{ctx}: type"
                    );
                    assert!(
                        types.insert(name.to_owned(), arg.to_owned()).is_none(),
                        "{ctx}: second TYPE"
                    );
                }
                _ => panic!("{ctx}: unknown comment"),
            }
            if current.as_deref() != Some(name) {
                if let Some(prev) = current.take() {
                    done.insert(prev);
                }
                assert!(!done.contains(name), "{ctx}: family interleaved");
                current = Some(name.to_owned());
            }
            continue;
        }
        assert!(!line.starts_with('#'), "{ctx}: comment format");
        let (series, value) = line.rsplit_once(' ').expect(&ctx);
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().expect(&ctx),
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, Some(rest.strip_suffix('}').expect(&ctx))),
            None => (series, None),
        };
        assert!(valid_name(name), "{ctx}: metric name");
        let kind = types
            .get(name)
            .unwrap_or_else(|| panic!("{ctx}: sample before its TYPE"));
        if kind == "counter" {
            assert!(value >= 0.0, "{ctx}: negative counter");
        }
        assert_eq!(current.as_deref(), Some(name), "{ctx}: outside its family");
        let mut canonical = name.to_owned();
        if let Some(labels) = labels {
            // name="value" pairs separated by commas; values with \\, \" and \n escapes.
            let mut rest = labels;
            let mut pairs = Vec::new();
            while !rest.is_empty() {
                let (lname, after) = rest.split_once("=\"").expect(&ctx);
                assert!(
                    valid_name(lname) && !lname.starts_with("__"),
                    "{ctx}: label"
                );
                let mut val = String::new();
                let mut chars = after.char_indices();
                let end = loop {
                    match chars
                        .next()
                        .unwrap_or_else(|| panic!("{ctx}: unterminated value"))
                    {
                        (_, '\\') => match chars.next().expect(&ctx).1 {
                            '\\' => val.push('\\'),
                            '"' => val.push('"'),
                            'n' => val.push('\n'),
                            c => panic!("{ctx}: bad escape \\{c}"),
                        },
                        (i, '"') => break i,
                        (_, '\n') => panic!("{ctx}: raw newline"),
                        (_, c) => val.push(c),
                    }
                };
                pairs.push(format!("{lname}={val:?}"));
                rest = &after[end + 1..];
                if let Some(r) = rest.strip_prefix(',') {
                    rest = r;
                } else {
                    assert!(rest.is_empty(), "{ctx}: after label");
                }
            }
            canonical = format!("{name}{{{}}}", pairs.join(","));
        }
        assert!(
            out.insert(canonical, value).is_none(),
            "{ctx}: duplicate series"
        );
    }
    for name in types.keys() {
        assert!(helps.contains(name), "{name}: TYPE without HELP");
    }
    out
}

async fn scrape(c: &Controller) -> BTreeMap<String, f64> {
    let (status, content_type, body) = http_get(c, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        content_type.starts_with("text/plain") && content_type.contains("version=0.0.4"),
        "{content_type}"
    );
    parse_prometheus(&body)
}

#[test]
fn the_test_parser_is_strict() {
    let ok = "# HELP a_total A.\n# TYPE a_total counter\na_total 1\n# HELP b B.\n# TYPE b gauge\nb{x=\"q\\\"\\\\\",y=\"2\"} 3.5\n";
    let m = parse_prometheus(ok);
    assert_eq!(m["a_total"], 1.0);
    assert_eq!(m["b{x=\"q\\\"\\\\\",y=\"2\"}"], 3.5);
    for bad in [
        "a 1\n",                                                           // no TYPE
        "# TYPE a gauge\na 1\n",                                           // no HELP
        "# HELP a A.\n# TYPE a gauge\na one\n",                            // value
        "# HELP a A.\n# TYPE a gauge\na{x=1} 1\n",                         // unquoted label
        "# HELP a A.\n# TYPE a gauge\na 1\na 2\n",                         // duplicate
        "# HELP a A.\n# TYPE a gauge\na 1",                                // no final newline
        "# HELP a A.\n# TYPE a counter\na -1\n",                           // negative counter
        "# HELP 1a A.\n# TYPE 1a gauge\n1a 1\n",                           // name
        "# HELP a A.\n# TYPE a gauge\n# HELP b B.\n# TYPE b gauge\na 1\n", // outside family
    ] {
        assert!(
            std::panic::catch_unwind(|| parse_prometheus(bad)).is_err(),
            "accepted {bad:?}"
        );
    }
}

/// `/metrics` needs no token, parses as Prometheus text, and follows nodes online, servers by
/// status, players online, spool bytes and the ingest counters.
#[tokio::test]
async fn prometheus_endpoint_reflects_the_fleet() {
    // A node silent for 4 s goes offline (the scripted agent only speaks when the test says so).
    let c = Controller::start_with(&[
        ("LANGUARD_HEARTBEAT_INTERVAL_SECONDS", "1"),
        ("LANGUARD_NODE_OFFLINE_AFTER_SECONDS", "4"),
    ])
    .await;
    let m = scrape(&c).await;
    assert_eq!(m["languard_nodes_online"], 0.0);
    assert_eq!(m["languard_database_up"], 1.0);
    assert_eq!(m["languard_servers{status=\"running\"}"], 0.0);
    assert_eq!(m["languard_players_online"], 0.0);
    assert_eq!(m["languard_ingest_metrics_rows_total"], 0.0);
    assert!(m.contains_key("languard_hub_dropped_messages_total"));
    assert!(m.contains_key("languard_writer_queue_depth"));

    let mut rig = Rig::new(&c, "host-p").await;
    let second = create_server(&c, &rig.admin, rig.node_id, "second", rig.dir.path()).await;
    // Running, with two players on; the second server stays stopped.
    rig.agent
        .send(vec![
            (
                rig.server_id,
                pb::agent_event::Body::Status(pb::StatusChanged {
                    status: pb::ServerStatus::Running as i32,
                    previous: pb::ServerStatus::Starting as i32,
                    pid: 4242,
                    reason: "test".into(),
                    ..Default::default()
                }),
            ),
            (
                rig.server_id,
                pb::agent_event::Body::Players(pb::PlayerSnapshot {
                    players: ["Ann", "Bob"]
                        .iter()
                        .enumerate()
                        .map(|(i, n)| pb::Player {
                            slot: i as i32,
                            name: (*n).into(),
                            guid: format!("{:032x}", i + 1),
                            ..Default::default()
                        })
                        .collect(),
                }),
            ),
        ])
        .await;
    let ev = metrics_event(
        &mut rig.agent,
        Utc::now(),
        Some(node_sample(5.0, 1 << 30)),
        vec![server_sample(rig.server_id, 50.0, 1 << 30)],
    );
    rig.agent.send_raw(vec![ev]).await;
    rig.agent.heartbeat(123_456).await;
    let m = eventually(
        Duration::from_secs(10),
        "scrape shows the fleet",
        || async {
            let m = scrape(&c).await;
            (m["languard_players_online"] == 2.0
                && m.get(&format!(
                    "languard_agent_spool_bytes{{node_id={:?}}}",
                    rig.node_id.to_string()
                )) == Some(&123_456.0))
            .then_some(m)
        },
    )
    .await;
    assert_eq!(m["languard_nodes_online"], 1.0);
    assert_eq!(m["languard_nodes"], 1.0);
    assert_eq!(m["languard_servers{status=\"running\"}"], 1.0);
    assert_eq!(m["languard_servers{status=\"stopped\"}"], 1.0);
    assert_eq!(m["languard_servers{status=\"crashed\"}"], 0.0);
    assert_eq!(m["languard_ingest_metrics_rows_total"], 2.0);
    assert!(m["languard_ingest_events_total"] >= 3.0);
    assert!(m["languard_writer_transactions_total"] >= 2.0);
    assert_eq!(m["languard_writer_failed_transactions_total"], 0.0);
    let _ = second;

    // The agent falls silent: the node goes offline and its spool series is gone.
    drop(rig);
    eventually(
        Duration::from_secs(10),
        "node offline in /metrics",
        || async {
            let m = scrape(&c).await;
            (m["languard_nodes_online"] == 0.0
                && !m
                    .keys()
                    .any(|k| k.starts_with("languard_agent_spool_bytes")))
            .then_some(())
        },
    )
    .await;
}

// ---- retention ----

async fn test_db() -> (tempfile::TempDir, sea_orm::DatabaseConnection) {
    let tmp = tempfile::tempdir().unwrap();
    let tdb = TestDb::new(tmp.path()).await;
    let db = languard_controller::db::connect(&tdb.url)
        .await
        .expect("db");
    (tmp, db)
}

async fn insert_metric(db: &sea_orm::DatabaseConnection, label: i32, at: DateTime<Utc>) {
    use languard_controller::db::entities::metrics;
    use sea_orm::{ActiveModelTrait, Set};
    metrics::ActiveModel {
        server_id: Set(Some(1)),
        node_id: Set(1),
        ts: Set(at),
        cpu_percent: Set(1.0),
        mem_rss_bytes: Set(1),
        mem_virtual_bytes: Set(1),
        // The label, to see which rows are left.
        threads: Set(label),
        extra: Set("{}".into()),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
}

/// Metrics older than a day go, exactly, in batches; the run is recorded.
#[tokio::test]
async fn metrics_retention_deletes_exactly_the_old_samples() {
    use languard_controller::db::entities::{metrics, server_events};
    use languard_controller::jobs::retention::{RetentionOptions, Target, run_once_for};
    use sea_orm::{EntityTrait, QueryOrder};

    let (_tmp, db) = test_db().await;
    let now = Utc
        .with_ymd_and_hms(2026, 12, 10, 6, 0, 0)
        .single()
        .unwrap();
    let day = chrono::Duration::days(1);
    let ms = chrono::Duration::milliseconds(1);
    // Labels: < 100 must go, >= 100 must stay.
    let ages = [
        (1, now - day * 3),
        (2, now - day - ms),
        (3, now - day - chrono::Duration::seconds(10)),
        (100, now - day),
        (101, now - day + ms),
        (102, now - chrono::Duration::minutes(1)),
        (103, now + ms),
    ];
    for (label, at) in ages {
        insert_metric(&db, label, at).await;
    }
    for i in 0..20 {
        insert_metric(
            &db,
            10 + i,
            now - day * 2 - chrono::Duration::seconds(i64::from(i)),
        )
        .await;
    }
    let opts = RetentionOptions {
        keep: day,
        batch_rows: 7,
        pause: Duration::ZERO,
    };
    let r = run_once_for(&db, None, now, Target::Metrics, &opts)
        .await
        .expect("run");
    assert_eq!(r.rows_removed, 23);
    assert_eq!(r.statements, 4, "7 + 7 + 7 + 2");
    assert_eq!(r.cutoff, now - day);
    let left: Vec<i32> = metrics::Entity::find()
        .order_by_asc(metrics::Column::Id)
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.threads)
        .collect();
    assert_eq!(left, vec![100, 101, 102, 103]);
    let ev = server_events::Entity::find().all(&db).await.unwrap();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].event_type, "retention");
    assert_eq!(ev[0].created_at, now);
    let attrs: BTreeMap<String, String> = serde_json::from_str(&ev[0].attributes).unwrap();
    assert_eq!(attrs["table"], "metrics");
    assert_eq!(attrs["rows_removed"], "23");
    assert!(attrs["duration_ms"].parse::<u64>().is_ok());
    assert!(ev[0].message.contains("23"), "{}", ev[0].message);
    // Again at the same instant: nothing to do.
    let r = run_once_for(&db, None, now, Target::Metrics, &opts)
        .await
        .unwrap();
    assert_eq!((r.rows_removed, r.statements), (0, 1));
}

/// History events older than 30 days go; newer ones (and the run's own record) stay.
#[tokio::test]
async fn event_retention_deletes_exactly_the_old_events() {
    use languard_controller::db::entities::server_events;
    use languard_controller::jobs::retention::{RetentionOptions, Target, run_once_for};
    use sea_orm::{ActiveModelTrait, EntityTrait, QueryOrder, Set};

    let (_tmp, db) = test_db().await;
    let now = Utc.with_ymd_and_hms(2026, 12, 6, 4, 0, 0).single().unwrap();
    let day = chrono::Duration::days(1);
    let s = chrono::Duration::seconds(1);
    let ages = [
        ("old-90d", now - day * 90),
        ("old-30d-1s", now - day * 30 - s),
        ("keep-30d", now - day * 30),
        ("keep-29d", now - day * 29),
        ("keep-now", now),
    ];
    for (msg, at) in ages {
        server_events::ActiveModel {
            server_id: Set(Some(1)),
            node_id: Set(Some(1)),
            event_type: Set("status".into()),
            message: Set(msg.into()),
            attributes: Set("{}".into()),
            actor: Set("agent".into()),
            created_at: Set(at),
            ..Default::default()
        }
        .insert(&db)
        .await
        .unwrap();
    }
    let opts = RetentionOptions {
        keep: day * 30,
        batch_rows: 1,
        pause: Duration::ZERO,
    };
    let r = run_once_for(&db, None, now, Target::Events, &opts)
        .await
        .expect("run");
    assert_eq!(r.rows_removed, 2);
    assert_eq!(r.statements, 3);
    let left: Vec<String> = server_events::Entity::find()
        .order_by_asc(server_events::Column::Id)
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.message)
        .collect();
    assert_eq!(left.len(), 4, "{left:?}");
    assert_eq!(&left[..3], ["keep-30d", "keep-29d", "keep-now"]);
    assert!(
        left[3].starts_with("event retention removed 2 events"),
        "{}",
        left[3]
    );
}

/// The scheduled loop: nothing runs before the cron time; once the (injected) clock reaches it the
/// job deletes with that instant as "now".
#[tokio::test]
async fn scheduled_metrics_retention_runs_when_the_clock_reaches_the_cron_time() {
    use languard_controller::db::entities::{metrics, server_events};
    use languard_controller::hub::Hub;
    use languard_controller::jobs::ManualClock;
    use languard_controller::jobs::retention::{
        Job, RetentionOptions, Target, parse_schedule, parse_time_zone, run,
    };
    use sea_orm::{EntityTrait, PaginatorTrait};

    let (_tmp, db) = test_db().await;
    let due = Utc
        .with_ymd_and_hms(2026, 12, 10, 12, 0, 0)
        .single()
        .unwrap();
    let day = chrono::Duration::days(1);
    insert_metric(&db, 1, due - day - chrono::Duration::seconds(1)).await;
    insert_metric(&db, 100, due - day + chrono::Duration::seconds(1)).await;
    let clock = ManualClock::new(due - chrono::Duration::milliseconds(300));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(run(
        db.clone(),
        Hub::new(16),
        Job {
            target: Target::Metrics,
            schedule: parse_schedule("0 */6 * * *").unwrap(),
            tz: parse_time_zone("UTC").unwrap(),
            opts: RetentionOptions::days(1),
        },
        std::sync::Arc::new(clock.clone()),
        shutdown.clone(),
    ));
    // Before the clock reaches 12:00 nothing happens (the loop sleeps the 300 ms and re-reads).
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(server_events::Entity::find().count(&db).await.unwrap(), 0);
    assert_eq!(metrics::Entity::find().count(&db).await.unwrap(), 2);
    clock.set(due);
    eventually(
        Duration::from_secs(10),
        "scheduled run recorded",
        || async { (server_events::Entity::find().count(&db).await.unwrap() == 1).then_some(()) },
    )
    .await;
    let left = metrics::Entity::find().all(&db).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].threads, 100);
    let ev = server_events::Entity::find()
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ev.created_at, due);
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("job stops at shutdown")
        .unwrap();
}

/// A real agent sampling a real process: the test double started through the API, metrics every
/// second, read back with ListMetrics.
#[tokio::test]
async fn a_real_agent_reports_plausible_metrics() {
    let c = Controller::start().await;
    let admin = c.admin_token().await;
    let (node_id, token) = c.create_node("host-real").await;
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::start_with_env(
        &c.url(),
        &token,
        &dir.path().join("agent"),
        &[
            ("LANGUARD_METRICS_INTERVAL_SECONDS", "1"),
            ("LANGUARD_METRICS_LISTEN", "127.0.0.1:0"),
        ],
    )
    .await;
    let mut servers = pb::server_service_client::ServerServiceClient::new(c.channel().await);
    let nodes = pb::node_service_client::NodeServiceClient::new(c.channel().await);
    eventually(Duration::from_secs(30), "node online", || {
        let mut nodes = nodes.clone();
        let admin = admin.clone();
        async move {
            let n = nodes
                .get_node(authed(pb::GetNodeRequest { id: node_id }, &admin))
                .await
                .ok()?
                .into_inner();
            n.online.then_some(())
        }
    })
    .await;
    let s = servers
        .create_server(authed(
            pb::CreateServerRequest {
                // The double writes its log steadily, so it uses some CPU for the sampler to see.
                server: Some(fake_server(
                    node_id,
                    "real",
                    dir.path(),
                    free_game_port(),
                    &["-fakeFloodRate=3000", "-fakeFloodLines=100000000"],
                )),
                rcon_password: String::new(),
            },
            &admin,
        ))
        .await
        .expect("create")
        .into_inner();
    let started = servers
        .start_server(authed(pb::StartServerRequest { id: s.id }, &admin))
        .await
        .expect("start")
        .into_inner();
    assert!(started.pid > 0);
    let since = Utc::now() - chrono::Duration::minutes(1);
    let points = eventually(
        Duration::from_secs(30),
        "metrics of the running server",
        || async {
            let r = list(
                &c,
                &admin,
                pb::ListMetricsRequest {
                    server_id: s.id,
                    start_time: Some(ts(since)),
                    end_time: Some(ts(Utc::now() + chrono::Duration::minutes(1))),
                    step_seconds: 10,
                    ..Default::default()
                },
            )
            .await
            .ok()?;
            let samples: i32 = r.points.iter().map(|p| p.samples).sum();
            (samples >= 4).then_some(r.points)
        },
    )
    .await;
    for p in &points {
        assert!(p.samples > 0);
        assert!(p.cpu_percent_avg >= 0.0 && p.cpu_percent_max >= p.cpu_percent_avg - 1e-9);
        // CPU of one core: a test double cannot use more than all cores of this machine.
        let cores = std::thread::available_parallelism().map_or(64, |n| n.get()) as f64;
        assert!(p.cpu_percent_max <= 100.0 * cores + 1.0, "{p:?}");
        // Resident memory of a real process: more than 100 KiB, less than 4 GiB.
        assert!(
            p.memory_bytes_avg > 100.0 * 1024.0 && p.memory_bytes_max < 4.0 * (1u64 << 30) as f64,
            "{p:?}"
        );
        // Virtual memory is at least the resident memory; a tokio process has a few threads.
        assert!(p.virtual_memory_bytes_max >= p.memory_bytes_max, "{p:?}");
        assert!((1..=512).contains(&p.threads_max), "{p:?}");
        // Uptime of a process started within the last minute.
        assert!((0.0..=120.0).contains(&p.uptime_seconds_max), "{p:?}");
    }
    // A process writing 3,000 lines a second is busy: the sampler saw it work.
    assert!(
        points.iter().any(|p| p.cpu_percent_max > 0.0),
        "a working process shows CPU use: {points:?}"
    );
    // Uptime grows as the process runs (the points are in time order).
    let uptimes: Vec<f64> = points.iter().map(|p| p.uptime_seconds_max).collect();
    assert!(
        uptimes.windows(2).all(|w| w[1] >= w[0]) && uptimes.last() > uptimes.first()
            || points.len() == 1 && uptimes[0] >= 1.0,
        "{uptimes:?}"
    );
    let node = list(
        &c,
        &admin,
        pb::ListMetricsRequest {
            node_id,
            start_time: Some(ts(since)),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(!node.points.is_empty());
    for p in &node.points {
        assert!((0.0..=100.0 + 1e-6).contains(&p.cpu_percent_max), "{p:?}");
        assert!(p.memory_bytes_avg > 16.0 * (1u64 << 20) as f64, "{p:?}");
    }

    // The agent's own Prometheus endpoint shows the same server, running, with plausible numbers.
    let addr: std::net::SocketAddr =
        eventually(Duration::from_secs(10), "agent metrics address", || {
            let log = agent.log();
            async move {
                let rest = &log[log.find("metrics endpoint listening")?..];
                let at = rest.find("127.0.0.1:")?;
                let token: String = rest[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                    .collect();
                token.parse().ok()
            }
        })
        .await;
    let m = eventually(
        Duration::from_secs(20),
        "agent metrics with the server",
        || async {
            let (code, content_type, body) = http_get_at(addr, "/metrics").await;
            assert_eq!(code, 200);
            assert!(
                content_type.starts_with("application/openmetrics-text"),
                "{content_type}"
            );
            // OpenMetrics ends with "# EOF"; the rest is the text format the parser checks strictly.
            let body = body.strip_suffix("# EOF\n").expect("ends with # EOF");
            let m = parse_prometheus(body);
            let key = format!(
                "languard_agent_server_resident_bytes{{server_id=\"{}\"}}",
                s.id
            );
            m.contains_key(&key).then_some(m)
        },
    )
    .await;
    assert_eq!(m["languard_agent_up"], 1.0);
    assert_eq!(m["languard_agent_connected"], 1.0);
    assert!(m["languard_agent_sessions"] >= 1.0);
    assert_eq!(m["languard_agent_servers{status=\"running\"}"], 1.0);
    assert_eq!(m["languard_agent_servers{status=\"crashed\"}"], 0.0);
    let rss = m[&format!(
        "languard_agent_server_resident_bytes{{server_id=\"{}\"}}",
        s.id
    )];
    assert!(
        rss > 100.0 * 1024.0 && rss < 4.0 * (1u64 << 30) as f64,
        "{rss}"
    );
    assert!(m[&format!("languard_agent_server_threads{{server_id=\"{}\"}}", s.id)] >= 1.0);
    assert!(
        m["languard_agent_node_memory_total_bytes"] > m["languard_agent_node_memory_used_bytes"]
    );
    assert!(m.contains_key("languard_agent_spool_bytes"));
    let (code, _, body) = http_get_at(addr, "/healthz").await;
    assert_eq!((code, body.as_str()), (200, "ok"));

    // The node's latest load is on the node itself.
    let n = nodes
        .clone()
        .get_node(authed(pb::GetNodeRequest { id: node_id }, &admin))
        .await
        .unwrap()
        .into_inner();
    let load = n.load.expect("node load");
    assert!(load.memory_total_bytes > load.memory_used_bytes && load.memory_used_bytes > 0);
    assert!((0.0..=100.0 + 1e-6).contains(&load.cpu_percent));

    servers
        .stop_server(authed(pb::StopServerRequest { id: s.id }, &admin))
        .await
        .expect("stop");
    drop(agent);
}
