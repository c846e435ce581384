//! Log retention: deletes `logs` rows older than the configured number of days, on a cron schedule
//! (default daily at 03:00 UTC). Rows go in small batches (one short statement each, with a pause
//! between) so the single writer is never locked out for long; each run is recorded as a
//! `retention` history event.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use sea_orm::sea_query::Query;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set,
};
use tokio_util::sync::CancellationToken;

use super::Clock;
use crate::db::entities::{logs, server_events};
use crate::hub::{EventData, Hub, HubPayload};

/// How the job deletes.
#[derive(Debug, Clone)]
pub struct RetentionOptions {
    /// Rows older than this are deleted.
    pub keep: chrono::Duration,
    /// Rows per DELETE statement.
    pub batch_rows: u64,
    /// Pause between statements, so other writers get the database.
    pub pause: Duration,
}

impl RetentionOptions {
    /// Keep `days` days, 5,000 rows per statement, 20 ms between statements.
    pub fn days(days: u32) -> Self {
        Self {
            keep: chrono::Duration::days(i64::from(days)),
            batch_rows: 5000,
            pause: Duration::from_millis(20),
        }
    }
}

/// What one run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionReport {
    /// Rows older than this were deleted.
    pub cutoff: DateTime<Utc>,
    /// How many.
    pub rows_removed: u64,
    /// DELETE statements run.
    pub statements: u64,
    /// Wall time, milliseconds.
    pub duration_ms: u64,
}

/// Parses a cron expression (5 fields, or 6 with seconds first).
pub fn parse_schedule(expr: &str) -> Result<Cron, String> {
    croner::parser::CronParser::new()
        .parse(expr)
        .map_err(|e| e.to_string())
}

/// Parses an IANA time zone name ("UTC", "Europe/Berlin").
pub fn parse_time_zone(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>().map_err(|e| e.to_string())
}

/// The first run of `schedule` in `tz` strictly after `now`.
pub fn next_run(schedule: &Cron, tz: Tz, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    schedule
        .find_next_occurrence(&now.with_timezone(&tz), false)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Deletes every log row written before `now - keep`, in batches, and records the run as a
/// `retention` event (published on `hub` when given). `now` is a parameter so tests can fix it.
pub async fn run_once(
    db: &DatabaseConnection,
    hub: Option<&Hub>,
    now: DateTime<Utc>,
    opts: &RetentionOptions,
) -> Result<RetentionReport, DbErr> {
    let started = Instant::now();
    let cutoff = now - opts.keep;
    let batch = opts.batch_rows.max(1);
    let mut rows_removed = 0u64;
    let mut statements = 0u64;
    loop {
        // DELETE ... WHERE id IN (SELECT id ... LIMIT n): portable to SQLite and PostgreSQL.
        let res = logs::Entity::delete_many()
            .filter(
                logs::Column::Id.in_subquery(
                    Query::select()
                        .column(logs::Column::Id)
                        .from(logs::Entity)
                        .and_where(logs::Column::Ts.lt(cutoff))
                        .limit(batch)
                        .to_owned(),
                ),
            )
            .exec(db)
            .await?;
        statements += 1;
        rows_removed += res.rows_affected;
        if res.rows_affected < batch {
            break;
        }
        if !opts.pause.is_zero() {
            tokio::time::sleep(opts.pause).await;
        }
    }
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let attrs = BTreeMap::from([
        ("rows_removed".to_owned(), rows_removed.to_string()),
        ("duration_ms".to_owned(), duration_ms.to_string()),
        ("cutoff".to_owned(), cutoff.to_rfc3339()),
        ("statements".to_owned(), statements.to_string()),
    ]);
    let message = format!(
        "log retention removed {rows_removed} entries older than {}",
        cutoff.to_rfc3339()
    );
    let row = server_events::ActiveModel {
        server_id: Set(None),
        node_id: Set(None),
        event_type: Set("retention".into()),
        message: Set(message.clone()),
        attributes: Set(serde_json::to_string(&attrs).unwrap_or_else(|_| "{}".into())),
        actor: Set("controller".into()),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    if let Some(hub) = hub {
        hub.publish(
            0,
            0,
            now,
            HubPayload::Event(EventData {
                id: row.id,
                event_type: "retention".into(),
                message,
                attributes: attrs,
                actor: "controller".into(),
            }),
        );
    }
    Ok(RetentionReport {
        cutoff,
        rows_removed,
        statements,
        duration_ms,
    })
}

/// Runs [`run_once`] at every occurrence of `schedule` in `tz` until `shutdown`.
///
/// Sleeps at most a minute at a time and re-reads the clock, so a clock change or a suspended host
/// does not skip or delay a run by much.
pub async fn run(
    db: DatabaseConnection,
    hub: Hub,
    schedule: Cron,
    tz: Tz,
    opts: RetentionOptions,
    clock: Arc<dyn Clock>,
    shutdown: CancellationToken,
) {
    loop {
        let Some(due) = next_run(&schedule, tz, clock.now()) else {
            tracing::warn!("log retention schedule has no next run; retention stopped");
            return;
        };
        tracing::debug!(next = %due.to_rfc3339(), "log retention scheduled");
        loop {
            let left = (due - clock.now()).to_std().unwrap_or(Duration::ZERO);
            if left.is_zero() {
                break;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(left.min(Duration::from_secs(60))) => {}
            }
        }
        let run = run_once(&db, Some(&hub), clock.now(), &opts);
        let res = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = run => r,
        };
        match res {
            Ok(r) => tracing::info!(
                rows_removed = r.rows_removed,
                duration_ms = r.duration_ms,
                "log retention done"
            ),
            Err(e) => tracing::error!(error = %e, "log retention failed; retrying at the next run"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_default_schedule_runs_daily_at_three_in_the_zone() {
        let cron = parse_schedule("0 3 * * *").expect("cron");
        let now = Utc
            .with_ymd_and_hms(2026, 12, 3, 10, 0, 0)
            .single()
            .expect("time");
        let utc = next_run(&cron, parse_time_zone("UTC").expect("tz"), now).expect("next");
        assert_eq!(
            utc,
            Utc.with_ymd_and_hms(2026, 12, 4, 3, 0, 0)
                .single()
                .expect("t")
        );
        // 03:00 in Berlin in winter is 02:00 UTC.
        let berlin = parse_time_zone("Europe/Berlin").expect("tz");
        let b = next_run(&cron, berlin, now).expect("next");
        assert_eq!(
            b,
            Utc.with_ymd_and_hms(2026, 12, 4, 2, 0, 0)
                .single()
                .expect("t")
        );
        assert!(parse_schedule("not cron").is_err());
        assert!(parse_time_zone("Mars/Olympus").is_err());
    }
}
