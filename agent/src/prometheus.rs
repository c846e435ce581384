//! The agent's `GET /metrics` (Prometheus text format, through `prometheus-client`) and
//! `GET /healthz`, on `metrics_listen` when set. Like the controller's endpoint it has no
//! authentication and exposes only numbers and server ids: bind it to loopback or a private
//! network.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use languard_proto::v1 as pb;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::outbox::Outbox;
use crate::stats::AgentStats;
use crate::supervisor::Supervisor;

/// The content type of the text format.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What the endpoint reads.
#[derive(Clone)]
pub struct Sources {
    /// The servers.
    pub supervisor: Supervisor,
    /// The spool.
    pub outbox: Arc<Outbox>,
    /// Link state and samples.
    pub stats: Arc<AgentStats>,
}

type Labels = Vec<(String, String)>;
type FloatGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

fn gauge(reg: &mut Registry, name: &str, help: &str, v: f64) {
    let g = FloatGauge::default();
    g.set(v);
    reg.register(name, help, g);
}

fn family(reg: &mut Registry, name: &str, help: &str, rows: Vec<(Labels, f64)>) {
    let f = Family::<Labels, FloatGauge>::default();
    for (labels, v) in rows {
        f.get_or_create(&labels).set(v);
    }
    reg.register(name, help, f);
}

fn server_label(id: i64) -> Labels {
    vec![("server_id".to_owned(), id.to_string())]
}

/// Renders every metric now.
pub fn render(src: &Sources) -> Result<String, std::fmt::Error> {
    let mut reg = Registry::with_prefix("languard_agent");
    gauge(&mut reg, "up", "Always 1 while the agent answers", 1.0);
    gauge(
        &mut reg,
        "connected",
        "1 while a session with the controller is up",
        if src.stats.connected() { 1.0 } else { 0.0 },
    );
    gauge(
        &mut reg,
        "sessions",
        "Sessions with the controller accepted since the agent started",
        src.stats.sessions() as f64,
    );
    gauge(
        &mut reg,
        "spool_bytes",
        "Bytes of events in the spool, waiting for the controller's acknowledgement",
        src.outbox.bytes() as f64,
    );
    gauge(
        &mut reg,
        "spool_events",
        "Events in the spool",
        src.outbox.len() as f64,
    );
    gauge(
        &mut reg,
        "spool_refused_events",
        "Events refused or dropped because the spool was full, since start",
        src.outbox.refused() as f64,
    );
    let (ok, failed) = src.stats.schedule_steps();
    family(
        &mut reg,
        "schedule_steps",
        "Schedule steps run since start, by outcome",
        vec![
            (vec![("outcome".into(), "ok".into())], ok as f64),
            (vec![("outcome".into(), "failed".into())], failed as f64),
        ],
    );
    let states = src.supervisor.states();
    let statuses = [
        (pb::ServerStatus::Stopped, "stopped"),
        (pb::ServerStatus::Starting, "starting"),
        (pb::ServerStatus::Running, "running"),
        (pb::ServerStatus::Stopping, "stopping"),
        (pb::ServerStatus::Crashed, "crashed"),
        (pb::ServerStatus::Error, "error"),
    ];
    family(
        &mut reg,
        "servers",
        "Servers supervised by this agent, by status",
        statuses
            .iter()
            .map(|(st, name)| {
                let n = states.iter().filter(|s| s.status == *st as i32).count();
                (vec![("status".into(), (*name).into())], n as f64)
            })
            .collect(),
    );
    family(
        &mut reg,
        "server_restarts",
        "Automatic restarts of each server within its current window",
        states
            .iter()
            .map(|s| (server_label(s.server_id), f64::from(s.restart_count)))
            .collect(),
    );
    if let Some(sample) = src.stats.sample() {
        if let Some(n) = &sample.node {
            gauge(
                &mut reg,
                "node_cpu_percent",
                "CPU use of the host, 0-100 (all cores)",
                n.cpu_percent,
            );
            gauge(
                &mut reg,
                "node_memory_used_bytes",
                "Memory in use on the host",
                n.memory_used_bytes as f64,
            );
            gauge(
                &mut reg,
                "node_memory_total_bytes",
                "Memory of the host",
                n.memory_total_bytes as f64,
            );
            gauge(
                &mut reg,
                "node_load1",
                "One-minute load average of the host",
                n.load1,
            );
            family(
                &mut reg,
                "node_disk_available_bytes",
                "Free space of the volumes holding the state dir and the servers",
                n.disks
                    .iter()
                    .map(|d| {
                        (
                            vec![("mount_point".into(), d.mount_point.clone())],
                            d.available_bytes as f64,
                        )
                    })
                    .collect(),
            );
        }
        let mut cpu = Vec::new();
        let mut rss = Vec::new();
        let mut threads = Vec::new();
        let mut uptime = Vec::new();
        for s in &sample.servers {
            cpu.push((server_label(s.server_id), s.cpu_percent));
            rss.push((server_label(s.server_id), s.rss_bytes as f64));
            threads.push((server_label(s.server_id), f64::from(s.threads)));
            uptime.push((server_label(s.server_id), s.uptime_seconds as f64));
        }
        family(
            &mut reg,
            "server_cpu_percent",
            "CPU use of each running server, percent of one core",
            cpu,
        );
        family(
            &mut reg,
            "server_resident_bytes",
            "Resident memory of each running server",
            rss,
        );
        family(
            &mut reg,
            "server_threads",
            "Threads of each running server",
            threads,
        );
        family(
            &mut reg,
            "server_uptime_seconds",
            "Seconds since each running server started",
            uptime,
        );
    }
    let mut out = String::new();
    encode(&mut out, &reg)?;
    Ok(out)
}

async fn metrics(State(src): State<Sources>) -> Response {
    match render(&src) {
        Ok(body) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// Binds `addr` (so a taken port fails the start) and returns the bound address and the server.
pub async fn bind(
    addr: SocketAddr,
    src: Sources,
    cancel: CancellationToken,
) -> std::io::Result<(SocketAddr, impl std::future::Future<Output = ()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(src);
    let serve = async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(cancel.cancelled_owned())
            .await
        {
            tracing::warn!(error = %e, "metrics endpoint stopped");
        }
    };
    Ok((local, serve))
}
