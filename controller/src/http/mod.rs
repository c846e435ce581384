//! One listener for everything: gRPC (HTTP/2 cleartext or TLS), grpc-web (HTTP/1.1, CORS),
//! reflection v1 and v1alpha, `grpc.health.v1.Health`, the WebSocket at `/ws`, `/healthz` and
//! `/metrics` (Prometheus text, no authentication: counts only; see [`prometheus`]).
//!
//! The grpc-web layer wraps only the gRPC routes: it answers 400 to any other HTTP/1.1 request,
//! which would break the WebSocket handshake.

pub mod console;
pub mod prometheus;
pub mod serve;
pub mod ws;

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use http::{HeaderName, HeaderValue, Method};
use languard_proto::v1::agent_service_server::AgentServiceServer;
use languard_proto::v1::auth_service_server::AuthServiceServer;
use languard_proto::v1::event_service_server::EventServiceServer;
use languard_proto::v1::log_service_server::LogServiceServer;
use languard_proto::v1::metric_service_server::MetricServiceServer;
use languard_proto::v1::node_service_server::NodeServiceServer;
use languard_proto::v1::player_service_server::PlayerServiceServer;
use languard_proto::v1::schedule_service_server::ScheduleServiceServer;
use languard_proto::v1::server_service_server::ServerServiceServer;
use languard_proto::v1::user_service_server::UserServiceServer;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::agents::session::AgentApi;
use crate::api::Ctx;
use crate::api::auth::AuthApi;
use crate::api::events::EventApi;
use crate::api::logs::LogApi;
use crate::api::metrics::MetricApi;
use crate::api::nodes::NodeApi;
use crate::api::players::PlayerApi;
use crate::api::servers::ServerApi;
use crate::api::users::UserApi;

/// Why the router could not be built.
#[derive(Debug, thiserror::Error)]
#[error("reflection: {0}")]
pub struct RouterError(String);

/// Builds the whole application router.
pub async fn router(ctx: Ctx, agent_api: AgentApi) -> Result<Router, RouterError> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<AuthServiceServer<AuthApi>>().await;
    health.set_serving::<ServerServiceServer<ServerApi>>().await;
    health.set_serving::<AgentServiceServer<AgentApi>>().await;
    health
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;

    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(languard_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection()
        .build_v1()
        .map_err(|e| RouterError(e.to_string()))?;
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .map_err(|e| RouterError(e.to_string()))?;

    let mut routes = tonic::service::Routes::builder();
    routes
        .add_service(AuthServiceServer::new(AuthApi::new(ctx.clone())))
        .add_service(UserServiceServer::new(UserApi::new(ctx.clone())))
        .add_service(NodeServiceServer::new(NodeApi::new(ctx.clone())))
        .add_service(ServerServiceServer::new(ServerApi::new(ctx.clone())))
        .add_service(EventServiceServer::new(EventApi::new(ctx.clone())))
        .add_service(LogServiceServer::new(LogApi::new(ctx.clone())))
        .add_service(PlayerServiceServer::new(PlayerApi::new(ctx.clone())))
        .add_service(ScheduleServiceServer::new(
            crate::api::schedules::ScheduleApi::new(ctx.clone()),
        ))
        .add_service(MetricServiceServer::new(MetricApi::new(ctx.clone())))
        .add_service(AgentServiceServer::new(agent_api))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    let grpc = routes
        .routes()
        .prepare()
        .into_axum_router()
        .layer(tonic_web::GrpcWebLayer::new())
        .layer(cors(&ctx.config.cors_origins));

    let prometheus = Router::new()
        .route("/metrics", get(prometheus::handler))
        .with_state(prometheus::MetricsState::new(ctx.clone()));
    let plain = Router::new()
        .route("/ws", get(ws::handler))
        .route("/healthz", get(healthz))
        .with_state(ctx);
    // The web console answers every other GET (its files, and index.html for its routes).
    Ok(grpc
        .merge(plain)
        .merge(prometheus)
        .fallback_service(console::router()))
}

async fn healthz() -> &'static str {
    "ok\n"
}

fn cors(origins: &[String]) -> CorsLayer {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::POST, Method::OPTIONS])
        .allow_headers([
            HeaderName::from_static("authorization"),
            HeaderName::from_static("content-type"),
            HeaderName::from_static("x-grpc-web"),
            HeaderName::from_static("x-user-agent"),
            HeaderName::from_static("grpc-timeout"),
            HeaderName::from_static("connect-protocol-version"),
        ])
        .expose_headers([
            HeaderName::from_static("grpc-status"),
            HeaderName::from_static("grpc-message"),
            HeaderName::from_static("grpc-status-details-bin"),
        ])
        .max_age(Duration::from_secs(3600))
}
