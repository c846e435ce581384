//! Single-host mode (`--with-local-agent`): a node named `local` is registered automatically and an
//! agent runs inside the controller process, connected over loopback like any other agent. With
//! `--demo`, a server backed by the Arma 3 test double is registered and started.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use languard_proto::v1 as pb;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, Set};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::api::Ctx;
use crate::auth::refresh;
use crate::config::Config;
use crate::db::entities::{nodes, servers};

/// Name of the automatically registered node.
pub const LOCAL_NODE: &str = "local";
/// The executable name under which the controller binary acts as the Arma 3 test double.
pub const FAKE_EXE_NAME: &str = "arma3server_x64";

/// Registers the local node (reusing its token file) and starts the in-process agent.
pub async fn start(
    ctx: &Ctx,
    config: &Config,
    addr: SocketAddr,
    demo: bool,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let dir = config.data_dir.join("local-agent");
    crate::bootstrap::ensure_dir(&dir)?;
    let token_path = dir.join("node-token");
    let token = local_token(ctx, &token_path).await?;
    let node = nodes::Entity::find()
        .filter(nodes::Column::Name.eq(LOCAL_NODE))
        .one(&ctx.db)
        .await?
        .context("local node missing after registration")?;
    if demo {
        ensure_demo_server(ctx, node.id, &config.data_dir).await?;
    }
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        addr.ip().to_string()
    };
    let scheme = if config.tls_enabled() {
        "https"
    } else {
        "http"
    };
    let agent_cfg = languard_agent::AgentConfig {
        controller_url: format!("{scheme}://{host}:{}", addr.port()),
        node_token: token,
        state_dir: dir.join("state"),
        ..languard_agent::AgentConfig::default()
    };
    agent_cfg
        .validate()
        .map_err(|e| anyhow::anyhow!("local agent: {e}"))?;
    tasks.spawn(
        async move {
            if let Err(e) = languard_agent::run(agent_cfg, shutdown).await {
                tracing::error!(error = %e, "local agent failed");
            }
        }
        .instrument(tracing::info_span!("local_agent")),
    );
    if demo {
        let ctx = ctx.clone();
        let node_id = node.id;
        tasks.spawn(
            async move { start_demo(ctx, node_id).await }.instrument(tracing::info_span!("demo")),
        );
    }
    Ok(())
}

async fn local_token(ctx: &Ctx, token_path: &Path) -> anyhow::Result<String> {
    let existing = nodes::Entity::find()
        .filter(nodes::Column::Name.eq(LOCAL_NODE))
        .one(&ctx.db)
        .await?;
    let saved = std::fs::read_to_string(token_path)
        .ok()
        .map(|s| s.trim().to_owned());
    match (existing, saved) {
        (Some(node), Some(tok)) if node.token_hash == refresh::hash_token(&tok) => Ok(tok),
        (Some(node), _) => {
            let tok = refresh::random_token(crate::api::nodes::NODE_TOKEN_PREFIX);
            let mut active = node.into_active_model();
            active.token_hash = Set(refresh::hash_token(&tok));
            active.update(&ctx.db).await?;
            crate::bootstrap::write_secret(token_path, &tok)?;
            Ok(tok)
        }
        (None, _) => {
            let (_, tok) = crate::api::nodes::create_node(&ctx.db, LOCAL_NODE)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            crate::bootstrap::write_secret(token_path, &tok)?;
            tracing::info!("registered node {LOCAL_NODE:?} for the local agent");
            Ok(tok)
        }
    }
}

/// Makes `<data_dir>/demo/arma3server_x64` a link to this binary, which then runs as the test double.
fn demo_executable(data_dir: &Path) -> anyhow::Result<PathBuf> {
    let dir = std::path::absolute(data_dir.join("demo"))?;
    std::fs::create_dir_all(&dir)?;
    let link = dir.join(FAKE_EXE_NAME);
    let me = std::env::current_exe().context("locating the controller binary")?;
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&me, &link)
        .with_context(|| format!("linking {}", link.display()))?;
    Ok(link)
}

async fn ensure_demo_server(ctx: &Ctx, node_id: i64, data_dir: &Path) -> anyhow::Result<()> {
    let exe = demo_executable(data_dir)?;
    let exists = servers::Entity::find()
        .filter(servers::Column::NodeId.eq(node_id))
        .filter(servers::Column::Name.eq("demo"))
        .one(&ctx.db)
        .await?;
    if exists.is_some() {
        return Ok(());
    }
    let profiles = exe.parent().map(|p| p.join("profiles")).unwrap_or_default();
    let settings = crate::api::convert::StoredArma3 {
        profiles_dir: profiles.display().to_string(),
        extra_args: vec!["-fakeDemo".into()],
        ..Default::default()
    };
    let now = chrono::Utc::now();
    servers::ActiveModel {
        node_id: Set(node_id),
        name: Set("demo".into()),
        game_type: Set("arma3".into()),
        executable_path: Set(exe.display().to_string()),
        working_dir: Set(String::new()),
        game_port: Set(2302),
        settings: Set(serde_json::to_string(&settings)?),
        // RCon on, so the demo shows players, chat and admin actions.
        rcon_port: Set(2312),
        rcon_password: Set(refresh::random_token("")[..16].to_owned()),
        auto_restart: Set(true),
        max_restarts: Set(3),
        restart_window_seconds: Set(600),
        clean_exit_stops: Set(false),
        status: Set("stopped".into()),
        pid: Set(0),
        started_at: Set(None),
        restart_count: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&ctx.db)
    .await?;
    tracing::info!(exe = %exe.display(), "registered the demo server");
    Ok(())
}

async fn start_demo(ctx: Ctx, node_id: i64) {
    for _ in 0..300 {
        if ctx.agents.is_online(node_id) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let server = servers::Entity::find()
        .filter(servers::Column::NodeId.eq(node_id))
        .filter(servers::Column::Name.eq("demo"))
        .one(&ctx.db)
        .await;
    let Ok(Some(server)) = server else { return };
    if server.status == "running" {
        return;
    }
    let action = pb::agent_command::Action::Start(pb::ServerRef {
        server_id: server.id,
    });
    match ctx.agents.send(node_id, "demo", action).await {
        Ok(r) if r.ok => tracing::info!(server_id = server.id, "demo server started"),
        Ok(r) => tracing::warn!(error = %r.error, "demo server did not start"),
        Err(e) => tracing::warn!(error = %e, "demo server did not start"),
    }
}
