//! Resource sampling: every interval, one pass over the node (CPU, memory, load, disks, network)
//! and every running server process (CPU of one core, resident and virtual memory, threads,
//! uptime), queued as one droppable `MetricsSample` event. One task for the whole node, not one per
//! server.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use languard_proto::v1 as pb;
use sysinfo::{Disks, Networks, Pid, ProcessRefreshKind, ProcessesToUpdate, System};
use tokio_util::sync::CancellationToken;

use crate::outbox::Outbox;
use crate::supervisor::Supervisor;

/// The sampler's state between passes (sysinfo needs two refreshes to compute CPU use).
pub struct Sampler {
    system: System,
    networks: Networks,
    last_net: Option<(Instant, u64, u64)>,
    state_dir: PathBuf,
}

/// The sampler could not start.
#[derive(Debug, thiserror::Error)]
#[error("metrics: {0}")]
pub struct SamplerError(String);

impl Sampler {
    /// A sampler that also reports the disk of `state_dir`.
    pub fn new(state_dir: &Path) -> Result<Self, SamplerError> {
        let system = System::new().map_err(|e| SamplerError(e.to_string()))?;
        let networks =
            Networks::new_with_refreshed_list().map_err(|e| SamplerError(e.to_string()))?;
        Ok(Self {
            system,
            networks,
            last_net: None,
            state_dir: state_dir.to_owned(),
        })
    }

    /// One pass over the node and `servers` (id, pid, working paths).
    pub fn sample(&mut self, servers: &[(i64, i32, Vec<PathBuf>)]) -> pb::MetricsSample {
        let pids: Vec<Pid> = servers
            .iter()
            .filter_map(|(_, pid, _)| u32::try_from(*pid).ok().map(Pid::from_u32))
            .collect();
        // This also refreshes global CPU use (process CPU is computed against it); refreshing it
        // separately would skew the next pass.
        self.system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&pids),
            true,
            ProcessRefreshKind::everything(),
        );
        self.system.refresh_memory();
        let server_metrics = servers
            .iter()
            .filter_map(|(id, pid, _)| {
                let p = self
                    .system
                    .process(Pid::from_u32(u32::try_from(*pid).ok()?))?;
                Some(pb::ServerMetrics {
                    server_id: *id,
                    cpu_percent: f64::from(p.cpu_usage()),
                    rss_bytes: p.memory(),
                    virtual_bytes: p.virtual_memory(),
                    threads: thread_count(*pid).unwrap_or(1),
                    uptime_seconds: p.run_time(),
                })
            })
            .collect();
        let load = System::load_average().ok();
        self.networks.refresh(true);
        let (rx, tx) = self.networks.iter().fold((0u64, 0u64), |(r, t), (_, n)| {
            (r + n.received(), t + n.transmitted())
        });
        let now = Instant::now();
        let (rx_rate, tx_rate) = match self.last_net {
            Some((then, _, _)) => {
                let secs = now.duration_since(then).as_secs_f64().max(0.001);
                ((rx as f64 / secs) as u64, (tx as f64 / secs) as u64)
            }
            None => (0, 0),
        };
        self.last_net = Some((now, rx, tx));
        let mut paths: Vec<PathBuf> = vec![self.state_dir.clone()];
        paths.extend(servers.iter().flat_map(|(_, _, p)| p.iter().cloned()));
        pb::MetricsSample {
            node: Some(pb::NodeMetrics {
                cpu_percent: f64::from(self.system.global_cpu_usage()),
                memory_used_bytes: self.system.used_memory(),
                memory_total_bytes: self.system.total_memory(),
                load1: load.as_ref().map(|l| l.one).unwrap_or(0.0),
                load5: load.as_ref().map(|l| l.five).unwrap_or(0.0),
                load15: load.as_ref().map(|l| l.fifteen).unwrap_or(0.0),
                disks: disks_of(&paths),
                net_rx_bytes_per_second: rx_rate,
                net_tx_bytes_per_second: tx_rate,
                spool_bytes: 0,
            }),
            servers: server_metrics,
        }
    }
}

/// The `Threads:` line of `/proc/<pid>/status`.
fn thread_count(pid: i32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
}

/// The file systems holding `paths` (each mount point once).
fn disks_of(paths: &[PathBuf]) -> Vec<pb::DiskUsage> {
    let Ok(disks) = Disks::new_with_refreshed_list() else {
        return Vec::new();
    };
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for path in paths {
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.clone());
        let best = disks
            .iter()
            .filter(|d| abs.starts_with(d.mount_point()))
            .max_by_key(|d| d.mount_point().as_os_str().len());
        if let Some(d) = best
            && seen.insert(d.mount_point().to_owned())
        {
            out.push(pb::DiskUsage {
                mount_point: d.mount_point().display().to_string(),
                total_bytes: d.total_space(),
                available_bytes: d.available_space(),
            });
        }
    }
    out
}

/// Samples every `interval` until `cancel`.
pub async fn run(
    supervisor: Supervisor,
    outbox: Arc<Outbox>,
    interval: Duration,
    state_dir: PathBuf,
    stats: Arc<crate::stats::AgentStats>,
    cancel: CancellationToken,
) {
    let mut sampler = match Sampler::new(&state_dir) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "metrics sampling disabled");
            return;
        }
    };
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let servers = supervisor.running();
        let (s, sampler_back) = match tokio::task::spawn_blocking(move || {
            let s = sampler.sample(&servers);
            (s, sampler)
        })
        .await
        {
            Ok(x) => x,
            Err(e) => {
                tracing::error!(error = %e, "metrics sampling failed");
                return;
            }
        };
        sampler = sampler_back;
        let mut s = s;
        if let Some(n) = s.node.as_mut() {
            n.spool_bytes = outbox.bytes();
        }
        stats.set_sample(&s);
        outbox.push(0, pb::agent_event::Body::Metrics(s));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_child_shows_plausible_numbers() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A process that burns CPU for a while.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .expect("spawn");
        let pid = i32::try_from(child.id()).expect("pid");
        let mut s = Sampler::new(dir.path()).expect("sampler");
        // sysinfo needs a process to have used some CPU before its first sample to have a base.
        std::thread::sleep(Duration::from_millis(300));
        let servers = vec![(5, pid, vec![dir.path().to_owned()])];
        let _ = s.sample(&servers);
        std::thread::sleep(Duration::from_millis(600));
        let m = s.sample(&servers);
        let _ = child.kill();
        let _ = child.wait();
        let srv = m.servers.first().expect("server sampled");
        assert_eq!(srv.server_id, 5);
        assert!(
            srv.cpu_percent > 20.0 && srv.cpu_percent <= 105.0,
            "cpu of one core: {}",
            srv.cpu_percent
        );
        assert!(srv.rss_bytes > 0 && srv.virtual_bytes >= srv.rss_bytes);
        assert!(srv.threads >= 1);
        let node = m.node.expect("node");
        assert!(node.memory_total_bytes > node.memory_used_bytes && node.memory_used_bytes > 0);
        assert!(!node.disks.is_empty() && node.disks[0].total_bytes > 0);
    }
}
