//! The Languard controller: persists the fleet's desired and observed state, authenticates people,
//! routes commands to agents and serves the public API (gRPC, grpc-web, WebSocket) on one port.
//!
//! Start-up order lives in [`app::App::start`]; the module map is in `ARCHITECTURE.md`.

pub mod agents;
pub mod api;
pub mod app;
pub mod auth;
pub mod bootstrap;
pub mod cli;
pub mod config;
pub mod db;
pub mod error;
pub mod http;
pub mod hub;
pub mod jobs;
pub mod local_agent;
