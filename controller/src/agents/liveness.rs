//! Offline detection: a session with no heartbeat for the configured time is ended, which marks its
//! node offline (the session's own end path records that).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::AgentRegistry;

/// Runs until `shutdown`, checking every second.
pub async fn run(registry: AgentRegistry, offline_after: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        for node_id in registry.stale(offline_after) {
            tracing::warn!(
                node_id,
                after_s = offline_after.as_secs(),
                "no heartbeat; marking node offline"
            );
            registry.disconnect(node_id, "heartbeat timeout");
        }
    }
}
