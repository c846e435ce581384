//! The Languard agent: supervises the game servers of one host, and streams what it observes to the
//! controller over one gRPC session, staying autonomous while the controller is away.
//!
//! Wiring and start-up order live in [`agent::run`]; the module map is in `ARCHITECTURE.md`.

pub mod agent;
pub mod cli;
pub mod config;
pub mod link;
pub mod logs;
pub mod metrics;
pub mod outbox;
pub mod prometheus;
pub mod rcon;
pub mod scheduler;
pub mod state;
pub mod stats;
pub mod supervisor;

pub use agent::run;
pub use config::AgentConfig;
