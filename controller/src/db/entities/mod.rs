//! sea-orm entities, one per table (see `migrations/` for the schema).

pub mod logs;
pub mod metrics;
pub mod nodes;
pub mod player_history;
pub mod players;
pub mod refresh_tokens;
pub mod schedules;
pub mod server_events;
pub mod servers;
pub mod users;
