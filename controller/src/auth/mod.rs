//! Authentication and authorisation: password hashing, access tokens (JWT), refresh tokens, login
//! rate limits, roles, and the per-request guard every API handler calls.

pub mod guard;
pub mod jwt;
pub mod password;
pub mod rate_limit;
pub mod refresh;
pub mod role;

pub use guard::{Authenticator, Caller};
pub use role::Role;
