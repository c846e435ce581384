//! The agent side of the controller: live sessions ([`AgentRegistry`]), the `AgentService.Session`
//! stream ([`session::AgentApi`]) and offline detection ([`liveness`]).

pub mod liveness;
pub mod registry;
pub mod session;

pub use registry::AgentRegistry;
