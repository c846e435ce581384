//! The link to the controller: one `AgentService.Session` stream at a time, reconnecting forever
//! with jittered backoff (0.5 s doubling to 30 s). It never gives up, including when the controller
//! is down at the agent's own start.

pub mod backoff;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use languard_proto::v1 as pb;
use languard_proto::v1::agent_service_client::AgentServiceClient;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
use tracing::Instrument;

use crate::config::AgentConfig;
use crate::outbox::Outbox;
use crate::supervisor::{CmdError, Supervisor};

/// Events sent per batch.
const BATCH: usize = 500;

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Could not connect.
    #[error("connect: {0}")]
    Connect(#[from] tonic::transport::Error),
    /// The controller refused or ended the stream.
    #[error("controller: {0}")]
    Status(#[from] tonic::Status),
    /// The controller broke the protocol.
    #[error("protocol: {0}")]
    Protocol(String),
}

/// Results of recent commands, so a retried request id is answered without running twice.
#[derive(Default)]
struct Recent {
    order: VecDeque<String>,
    results: HashMap<String, pb::CommandResult>,
}

impl Recent {
    const CAP: usize = 512;

    fn get(&self, id: &str) -> Option<pb::CommandResult> {
        self.results.get(id).cloned()
    }

    fn put(&mut self, r: pb::CommandResult) {
        if self.results.len() >= Self::CAP
            && let Some(old) = self.order.pop_front()
        {
            self.results.remove(&old);
        }
        self.order.push_back(r.request_id.clone());
        self.results.insert(r.request_id.clone(), r);
    }
}

/// The link task's dependencies.
pub struct Link {
    cfg: AgentConfig,
    supervisor: Supervisor,
    outbox: Arc<Outbox>,
    recent: Arc<Mutex<Recent>>,
    stats: Arc<crate::stats::AgentStats>,
}

impl Link {
    /// A link for `cfg`.
    pub fn new(cfg: AgentConfig, supervisor: Supervisor, outbox: Arc<Outbox>) -> Self {
        Self {
            cfg,
            supervisor,
            outbox,
            recent: Arc::default(),
            stats: Arc::default(),
        }
    }

    /// Reports the link's state into `stats` (for `/metrics`).
    pub fn with_stats(mut self, stats: Arc<crate::stats::AgentStats>) -> Self {
        self.stats = stats;
        self
    }

    /// Runs sessions until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff =
            backoff::Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        loop {
            let accepted = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let result = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = self.session(accepted.clone(), &shutdown) => r,
            };
            self.stats.set_connected(false);
            if shutdown.is_cancelled() {
                return;
            }
            if accepted.load(std::sync::atomic::Ordering::Relaxed) {
                backoff.reset();
            }
            match result {
                Ok(()) => tracing::info!("session ended; reconnecting"),
                Err(LinkError::Status(s)) if s.code() == tonic::Code::Unauthenticated => {
                    tracing::error!(error = %s.message(), "controller refused the node token; will keep retrying")
                }
                Err(e) => tracing::warn!(error = %e, "session failed; reconnecting"),
            }
            let delay = backoff.next_delay();
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }

    async fn endpoint(&self) -> Result<Endpoint, LinkError> {
        let mut ep = Endpoint::from_shared(self.cfg.controller_url.clone())?
            .connect_timeout(Duration::from_secs(5))
            .http2_keep_alive_interval(Duration::from_secs(20))
            .keep_alive_timeout(Duration::from_secs(10))
            .keep_alive_while_idle(true);
        if self.cfg.controller_url.starts_with("https://") {
            let mut tls = ClientTlsConfig::new().with_native_roots();
            if let Some(ca) = &self.cfg.ca_cert {
                let pem = tokio::fs::read(ca)
                    .await
                    .map_err(|e| LinkError::Protocol(format!("ca_cert: {e}")))?;
                tls = tls.ca_certificate(Certificate::from_pem(pem));
            }
            if let (Some(cert), Some(key)) = (&self.cfg.client_cert, &self.cfg.client_key) {
                let cert = tokio::fs::read(cert)
                    .await
                    .map_err(|e| LinkError::Protocol(format!("client_cert: {e}")))?;
                let key = tokio::fs::read(key)
                    .await
                    .map_err(|e| LinkError::Protocol(format!("client_key: {e}")))?;
                tls = tls.identity(tonic::transport::Identity::from_pem(cert, key));
            }
            ep = ep.tls_config(tls)?;
        }
        Ok(ep)
    }

    async fn session(
        &self,
        accepted_flag: Arc<std::sync::atomic::AtomicBool>,
        shutdown: &CancellationToken,
    ) -> Result<(), LinkError> {
        let channel = self.endpoint().await?.connect().await?;
        let mut client = AgentServiceClient::new(channel);
        let (tx, rx) = mpsc::channel::<pb::AgentMessage>(256);
        let hello = pb::AgentHello {
            agent_version: env!("CARGO_PKG_VERSION").into(),
            hostname: sysinfo::System::host_name().unwrap_or_default(),
            os: sysinfo::System::long_os_version()
                .unwrap_or_else(|_| std::env::consts::OS.to_owned()),
            servers: self.supervisor.states(),
        };
        tx.send(pb::AgentMessage {
            body: Some(pb::agent_message::Body::Hello(hello)),
        })
        .await
        .map_err(|_| LinkError::Protocol("outbound closed".into()))?;
        let mut req = tonic::Request::new(ReceiverStream::new(rx));
        let bearer = format!("Bearer {}", self.cfg.node_token)
            .parse()
            .map_err(|_| LinkError::Protocol("node token is not valid metadata".into()))?;
        req.metadata_mut().insert("authorization", bearer);
        let mut inbound = client.session(req).await?.into_inner();
        let accepted = match inbound.message().await? {
            Some(pb::ControllerMessage {
                body: Some(pb::controller_message::Body::Accepted(a)),
            }) => a,
            _ => return Err(LinkError::Protocol("expected SessionAccepted first".into())),
        };
        accepted_flag.store(true, std::sync::atomic::Ordering::Relaxed);
        self.stats.set_connected(true);
        tracing::info!(node_id = accepted.node_id, node = %accepted.node_name, acked = accepted.acked_seq, servers = accepted.servers.len(), "session accepted");
        self.supervisor.apply_specs(accepted.servers);
        self.outbox.on_accepted(accepted.acked_seq);
        let mut last_sent = accepted.acked_seq;
        let mut heartbeat = tokio::time::interval(Duration::from_secs(u64::from(
            accepted.heartbeat_interval_seconds.max(1),
        )));
        let session_end = shutdown.child_token();
        let _guard = session_end.clone().drop_guard();
        loop {
            // Send whatever is pending before waiting.
            let batch = self.outbox.after(last_sent, BATCH);
            if let Some(last) = batch.last() {
                last_sent = last.seq;
                let msg = pb::AgentMessage {
                    body: Some(pb::agent_message::Body::Events(pb::EventBatch {
                        events: batch,
                    })),
                };
                if tx.send(msg).await.is_err() {
                    return Ok(());
                }
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = self.outbox.changed() => {}
                _ = heartbeat.tick() => {
                    let hb = pb::Heartbeat { time: Some(now()), spool_bytes: self.outbox.bytes() };
                    if tx.send(pb::AgentMessage { body: Some(pb::agent_message::Body::Heartbeat(hb)) }).await.is_err() {
                        return Ok(());
                    }
                }
                msg = inbound.message() => match msg? {
                    None => return Ok(()),
                    Some(pb::ControllerMessage { body: Some(body) }) => match body {
                        pb::controller_message::Body::Ack(a) => self.outbox.ack(a.seq),
                        pb::controller_message::Body::Command(cmd) => self.spawn_command(cmd, tx.clone(), session_end.clone()),
                        pb::controller_message::Body::Accepted(_) => tracing::warn!("unexpected second SessionAccepted"),
                    },
                    Some(_) => tracing::warn!("empty controller message ignored"),
                },
            }
        }
    }

    fn spawn_command(
        &self,
        cmd: pb::AgentCommand,
        tx: mpsc::Sender<pb::AgentMessage>,
        session_end: CancellationToken,
    ) {
        let supervisor = self.supervisor.clone();
        let recent = self.recent.clone();
        let span = tracing::info_span!("command", request_id = %cmd.request_id, actor = %cmd.actor);
        // Commands run concurrently so a kill gets through while a stop is in progress.
        tokio::spawn(
            async move {
                let result = answer(&supervisor, &recent, &cmd).await;
                let msg = pb::AgentMessage {
                    body: Some(pb::agent_message::Body::CommandResult(result)),
                };
                tokio::select! {
                    _ = session_end.cancelled() => {}
                    _ = tx.send(msg) => {}
                }
            }
            .instrument(span),
        );
    }
}

/// Runs a command once per request id: a repeated id gets the earlier result.
async fn answer(
    sup: &Supervisor,
    recent: &Mutex<Recent>,
    cmd: &pb::AgentCommand,
) -> pb::CommandResult {
    let cached = recent
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&cmd.request_id);
    if let Some(r) = cached {
        tracing::info!("repeated request id; answering with the earlier result");
        return r;
    }
    let r = execute(sup, cmd).await;
    recent
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .put(r.clone());
    r
}

async fn execute(sup: &Supervisor, cmd: &pb::AgentCommand) -> pb::CommandResult {
    use pb::agent_command::Action;
    let actor = cmd.actor.as_str();
    let (server_id, r): (i64, Result<Option<pb::ServerState>, CmdError>) = match &cmd.action {
        Some(Action::Start(s)) => (s.server_id, sup.start(s.server_id, actor).await.map(Some)),
        Some(Action::Stop(s)) => (s.server_id, sup.stop(s.server_id, actor).await.map(Some)),
        Some(Action::Restart(s)) => (s.server_id, sup.restart(s.server_id, actor).await.map(Some)),
        Some(Action::Kill(s)) => (s.server_id, sup.kill(s.server_id, actor).await.map(Some)),
        Some(Action::Upsert(spec)) => {
            sup.upsert(spec.clone());
            (spec.server_id, Ok(None))
        }
        Some(Action::Remove(s)) => (s.server_id, sup.remove(s.server_id).map(|()| None)),
        Some(Action::Rcon(r)) => {
            return match sup.rcon(r.server_id, &r.command).await {
                Ok(output) => pb::CommandResult {
                    request_id: cmd.request_id.clone(),
                    ok: true,
                    state: sup.server_state(r.server_id),
                    output,
                    ..Default::default()
                },
                Err(e) => pb::CommandResult {
                    request_id: cmd.request_id.clone(),
                    ok: false,
                    error: e.to_string(),
                    error_kind: e.kind() as i32,
                    state: sup.server_state(r.server_id),
                    output: String::new(),
                },
            };
        }
        None => (
            0,
            Err(CmdError::InvalidArgument("command without action".into())),
        ),
    };
    match r {
        Ok(state) => pb::CommandResult {
            request_id: cmd.request_id.clone(),
            ok: true,
            error: String::new(),
            error_kind: pb::CommandErrorKind::Unspecified as i32,
            state: state.or_else(|| sup.server_state(server_id)),
            output: String::new(),
        },
        Err(e) => pb::CommandResult {
            request_id: cmd.request_id.clone(),
            ok: false,
            error: e.to_string(),
            error_kind: e.kind() as i32,
            state: sup.server_state(server_id),
            output: String::new(),
        },
    }
}

fn now() -> prost_types::Timestamp {
    let t = chrono::Utc::now();
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StateDir;
    use crate::supervisor::SupervisorConfig;
    use std::sync::Arc;

    fn start_cmd(id: &str) -> pb::AgentCommand {
        pb::AgentCommand {
            request_id: id.into(),
            actor: "tester".into(),
            action: Some(pb::agent_command::Action::Start(pb::ServerRef {
                server_id: 1,
            })),
        }
    }

    #[tokio::test]
    async fn a_repeated_request_id_is_answered_without_running_the_command_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = StateDir::open(dir.path()).expect("state");
        let outbox = Arc::new(Outbox::open(&state, 32 << 20).expect("outbox"));
        let sup = Supervisor::new(
            outbox.clone(),
            state,
            SupervisorConfig {
                stop_timeout: Duration::from_secs(1),
                lock_wait: Duration::from_secs(1),
                rcon_poll_interval: Duration::from_secs(10),
                task_backoff: crate::supervisor::tasks::TaskBackoff::default(),
                restart_backoff_initial: Duration::from_secs(1),
                restart_backoff_max: Duration::from_secs(1),
                crash_log_lines: 5,
                log_time_zone: languard_rpt::LogTimeZone::Utc,
                log_max_lines_per_sec: 0,
                log_keep_files: 0,
                adapters: Arc::new(languard_adapters::Registry::builtin()),
            },
            tokio_util::task::TaskTracker::new(),
            CancellationToken::new(),
        );
        // A server whose executable does not exist: every real start attempt fails and records
        // two status events (starting, error).
        sup.upsert(pb::ServerSpec {
            server_id: 1,
            game_type: "arma3".into(),
            executable_path: dir
                .path()
                .join("missing/arma3server_x64")
                .display()
                .to_string(),
            ..Default::default()
        });
        let recent = Mutex::new(Recent::default());
        let run = |cmd: pb::AgentCommand| {
            let (sup, recent) = (&sup, &recent);
            async move { answer(sup, recent, &cmd).await }
        };
        let first = run(start_cmd("req-1")).await;
        assert!(!first.ok);
        outbox.flush_now();
        let events_after_first = outbox.after(0, 100).len();
        assert_eq!(events_after_first, 2, "starting, error");
        let again = run(start_cmd("req-1")).await;
        assert_eq!(again, first, "the same answer");
        outbox.flush_now();
        assert_eq!(
            outbox.after(0, 100).len(),
            events_after_first,
            "not executed a second time"
        );
        let other = run(start_cmd("req-2")).await;
        assert!(!other.ok);
        outbox.flush_now();
        assert_eq!(
            outbox.after(0, 100).len(),
            events_after_first + 2,
            "a new request id runs"
        );
    }
}
