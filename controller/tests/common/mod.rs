//! Test harness: starts the real `languard-controller` and `languard-agent` binaries on
//! `127.0.0.1:0` with temp data dirs, on SQLite or (with `LANGUARD_TEST_DB=postgres`) on a fresh
//! PostgreSQL database per controller, and talks to them as users and agents would.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use languard_proto::v1 as pb;
use pb::auth_service_client::AuthServiceClient;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tonic::transport::Channel;

pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";
pub const JWT_SECRET: &str = "test-secret-0123456789abcdef0123456789";

/// The directory holding the workspace's built binaries.
pub fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_languard-controller"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn controller_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_languard-controller"))
}

pub fn agent_bin() -> PathBuf {
    let p = bin_dir().join("languard-agent");
    assert!(
        p.exists(),
        "{} missing: run the tests with `cargo nextest run --workspace` (or build the workspace first)",
        p.display()
    );
    p
}

/// A path named `arma3server_x64` that runs the Arma 3 test double (the controller binary is
/// multi-call).
pub fn fake_arma(dir: &Path) -> PathBuf {
    let link = dir.join("arma3server_x64");
    if !link.exists() {
        std::os::unix::fs::symlink(controller_bin(), &link).unwrap();
    }
    link
}

/// A database for one controller.
pub struct TestDb {
    pub url: String,
}

impl TestDb {
    pub async fn new(data_dir: &Path) -> TestDb {
        match std::env::var("LANGUARD_TEST_DB").as_deref() {
            Ok("postgres") => {
                let base = std::env::var("LANGUARD_TEST_PG_URL")
                    .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
                let name = format!("languard_test_{:016x}", rand::random::<u64>());
                let admin = sea_orm::Database::connect(format!("{base}/test"))
                    .await
                    .expect("connect to PostgreSQL database test");
                use sea_orm::ConnectionTrait;
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create test database");
                admin.close().await.ok();
                TestDb {
                    url: format!("{base}/{name}"),
                }
            }
            _ => TestDb {
                url: format!(
                    "sqlite://{}?mode=rwc",
                    data_dir.join("languard.db").display()
                ),
            },
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.url.starts_with("postgres")
    }
}

/// A running controller process.
pub struct Controller {
    child: Option<Child>,
    pub addr: std::net::SocketAddr,
    pub data_dir: PathBuf,
    pub db_url: String,
    _tmp: Option<tempfile::TempDir>,
    extra: Vec<(String, String)>,
}

impl Controller {
    pub async fn start() -> Controller {
        Self::start_with(&[]).await
    }

    /// Starts a controller with extra `LANGUARD_*` environment settings.
    pub async fn start_with(env: &[(&str, &str)]) -> Controller {
        Self::start_on("127.0.0.1:0", env).await
    }

    /// Starts a controller listening on `listen` (e.g. "0.0.0.0:0" for agents in other network
    /// namespaces) with extra environment settings.
    pub async fn start_on(listen: &str, env: &[(&str, &str)]) -> Controller {
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = tmp.path().join("data");
        std::fs::create_dir_all(&data_dir).unwrap();
        let db = TestDb::new(&data_dir).await;
        let extra: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut c = Controller {
            child: None,
            addr: "127.0.0.1:0".parse().unwrap(),
            data_dir,
            db_url: db.url,
            _tmp: Some(tmp),
            extra,
        };
        c.spawn(listen).await;
        c
    }

    async fn spawn(&mut self, listen: &str) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir.join("controller.log"))
            .unwrap();
        let mut cmd = Command::new(controller_bin());
        cmd.arg("--listen")
            .arg(listen)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--database-url")
            .arg(&self.db_url)
            .env("LANGUARD_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("LANGUARD_JWT_SECRET", JWT_SECRET)
            .env("RUST_LOG", "info,sea_orm_migration=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        for (k, v) in &self.extra {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn controller");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(l)) = lines.next_line().await {
                if let Some(a) = l.strip_prefix("languard-controller listening on ") {
                    return a.trim().to_owned();
                }
            }
            panic!("controller exited before listening; log:\n{}", self.log());
        })
        .await
        .expect("controller did not start within 60 s");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.addr = line.parse().unwrap();
        self.child = Some(child);
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("controller.log")).unwrap_or_default()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.url())
            .unwrap()
            .connect()
            .await
            .expect("connect to controller")
    }

    /// SIGKILL, like a crash.
    pub async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().await.ok();
        }
    }

    /// SIGTERM and wait for a clean exit; returns the exit status success.
    pub async fn terminate(&mut self) -> bool {
        let Some(mut c) = self.child.take() else {
            return false;
        };
        let pid = nix::unistd::Pid::from_raw(c.id().unwrap() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        tokio::time::timeout(Duration::from_secs(30), c.wait())
            .await
            .expect("controller did not stop")
            .unwrap()
            .success()
    }

    /// Starts again on the same address, data dir and database.
    pub async fn restart(&mut self) {
        self.kill().await;
        let listen = self.addr.to_string();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // The port is free once the old process is gone.
            if std::net::TcpListener::bind(&listen).is_ok() || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.spawn(&listen).await;
    }

    pub async fn login(
        &self,
        username: &str,
        password: &str,
    ) -> Result<pb::LoginResponse, tonic::Status> {
        let mut c = AuthServiceClient::new(self.channel().await);
        c.login(pb::LoginRequest {
            username: username.into(),
            password: password.into(),
        })
        .await
        .map(|r| r.into_inner())
    }

    pub async fn admin_token(&self) -> String {
        self.login("admin", ADMIN_PASSWORD)
            .await
            .expect("admin login")
            .access_token
    }

    /// Creates a user with `role` and returns an access token for them.
    pub async fn user_token(&self, name: &str, role: pb::Role) -> String {
        let admin = self.admin_token().await;
        let mut users = pb::user_service_client::UserServiceClient::new(self.channel().await);
        users
            .create_user(authed(
                pb::CreateUserRequest {
                    username: name.into(),
                    password: "password-123".into(),
                    role: role as i32,
                },
                &admin,
            ))
            .await
            .expect("create user");
        self.login(name, "password-123")
            .await
            .expect("user login")
            .access_token
    }

    /// Creates a node and returns (id, token).
    pub async fn create_node(&self, name: &str) -> (i64, String) {
        let mut nodes = pb::node_service_client::NodeServiceClient::new(self.channel().await);
        let r = nodes
            .create_node(authed(
                pb::CreateNodeRequest { name: name.into() },
                &self.admin_token().await,
            ))
            .await
            .expect("create node")
            .into_inner();
        (r.node.unwrap().id, r.token)
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.start_kill();
        }
    }
}

/// A request with `authorization: Bearer <token>`.
pub fn authed<T>(msg: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

/// A running agent process.
pub struct Agent {
    child: Option<Child>,
    /// The network namespace the agent runs in (`ip netns exec`), if any.
    netns: Option<String>,
    pub state_dir: PathBuf,
    controller_url: String,
    token: String,
}

impl Agent {
    pub async fn start(controller_url: &str, token: &str, state_dir: &Path) -> Agent {
        Self::start_in(None, controller_url, token, state_dir).await
    }

    /// Starts an agent inside the network namespace `netns` (when given).
    pub async fn start_in(
        netns: Option<&str>,
        controller_url: &str,
        token: &str,
        state_dir: &Path,
    ) -> Agent {
        let mut a = Agent {
            child: None,
            netns: netns.map(str::to_owned),
            state_dir: state_dir.to_owned(),
            controller_url: controller_url.into(),
            token: token.into(),
        };
        a.spawn();
        a
    }

    fn spawn(&mut self) {
        std::fs::create_dir_all(&self.state_dir).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.state_dir.join("agent.log"))
            .unwrap();
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.arg("netns").arg("exec").arg(ns).arg(agent_bin());
                c
            }
            None => Command::new(agent_bin()),
        };
        let child = cmd
            .arg("--controller-url")
            .arg(&self.controller_url)
            .arg("--node-token")
            .arg(&self.token)
            .arg("--state-dir")
            .arg(&self.state_dir)
            .arg("--stop-timeout-seconds")
            .arg("2")
            .env("RUST_LOG", "info")
            .env("LANGUARD_RESTART_BACKOFF_INITIAL_MS", "300")
            .env("LANGUARD_RESTART_BACKOFF_MAX_MS", "2000")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .expect("spawn agent");
        self.child = Some(child);
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.state_dir.join("agent.log")).unwrap_or_default()
    }

    /// SIGKILL.
    pub async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().await.ok();
        }
    }

    pub async fn restart(&mut self) {
        self.kill().await;
        self.spawn();
    }

    /// SIGTERM (a clean shutdown); see [`Agent::wait_exit`].
    pub fn terminate(&self) {
        if let Some(pid) = self.child.as_ref().and_then(|c| c.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }

    /// Waits for the agent process to exit on its own (returns None on timeout).
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let c = self.child.as_mut()?;
        tokio::time::timeout(limit, c.wait())
            .await
            .ok()
            .and_then(|r| r.ok())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.start_kill();
        }
    }
}

/// Polls `f` every 100 ms until it returns Some, or panics after `limit` with `what`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A server spec backed by the test double, with a safety exit so no process outlives the test.
pub fn fake_server(node_id: i64, name: &str, dir: &Path, port: i32, extra: &[&str]) -> pb::Server {
    let mut extra_args: Vec<String> = vec!["-fakeExitAfter=120".into()];
    extra_args.extend(extra.iter().map(|s| s.to_string()));
    pb::Server {
        node_id,
        name: name.into(),
        game_type: "arma3".into(),
        executable_path: fake_arma(dir).display().to_string(),
        arma3: Some(pb::Arma3Settings {
            game_port: port,
            profiles_dir: dir.join(format!("profiles-{name}")).display().to_string(),
            extra_args,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A free loopback UDP port base with room for the Arma port span.
pub fn free_game_port() -> i32 {
    loop {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let p = s.local_addr().unwrap().port() as i32;
        if (1024..60000).contains(&p) {
            return p;
        }
    }
}

/// Whether a process exists.
pub fn alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true)
}

/// A scripted agent: a raw `AgentService.Session` driven by the test. Event batches get sequence
/// numbers from [`FakeAgent::send`]; spec pushes (`upsert`, `remove`) are answered `ok` at once;
/// every other command (e.g. `rcon`) waits in [`FakeAgent::next_command`] for the test to answer.
pub struct FakeAgent {
    tx: tokio::sync::mpsc::Sender<pb::AgentMessage>,
    acks: tokio::sync::mpsc::UnboundedReceiver<u64>,
    commands: tokio::sync::mpsc::UnboundedReceiver<pb::AgentCommand>,
    pub accepted: pb::SessionAccepted,
    /// The last sequence number used.
    pub seq: u64,
    /// Becomes true when the controller ended the session (its stream ended or failed).
    closed: tokio::sync::watch::Receiver<bool>,
}

impl FakeAgent {
    pub async fn connect(c: &Controller, token: &str) -> FakeAgent {
        Self::connect_reporting(c, token, vec![]).await
    }

    /// Connects with a hello that reports `servers` as what the agent runs.
    pub async fn connect_reporting(
        c: &Controller,
        token: &str,
        servers: Vec<pb::ServerState>,
    ) -> FakeAgent {
        let (tx, rx) = tokio::sync::mpsc::channel::<pb::AgentMessage>(64);
        tx.send(pb::AgentMessage {
            body: Some(pb::agent_message::Body::Hello(pb::AgentHello {
                agent_version: "fake".into(),
                hostname: "fake-host".into(),
                os: "linux".into(),
                servers,
            })),
        })
        .await
        .unwrap();
        let mut client = pb::agent_service_client::AgentServiceClient::new(c.channel().await);
        let mut inbound = client
            .session(authed(
                tokio_stream::wrappers::ReceiverStream::new(rx),
                token,
            ))
            .await
            .expect("session")
            .into_inner();
        let accepted = match inbound.message().await.expect("accepted").expect("message") {
            pb::ControllerMessage {
                body: Some(pb::controller_message::Body::Accepted(a)),
            } => a,
            other => panic!("expected SessionAccepted, got {other:?}"),
        };
        let (ack_tx, acks) = tokio::sync::mpsc::unbounded_channel();
        let (cmd_tx, commands) = tokio::sync::mpsc::unbounded_channel();
        let reply = tx.clone();
        let (closed_tx, closed) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let _closed = DropSignal(closed_tx);
            while let Ok(Some(m)) = inbound.message().await {
                match m.body {
                    Some(pb::controller_message::Body::Ack(a)) => {
                        let _ = ack_tx.send(a.seq);
                    }
                    Some(pb::controller_message::Body::Command(cmd)) => match cmd.action {
                        Some(pb::agent_command::Action::Upsert(_))
                        | Some(pb::agent_command::Action::Remove(_)) => {
                            let _ = reply
                                .send(pb::AgentMessage {
                                    body: Some(pb::agent_message::Body::CommandResult(
                                        pb::CommandResult {
                                            request_id: cmd.request_id,
                                            ok: true,
                                            ..Default::default()
                                        },
                                    )),
                                })
                                .await;
                        }
                        _ => {
                            let _ = cmd_tx.send(cmd);
                        }
                    },
                    _ => {}
                }
            }
        });
        let seq = accepted.acked_seq;
        FakeAgent {
            tx,
            acks,
            commands,
            accepted,
            seq,
            closed,
        }
    }

    /// Waits until the controller ends this session; false when it is still open after `limit`.
    pub async fn wait_closed(&mut self, limit: Duration) -> bool {
        tokio::time::timeout(limit, self.closed.wait_for(|c| *c))
            .await
            .is_ok()
    }

    /// Gives `events` the next sequence numbers, stamped now.
    fn numbered(&mut self, events: Vec<(i64, pb::agent_event::Body)>) -> Vec<pb::AgentEvent> {
        events
            .into_iter()
            .map(|(server_id, body)| {
                self.seq += 1;
                pb::AgentEvent {
                    seq: self.seq,
                    time: Some(now_ts()),
                    server_id,
                    body: Some(body),
                }
            })
            .collect()
    }

    /// Sends one batch with the next sequence numbers and returns the acknowledged mark.
    pub async fn send(&mut self, events: Vec<(i64, pb::agent_event::Body)>) -> u64 {
        let batch = self.numbered(events);
        self.send_raw(batch).await
    }

    /// Sends one batch with the next sequence numbers without waiting for its ack.
    pub async fn push(&mut self, events: Vec<(i64, pb::agent_event::Body)>) {
        let batch = self.numbered(events);
        self.push_raw(batch).await;
    }

    /// Sends a batch as given; false when the session is gone.
    async fn push_raw(&self, events: Vec<pb::AgentEvent>) -> bool {
        self.tx
            .send(pb::AgentMessage {
                body: Some(pb::agent_message::Body::Events(pb::EventBatch { events })),
            })
            .await
            .is_ok()
    }

    /// The highest ack received until the session ended (or `limit` passed); 0 for none.
    pub async fn last_ack_until_closed(&mut self, limit: Duration) -> u64 {
        let mut last = 0;
        let _ = tokio::time::timeout(limit, async {
            while let Some(a) = self.acks.recv().await {
                last = last.max(a);
            }
        })
        .await;
        last
    }

    /// Sends events exactly as given (e.g. a resend of old sequence numbers); returns the ack.
    pub async fn send_raw(&mut self, events: Vec<pb::AgentEvent>) -> u64 {
        assert!(self.push_raw(events).await, "session open");
        tokio::time::timeout(Duration::from_secs(20), self.acks.recv())
            .await
            .expect("ack within 20 s")
            .expect("session open")
    }

    /// The next command the controller sent (spec pushes excluded).
    pub async fn next_command(&mut self) -> pb::AgentCommand {
        tokio::time::timeout(Duration::from_secs(20), self.commands.recv())
            .await
            .expect("command within 20 s")
            .expect("session open")
    }

    /// Answers a command.
    pub async fn answer(&self, result: pb::CommandResult) {
        self.tx
            .send(pb::AgentMessage {
                body: Some(pb::agent_message::Body::CommandResult(result)),
            })
            .await
            .expect("session open");
    }
}

/// Sets its flag when dropped (the end of a reader task, however it ends).
struct DropSignal(tokio::sync::watch::Sender<bool>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        let _ = self.0.send(true);
    }
}

/// The current time as a proto timestamp.
pub fn now_ts() -> prost_types::Timestamp {
    ts(chrono::Utc::now())
}

/// A proto timestamp.
pub fn ts(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

/// A node with a server on it and a scripted agent connected for it.
pub struct Rig {
    pub admin: String,
    pub node_id: i64,
    pub server_id: i64,
    pub agent: FakeAgent,
    pub dir: tempfile::TempDir,
    /// The node's token.
    pub token: String,
}

impl Rig {
    pub async fn new(c: &Controller, node: &str) -> Rig {
        let admin = c.admin_token().await;
        let (node_id, token) = c.create_node(node).await;
        let dir = tempfile::tempdir().unwrap();
        let server_id = create_server(c, &admin, node_id, "main", dir.path()).await;
        let agent = FakeAgent::connect(c, &token).await;
        Rig {
            admin,
            node_id,
            server_id,
            agent,
            dir,
            token,
        }
    }
}

/// Creates `spec` as a server (without an RCon password) and returns it.
pub async fn create_spec(c: &Controller, admin: &str, spec: pb::Server) -> pb::Server {
    let mut servers = pb::server_service_client::ServerServiceClient::new(c.channel().await);
    servers
        .create_server(authed(
            pb::CreateServerRequest {
                server: Some(spec),
                rcon_password: String::new(),
            },
            admin,
        ))
        .await
        .expect("create server")
        .into_inner()
}

/// The newest 500 history events of a server, of `kind` ("" for every type), newest first.
pub async fn server_events(
    c: &Controller,
    token: &str,
    server_id: i64,
    kind: &str,
) -> Result<Vec<pb::ServerEvent>, tonic::Status> {
    let mut events = pb::event_service_client::EventServiceClient::new(c.channel().await);
    Ok(events
        .list_events(authed(
            pb::ListEventsRequest {
                server_id,
                r#type: kind.into(),
                page_size: 500,
                ..Default::default()
            },
            token,
        ))
        .await?
        .into_inner()
        .events)
}

/// A gap event: the simplest event an agent can send that lands in the history.
pub fn gap_event(reason: &str) -> pb::agent_event::Body {
    pb::agent_event::Body::Gap(pb::Gap {
        dropped_metrics: 1,
        dropped_log_lines: 0,
        reason: reason.into(),
    })
}

/// Creates a server (backed by the test double's path) and returns its id.
pub async fn create_server(
    c: &Controller,
    admin: &str,
    node_id: i64,
    name: &str,
    dir: &Path,
) -> i64 {
    let spec = fake_server(node_id, name, dir, free_game_port(), &[]);
    create_spec(c, admin, spec).await.id
}

impl Agent {
    /// Starts an agent like [`Agent::start`] with extra environment settings (for example
    /// `LANGUARD_METRICS_INTERVAL_SECONDS`). A later [`Agent::restart`] starts it without them.
    pub async fn start_with_env(
        controller_url: &str,
        token: &str,
        state_dir: &Path,
        env: &[(&str, &str)],
    ) -> Agent {
        std::fs::create_dir_all(state_dir).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(state_dir.join("agent.log"))
            .unwrap();
        let mut cmd = Command::new(agent_bin());
        cmd.arg("--controller-url")
            .arg(controller_url)
            .arg("--node-token")
            .arg(token)
            .arg("--state-dir")
            .arg(state_dir)
            .arg("--stop-timeout-seconds")
            .arg("2")
            .env("RUST_LOG", "info")
            .env("LANGUARD_RESTART_BACKOFF_INITIAL_MS", "300")
            .env("LANGUARD_RESTART_BACKOFF_MAX_MS", "2000")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Agent {
            child: Some(cmd.spawn().expect("spawn agent")),
            netns: None,
            state_dir: state_dir.to_owned(),
            controller_url: controller_url.into(),
            token: token.into(),
        }
    }
}

/// `GET path` over plain HTTP/1.1; returns (status code, content type, body).
pub async fn http_get(c: &Controller, path: &str) -> (u16, String, String) {
    http_get_at(c.addr, path).await
}

/// `GET path` from `addr` over plain HTTP/1.1; returns (status code, content type, body).
pub async fn http_get_at(addr: std::net::SocketAddr, path: &str) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .expect("response within 10 s")
        .unwrap();
    let text = String::from_utf8(buf).expect("utf-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("headers end");
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let mut content_type = String::new();
    let mut chunked = false;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("content-type") {
                content_type = v.trim().to_owned();
            }
            if k.eq_ignore_ascii_case("transfer-encoding")
                && v.trim().eq_ignore_ascii_case("chunked")
            {
                chunked = true;
            }
        }
    }
    let body = if chunked {
        let mut out = String::new();
        let mut rest = body;
        loop {
            let (size, after) = rest.split_once("\r\n").expect("chunk size");
            let n = usize::from_str_radix(size.trim(), 16).expect("hex chunk size");
            if n == 0 {
                break;
            }
            out.push_str(&after[..n]);
            rest = &after[n + 2..];
        }
        out
    } else {
        body.to_owned()
    };
    (status, content_type, body)
}

impl FakeAgent {
    /// Sends a heartbeat reporting `spool_bytes` (no answer is expected).
    pub async fn heartbeat(&self, spool_bytes: u64) {
        self.tx
            .send(pb::AgentMessage {
                body: Some(pb::agent_message::Body::Heartbeat(pb::Heartbeat {
                    time: Some(now_ts()),
                    spool_bytes,
                })),
            })
            .await
            .expect("session open");
    }
}

/// Starts a server once its node's agent is connected (retrying until then) and returns it
/// running, with its pid.
pub async fn start_when_online(c: &Controller, admin: &str, id: i64) -> pb::Server {
    let servers = pb::server_service_client::ServerServiceClient::new(c.channel().await);
    eventually(Duration::from_secs(30), "server started", || {
        let mut servers = servers.clone();
        let admin = admin.to_owned();
        async move {
            let r = servers
                .start_server(authed(pb::StartServerRequest { id }, &admin))
                .await
                .ok()?
                .into_inner();
            (r.pid > 0).then_some(r)
        }
    })
    .await
}
