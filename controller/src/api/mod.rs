//! The public gRPC services of package `languard.v1`. Each handler authenticates, validates, and
//! delegates; the state they share is [`Ctx`].

pub mod auth;
pub mod convert;
pub mod events;
pub mod logs;
pub mod metrics;
pub mod nodes;
pub mod page;
pub mod players;
pub mod schedules;
pub mod servers;
pub mod specs;
pub mod users;

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::agents::AgentRegistry;
use crate::auth::Authenticator;
use crate::auth::rate_limit::LoginLimiter;
use crate::config::Config;
use crate::hub::Hub;

/// What every service needs; cheap to clone.
#[derive(Clone)]
pub struct Ctx {
    /// The database.
    pub db: DatabaseConnection,
    /// Token and role checks.
    pub auth: Authenticator,
    /// The live feed.
    pub hub: Hub,
    /// Connected agents.
    pub agents: AgentRegistry,
    /// Login attempt limits.
    pub limiter: Arc<LoginLimiter>,
    /// The configuration.
    pub config: Arc<Config>,
    /// Cancelled at shutdown; long-lived streams end with it.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// What the writer committed (for `/metrics`), and each node's latest load.
    pub ingest: crate::db::writer::IngestStats,
    /// The game adapters (built in and declared in `adapters_dir`).
    pub adapters: Arc<languard_adapters::Registry>,
    /// One spec push at a time per node, so an older spec never overtakes a newer one.
    pub spec_pushes: specs::PushLocks,
}
